// The IPv6 half of the masquerade parameters: both values or neither (spec §6.1 "IPv6 identical … v6 network/subnet").
import type { IPv6Net } from '../ip/ipv6.ts';
import type { MasqRulesParams } from './traffic-manager.ts';

/** The v6 network and subnet when dual stack is on; throws when only one of them is given. */
export function dualStackMasq(p: MasqRulesParams): { network: IPv6Net; subnet: IPv6Net } | undefined {
  if (!p.ipv6Network && !p.ipv6Subnet) return undefined;
  if (!p.ipv6Network || !p.ipv6Subnet) {
    throw new Error(`IPv6 masquerade rules need both ipv6Network and ipv6Subnet (got ${p.ipv6Network ?? 'no network'} / ${p.ipv6Subnet ?? 'no subnet'}); pass both, or neither for IPv4 only`);
  }
  return { network: p.ipv6Network, subnet: p.ipv6Subnet };
}
