// The nftables table, chains and rules flanneld owns in nftables mode (spec §6.3); pure text, no I/O.
import type { IPv4Net } from '../../ip/ipv4.ts';

export const FAMILY = 'ip';
export const TABLE = 'flannel-ipv4';
export const TABLE_COMMENT = 'rules for flannel-ipv4';
/** kube-proxy's masquerade mark, as `nft list` prints it. */
const KUBE_PROXY_MARK = '0x00004000';
const MULTICAST = '224.0.0.0/4';

/** A base chain of the flannel table and its rules, each rule as `nft list` prints it. */
export interface NftChain {
  name: 'postrtg' | 'forward';
  comment: string;
  type: 'nat' | 'filter';
  hook: 'postrouting' | 'forward';
  /** Priority keyword as written and listed; `prio` is its number (what `nft -j` reports). */
  priority: 'srcnat' | 'filter';
  prio: number;
  policy: 'accept';
  rules: readonly string[];
}

/** nft lists a /32 prefix as the bare address; render it the same way so listings compare as text. */
function addr(net: IPv4Net): string {
  return net.prefix === 32 ? net.toString().replace(/\/32$/, '') : net.toString();
}

/** §6.3 masquerade chain. Rule 4 is `saddr != POD, daddr NET` (iptables mode has `! -s NET -d POD` there). */
export function masqChain(network: IPv4Net, subnet: IPv4Net, randomFully: boolean): NftChain {
  const net = addr(network);
  const pod = addr(subnet);
  const masq = randomFully ? 'masquerade fully-random' : 'masquerade';
  return {
    name: 'postrtg',
    comment: 'chain to manage traffic masquerading by flannel',
    type: 'nat',
    hook: 'postrouting',
    priority: 'srcnat',
    prio: 100,
    policy: 'accept',
    rules: [
      `meta mark ${KUBE_PROXY_MARK} return`,
      `ip saddr ${pod} ip daddr ${net} return`,
      `ip saddr ${net} ip daddr ${pod} return`,
      `ip saddr != ${pod} ip daddr ${net} return`,
      `ip saddr ${net} ip daddr != ${MULTICAST} ${masq}`,
      `ip saddr != ${net} ip daddr ${net} ${masq}`,
    ],
  };
}

/** §6.3 forward chain. */
export function forwardChain(network: IPv4Net): NftChain {
  const net = addr(network);
  return {
    name: 'forward',
    comment: 'chain to accept flannel traffic',
    type: 'filter',
    hook: 'forward',
    priority: 'filter',
    prio: 0,
    policy: 'accept',
    rules: [`ip saddr ${net} accept`, `ip daddr ${net} accept`],
  };
}

export function tableScript(): string {
  return `add table ${FAMILY} ${TABLE} { comment "${TABLE_COMMENT}" ; }\n`;
}

/**
 * One `nft -f -` transaction: create the table and chain when absent, flush the chain, add the rules. The flush also
 * drops the rules of a previous network/subnet, so unlike iptables mode no separate recycling step is needed.
 */
export function applyScript(chain: NftChain): string {
  const at = `${FAMILY} ${TABLE} ${chain.name}`;
  return [
    tableScript().trimEnd(),
    `add chain ${at} { comment "${chain.comment}" ; type ${chain.type} hook ${chain.hook} priority ${chain.priority} ; policy ${chain.policy} ; }`,
    `flush chain ${at}`,
    ...chain.rules.map((r) => `add rule ${at} ${r}`),
    '',
  ].join('\n');
}

/** The chain exactly as `nft list chain ip flannel-ipv4 <name>` prints it. */
export function chainListing(chain: NftChain): string {
  return [
    `table ${FAMILY} ${TABLE} {`,
    `\tchain ${chain.name} {`,
    `\t\tcomment "${chain.comment}"`,
    `\t\ttype ${chain.type} hook ${chain.hook} priority ${chain.priority}; policy ${chain.policy};`,
    ...chain.rules.map((r) => `\t\t${r}`),
    '\t}',
    '}',
    '',
  ].join('\n');
}
