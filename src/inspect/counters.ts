// Packet counters read off the netfilter model: what the lab shows as proof that a rule did its work.
import { MASQ_CHAIN } from '../traffic/iptables/rules.ts';
import type { NfChain } from './netfilter.ts';

/** Packets counted by flannel's MASQUERADE rules (FLANNEL-POSTRTG in iptables' nat table); 0 when not listed with -c. */
export function masqueradeCount(chains: readonly NfChain[]): number {
  const chain = chains.find((c) => c.source === 'iptables' && c.table === 'nat' && c.name === MASQ_CHAIN);
  return (chain?.rules ?? []).filter((r) => /-j MASQUERADE\b/.test(r.text)).reduce((n, r) => n + (r.packets ?? 0), 0);
}
