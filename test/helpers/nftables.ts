// flannel's nftables tables as docs/COMPATIBILITY.md, "nftables rules" lists them, and what a namespace's kernel holds,
// for exact comparison.
import { nsRun } from './netns.ts';

type Family = 'ip' | 'ip6';
const tableName = (f: Family) => (f === 'ip' ? 'flannel-ipv4' : 'flannel-ipv6');

/** `nft list table <family> flannel-ipv4|6`, both chains in the order flanneld creates them. */
function specTableOf(family: Family, net: string, pod: string, random: string): string {
  const multicast = family === 'ip' ? '224.0.0.0/4' : 'ff00::/8';
  const name = tableName(family);
  return [
    `table ${family} ${name} {`,
    `\tcomment "rules for ${name}"`,
    '\tchain postrtg {',
    '\t\tcomment "chain to manage traffic masquerading by flannel"',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    '\t\tmeta mark 0x00004000 return',
    `\t\t${family} saddr ${pod} ${family} daddr ${net} return`,
    `\t\t${family} saddr ${net} ${family} daddr ${pod} return`,
    `\t\t${family} saddr != ${pod} ${family} daddr ${net} return`,
    `\t\t${family} saddr ${net} ${family} daddr != ${multicast} masquerade${random}`,
    `\t\t${family} saddr != ${net} ${family} daddr ${net} masquerade${random}`,
    '\t}',
    '',
    '\tchain forward {',
    '\t\tcomment "chain to accept flannel traffic"',
    '\t\ttype filter hook forward priority filter; policy accept;',
    `\t\t${family} saddr ${net} accept`,
    `\t\t${family} daddr ${net} accept`,
    '\t}',
    '}',
    '',
  ].join('\n');
}

/** `nft list table ip flannel-ipv4` for Network `net` and this host's subnet `pod`. */
export const specTable = (net: string, pod: string, random = ' fully-random'): string =>
  specTableOf('ip', net, pod, random);

/** `nft list table ip6 flannel-ipv6` for IPv6Network `net` and this host's v6 subnet `pod` (ip6 saddr/daddr, ff00::/8). */
export const specTable6 = (net: string, pod: string, random = ' fully-random'): string =>
  specTableOf('ip6', net, pod, random);

/** A flannel table as init() creates it: the comment, no chains. */
const emptyTableOf = (family: Family): string =>
  `table ${family} ${tableName(family)} {\n\tcomment "rules for ${tableName(family)}"\n}\n`;
export const emptyTable = emptyTableOf('ip');
export const emptyTable6 = emptyTableOf('ip6');

function nftTableOf(ns: string, family: Family): string {
  try {
    return nsRun(ns, 'nft', ['list', 'table', family, tableName(family)]);
  } catch {
    return '(no table)';
  }
}

/** The flannel-ipv4 table in `ns` as nft lists it, or '(no table)'. */
export const nftTable = (ns: string): string => nftTableOf(ns, 'ip');

/** The flannel-ipv6 table in `ns` as nft lists it, or '(no table)'. */
export const nftTable6 = (ns: string): string => nftTableOf(ns, 'ip6');
