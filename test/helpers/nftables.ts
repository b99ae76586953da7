// flannel's nftables table as spec §6.3 lists it, and what a namespace's kernel holds, for exact comparison.
import { nsRun } from './netns.ts';

/** `nft list table ip flannel-ipv4` for Network `net` and this host's subnet `pod`, both chains in the order flanneld creates them. */
export function specTable(net: string, pod: string, random = ' fully-random'): string {
  return [
    'table ip flannel-ipv4 {',
    '\tcomment "rules for flannel-ipv4"',
    '\tchain postrtg {',
    '\t\tcomment "chain to manage traffic masquerading by flannel"',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    '\t\tmeta mark 0x00004000 return',
    `\t\tip saddr ${pod} ip daddr ${net} return`,
    `\t\tip saddr ${net} ip daddr ${pod} return`,
    `\t\tip saddr != ${pod} ip daddr ${net} return`,
    `\t\tip saddr ${net} ip daddr != 224.0.0.0/4 masquerade${random}`,
    `\t\tip saddr != ${net} ip daddr ${net} masquerade${random}`,
    '\t}',
    '',
    '\tchain forward {',
    '\t\tcomment "chain to accept flannel traffic"',
    '\t\ttype filter hook forward priority filter; policy accept;',
    `\t\tip saddr ${net} accept`,
    `\t\tip daddr ${net} accept`,
    '\t}',
    '}',
    '',
  ].join('\n');
}

/** The flannel-ipv4 table in `ns` as nft lists it, or '(no table)'. */
export function nftTable(ns: string): string {
  try {
    return nsRun(ns, 'nft', ['list', 'table', 'ip', 'flannel-ipv4']);
  } catch {
    return '(no table)';
  }
}
