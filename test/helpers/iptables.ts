// flannel's iptables rules as docs/COMPATIBILITY.md, "iptables rules" lists them, what a namespace's kernel holds, and
// a bounded poll for both.
import { nsRun } from './netns.ts';

/**
 * The masquerade rules, `iptables -t nat -S POSTROUTING` + `-S FLANNEL-POSTRTG` without the policy line. `multicast` is
 * the excluded destination: 224.0.0.0/4 for v4, ff00::/8 for v6 (see specMasq6).
 */
export function specMasq(net: string, pod: string, random = ' --random-fully', multicast = '224.0.0.0/4'): string[] {
  return [
    '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
    '-N FLANNEL-POSTRTG',
    '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
    `-A FLANNEL-POSTRTG -s ${pod} -d ${net} -m comment --comment "flanneld masq" -j RETURN`,
    `-A FLANNEL-POSTRTG -s ${net} -d ${pod} -m comment --comment "flanneld masq" -j RETURN`,
    `-A FLANNEL-POSTRTG ! -s ${net} -d ${pod} -m comment --comment "flanneld masq" -j RETURN`,
    `-A FLANNEL-POSTRTG -s ${net} ! -d ${multicast} -m comment --comment "flanneld masq" -j MASQUERADE${random}`,
    `-A FLANNEL-POSTRTG ! -s ${net} -d ${net} -m comment --comment "flanneld masq" -j MASQUERADE${random}`,
  ];
}

/**
 * The masquerade rules with the v6 network/subnet and ff00::/8: `ip6tables -t nat -S POSTROUTING` +
 * `-S FLANNEL-POSTRTG`.
 */
export const specMasq6 = (net: string, pod: string, random = ' --random-fully'): string[] =>
  specMasq(net, pod, random, 'ff00::/8');

/**
 * The forward rules, `iptables -t filter -S FORWARD` + `-S FLANNEL-FWD` without the policy line (same for ip6tables).
 */
export function specFwd(net: string): string[] {
  return [
    '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
    '-N FLANNEL-FWD',
    `-A FLANNEL-FWD -s ${net} -m comment --comment "flanneld forward" -j ACCEPT`,
    `-A FLANNEL-FWD -d ${net} -m comment --comment "flanneld forward" -j ACCEPT`,
  ];
}

/** What `bin` lists in `ns` for the built-in chain then the flannel chain, as `-S` prints them, minus policy lines. */
export function listed(ns: string, bin: 'iptables' | 'ip6tables', table: string, chains: string[]): string[] {
  const out: string[] = [];
  for (const c of chains) {
    let text = '';
    try {
      text = nsRun(ns, bin, ['-w', '-t', table, '-S', c]);
    } catch {
      /* chain absent */
    }
    out.push(...text.split('\n').filter((l) => l && !l.startsWith('-P ')));
  }
  return out;
}

/** POSTROUTING + FLANNEL-POSTRTG of the nat table. */
export const natRules = (ns: string, bin: 'iptables' | 'ip6tables') =>
  listed(ns, bin, 'nat', ['POSTROUTING', 'FLANNEL-POSTRTG']);
/** FORWARD + FLANNEL-FWD of the filter table. */
export const filterRules = (ns: string, bin: 'iptables' | 'ip6tables') =>
  listed(ns, bin, 'filter', ['FORWARD', 'FLANNEL-FWD']);

/** Every line of `bin`'s nat and filter tables in `ns` that is flannel's (its chains, the jumps to them, its comments). */
export function flannelLines(ns: string, bin: 'iptables' | 'ip6tables'): string[] {
  return ['nat', 'filter'].flatMap((table) =>
    nsRun(ns, bin, ['-w', '-t', table, '-S'])
      .split('\n')
      .filter((l) => /FLANNEL|flanneld/.test(l))
      .map((l) => `${table}: ${l}`),
  );
}

/**
 * `<cmd> -w -t <table> <op> <chain> -m comment --comment "…" -j <flannel chain>`: flannel's jump into its own chain, as
 * the tests plant (-A) or delete (-D) it by hand — the masquerade jump from POSTROUTING or the forward one from FORWARD.
 */
export function flannelJump(
  ns: string,
  cmd: 'iptables' | 'ip6tables',
  op: '-A' | '-D',
  kind: 'masq' | 'forward',
): void {
  const [table, chain, comment, target] =
    kind === 'masq'
      ? ['nat', 'POSTROUTING', 'flanneld masq', 'FLANNEL-POSTRTG']
      : ['filter', 'FORWARD', 'flanneld forward', 'FLANNEL-FWD'];
  nsRun(ns, cmd, ['-w', '-t', table, op, chain, '-m', 'comment', '--comment', comment, '-j', target]);
}
