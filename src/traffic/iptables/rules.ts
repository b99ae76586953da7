// The iptables / ip6tables rule sets flanneld owns (docs/COMPATIBILITY.md, "iptables rules"); pure values, no I/O.
import type { IPv4Net } from '../../ip/ipv4.ts';
import { IPv6Net } from '../../ip/ipv6.ts';

export type Table = 'nat' | 'filter';
/** Which binary holds the rules: iptables (ipv4) or ip6tables (ipv6). */
export type IpFamily = 'ipv4' | 'ipv6';

/** One rule: `-A <chain> <spec…>` in `<table>`; `spec` holds the argv words (no shell quoting). */
export interface IptRule {
  table: Table;
  chain: string;
  spec: readonly string[];
}

/** Rules of one table plus the flannel-owned chain they live in; `rules` are in the order they must appear. */
export interface RuleSet {
  /** Taken from the networks the set is built from. */
  family: IpFamily;
  table: Table;
  /** The chain flanneld creates and flushes (the jump into it lives in a built-in chain). */
  chain: string;
  rules: readonly IptRule[];
}

export const MASQ_CHAIN = 'FLANNEL-POSTRTG';
export const FWD_CHAIN = 'FLANNEL-FWD';
const MASQ_COMMENT = 'flanneld masq';
const FWD_COMMENT = 'flanneld forward';
/** kube-proxy's masquerade mark: packets it already handles are left alone. */
const KUBE_PROXY_MARK = '0x4000/0x4000';
const MULTICAST: Record<IpFamily, string> = { ipv4: '224.0.0.0/4', ipv6: 'ff00::/8' };

export function familyOf(net: IPv4Net | IPv6Net): IpFamily {
  return net instanceof IPv6Net ? 'ipv6' : 'ipv4';
}

/**
 * Masquerade: nat POSTROUTING jump (appended) and the FLANNEL-POSTRTG chain; the v6 set differs only in its addresses.
 */
export function masqRuleSet(network: IPv4Net, subnet: IPv4Net, randomFully: boolean): RuleSet;
export function masqRuleSet(network: IPv6Net, subnet: IPv6Net, randomFully: boolean): RuleSet;
export function masqRuleSet(network: IPv4Net | IPv6Net, subnet: IPv4Net | IPv6Net, randomFully: boolean): RuleSet {
  const family = familyOf(network);
  if (familyOf(subnet) !== family)
    throw new Error(`masquerade rules: network ${network} and subnet ${subnet} are of different IP families`);
  const net = network.toString();
  const pod = subnet.toString();
  const comment = ['-m', 'comment', '--comment', MASQ_COMMENT];
  const masq = randomFully ? ['-j', 'MASQUERADE', '--random-fully'] : ['-j', 'MASQUERADE'];
  const r = (...spec: string[]): IptRule => ({ table: 'nat', chain: MASQ_CHAIN, spec });
  return {
    family,
    table: 'nat',
    chain: MASQ_CHAIN,
    rules: [
      { table: 'nat', chain: 'POSTROUTING', spec: [...comment, '-j', MASQ_CHAIN] },
      r('-m', 'mark', '--mark', KUBE_PROXY_MARK, ...comment, '-j', 'RETURN'),
      r('-s', pod, '-d', net, ...comment, '-j', 'RETURN'),
      r('-s', net, '-d', pod, ...comment, '-j', 'RETURN'),
      r('!', '-s', net, '-d', pod, ...comment, '-j', 'RETURN'),
      r('-s', net, '!', '-d', MULTICAST[family], ...comment, ...masq),
      r('!', '-s', net, '-d', net, ...comment, ...masq),
    ],
  };
}

/** Forward: filter FORWARD jump (appended) and the FLANNEL-FWD chain. */
export function forwardRuleSet(network: IPv4Net | IPv6Net): RuleSet {
  const net = network.toString();
  const comment = ['-m', 'comment', '--comment', FWD_COMMENT];
  return {
    family: familyOf(network),
    table: 'filter',
    chain: FWD_CHAIN,
    rules: [
      { table: 'filter', chain: 'FORWARD', spec: [...comment, '-j', FWD_CHAIN] },
      { table: 'filter', chain: FWD_CHAIN, spec: ['-s', net, ...comment, '-j', 'ACCEPT'] },
      { table: 'filter', chain: FWD_CHAIN, spec: ['-d', net, ...comment, '-j', 'ACCEPT'] },
    ],
  };
}

/** Quotes a word the way `iptables -S` prints it and `iptables-restore` reads it. */
function quote(word: string): string {
  return /^[^\s"'\\]+$/.test(word) ? word : `"${word.replace(/(["\\])/g, '\\$1')}"`;
}

/** The rule spec as a line of text, e.g. `-s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT`. */
function specText(spec: readonly string[]): string {
  return spec.map(quote).join(' ');
}

/** The rule exactly as `iptables -t <table> -S <chain>` prints it. */
export function ruleText(rule: IptRule, op: '-A' | '-D' = '-A'): string {
  return `${op} ${rule.chain} ${specText(rule.spec)}`;
}
