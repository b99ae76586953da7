// The nftables tables, chains and rules flanneld owns in nftables mode (docs/COMPATIBILITY.md, "nftables rules"); pure
// text, no I/O.
import type { IPv4Net } from '../../ip/ipv4.ts';
import { IPv6Net } from '../../ip/ipv6.ts';

/** One flannel table: `ip flannel-ipv4` or `ip6 flannel-ipv6`; the family word is also the rules' payload protocol. */
export interface NftTable {
  family: 'ip' | 'ip6';
  name: string;
  comment: string;
  multicast: string;
}

export const TABLE_V4: NftTable = {
  family: 'ip',
  name: 'flannel-ipv4',
  comment: 'rules for flannel-ipv4',
  multicast: '224.0.0.0/4',
};
export const TABLE_V6: NftTable = {
  family: 'ip6',
  name: 'flannel-ipv6',
  comment: 'rules for flannel-ipv6',
  multicast: 'ff00::/8',
};
/** kube-proxy's masquerade mark, as `nft list` prints it. */
const KUBE_PROXY_MARK = '0x00004000';

function tableOf(net: IPv4Net | IPv6Net): NftTable {
  return net instanceof IPv6Net ? TABLE_V6 : TABLE_V4;
}

/** A base chain of a flannel table and its rules, each rule as `nft list` prints it. */
export interface NftChain {
  table: NftTable;
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

/** nft lists a host prefix (/32, /128) as the bare address; render it the same way so listings compare as text. */
function addr(net: IPv4Net | IPv6Net): string {
  return net.prefix === (net instanceof IPv6Net ? 128 : 32) ? net.toString().replace(/\/\d+$/, '') : net.toString();
}

/** The masquerade chain. Rule 4 is `saddr != POD, daddr NET` (iptables mode has `! -s NET -d POD` there). */
export function masqChain(network: IPv4Net, subnet: IPv4Net, randomFully: boolean): NftChain;
export function masqChain(network: IPv6Net, subnet: IPv6Net, randomFully: boolean): NftChain;
export function masqChain(network: IPv4Net | IPv6Net, subnet: IPv4Net | IPv6Net, randomFully: boolean): NftChain {
  const table = tableOf(network);
  if (tableOf(subnet) !== table)
    throw new Error(`nftables masquerade chain: network ${network} and subnet ${subnet} are of different IP families`);
  const ip = table.family;
  const net = addr(network);
  const pod = addr(subnet);
  const masq = randomFully ? 'masquerade fully-random' : 'masquerade';
  return {
    table,
    name: 'postrtg',
    comment: 'chain to manage traffic masquerading by flannel',
    type: 'nat',
    hook: 'postrouting',
    priority: 'srcnat',
    prio: 100,
    policy: 'accept',
    rules: [
      `meta mark ${KUBE_PROXY_MARK} return`,
      `${ip} saddr ${pod} ${ip} daddr ${net} return`,
      `${ip} saddr ${net} ${ip} daddr ${pod} return`,
      `${ip} saddr != ${pod} ${ip} daddr ${net} return`,
      `${ip} saddr ${net} ${ip} daddr != ${table.multicast} ${masq}`,
      `${ip} saddr != ${net} ${ip} daddr ${net} ${masq}`,
    ],
  };
}

/** The forward chain. */
export function forwardChain(network: IPv4Net | IPv6Net): NftChain {
  const table = tableOf(network);
  const ip = table.family;
  const net = addr(network);
  return {
    table,
    name: 'forward',
    comment: 'chain to accept flannel traffic',
    type: 'filter',
    hook: 'forward',
    priority: 'filter',
    prio: 0,
    policy: 'accept',
    rules: [`${ip} saddr ${net} accept`, `${ip} daddr ${net} accept`],
  };
}

export function tableScript(table: NftTable = TABLE_V4): string {
  return `add table ${table.family} ${table.name} { comment "${table.comment}" ; }\n`;
}

/**
 * One `nft -f -` transaction: create the table and chain when absent, flush the chain, add the rules. The flush also
 * drops the rules of a previous network/subnet, so unlike iptables mode no separate recycling step is needed.
 */
export function applyScript(chain: NftChain): string {
  const at = `${chain.table.family} ${chain.table.name} ${chain.name}`;
  return [
    tableScript(chain.table).trimEnd(),
    `add chain ${at} { comment "${chain.comment}" ; type ${chain.type} hook ${chain.hook} priority ${chain.priority} ; policy ${chain.policy} ; }`,
    `flush chain ${at}`,
    ...chain.rules.map((r) => `add rule ${at} ${r}`),
    '',
  ].join('\n');
}

/** The chain exactly as `nft list chain <family> <table> <name>` prints it. */
export function chainListing(chain: NftChain): string {
  return [
    `table ${chain.table.family} ${chain.table.name} {`,
    `\tchain ${chain.name} {`,
    `\t\tcomment "${chain.comment}"`,
    `\t\ttype ${chain.type} hook ${chain.hook} priority ${chain.priority}; policy ${chain.policy};`,
    ...chain.rules.map((r) => `\t\t${r}`),
    '\t}',
    '}',
    '',
  ].join('\n');
}
