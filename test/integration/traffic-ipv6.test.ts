// Dual stack rules against the real kernel: ip6tables (§6.1, §6.2 IPv6) and `ip6 flannel-ipv6` (§6.3), each case in
// its own network namespace, next to the unchanged IPv4 rules.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';
import { IptablesTrafficManager } from '../../src/traffic/iptables/index.ts';
import { NftablesTrafficManager } from '../../src/traffic/nftables/index.ts';
import type { MasqRulesParams } from '../../src/traffic/traffic-manager.ts';
import { Netns, isRoot, nsRun } from '../helpers/netns.ts';
import { nftTable, specTable } from '../helpers/nftables.ts';

const NET = IPv4Net.parse('10.244.0.0/16');
const POD = IPv4Net.parse('10.244.1.0/24');
const NET6 = IPv6Net.parse('2001:db8:42::/56');
const POD6 = IPv6Net.parse('2001:db8:42:1::/64');

/** Spec §6.1 with the v6 network/subnet and ff00::/8: `ip6tables -t nat -S POSTROUTING` + `-S FLANNEL-POSTRTG`. */
function specMasq6(net: string, pod: string, random = ' --random-fully'): string[] {
  return [
    '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
    '-N FLANNEL-POSTRTG',
    '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
    `-A FLANNEL-POSTRTG -s ${pod} -d ${net} -m comment --comment "flanneld masq" -j RETURN`,
    `-A FLANNEL-POSTRTG -s ${net} -d ${pod} -m comment --comment "flanneld masq" -j RETURN`,
    `-A FLANNEL-POSTRTG ! -s ${net} -d ${pod} -m comment --comment "flanneld masq" -j RETURN`,
    `-A FLANNEL-POSTRTG -s ${net} ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE${random}`,
    `-A FLANNEL-POSTRTG ! -s ${net} -d ${net} -m comment --comment "flanneld masq" -j MASQUERADE${random}`,
  ];
}

/** Spec §6.2 for the v6 network: `ip6tables -t filter -S FORWARD` + `-S FLANNEL-FWD`. */
function specFwd6(net: string): string[] {
  return [
    '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
    '-N FLANNEL-FWD',
    `-A FLANNEL-FWD -s ${net} -m comment --comment "flanneld forward" -j ACCEPT`,
    `-A FLANNEL-FWD -d ${net} -m comment --comment "flanneld forward" -j ACCEPT`,
  ];
}

/** Spec §6.3 with `ip6 saddr/daddr` and ff00::/8: `nft list table ip6 flannel-ipv6`. */
function specTable6(net: string, pod: string, random = ' fully-random'): string {
  return [
    'table ip6 flannel-ipv6 {',
    '\tcomment "rules for flannel-ipv6"',
    '\tchain postrtg {',
    '\t\tcomment "chain to manage traffic masquerading by flannel"',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    '\t\tmeta mark 0x00004000 return',
    `\t\tip6 saddr ${pod} ip6 daddr ${net} return`,
    `\t\tip6 saddr ${net} ip6 daddr ${pod} return`,
    `\t\tip6 saddr != ${pod} ip6 daddr ${net} return`,
    `\t\tip6 saddr ${net} ip6 daddr != ff00::/8 masquerade${random}`,
    `\t\tip6 saddr != ${net} ip6 daddr ${net} masquerade${random}`,
    '\t}',
    '',
    '\tchain forward {',
    '\t\tcomment "chain to accept flannel traffic"',
    '\t\ttype filter hook forward priority filter; policy accept;',
    `\t\tip6 saddr ${net} accept`,
    `\t\tip6 daddr ${net} accept`,
    '\t}',
    '}',
    '',
  ].join('\n');
}

const PLANTED_NAT6 = '-A POSTROUTING -s 2001:db8:99::/64 -j RETURN';

/** What `bin` lists for the built-in chain then the flannel chain, minus policy lines. */
function listed(ns: string, bin: 'iptables' | 'ip6tables', table: string, chains: string[]): string[] {
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
const nat6 = (ns: string) => listed(ns, 'ip6tables', 'nat', ['POSTROUTING', 'FLANNEL-POSTRTG']);
const filter6 = (ns: string) => listed(ns, 'ip6tables', 'filter', ['FORWARD', 'FLANNEL-FWD']);
const nat4 = (ns: string) => listed(ns, 'iptables', 'nat', ['POSTROUTING', 'FLANNEL-POSTRTG']);

function nftTable6(ns: string): string {
  try {
    return nsRun(ns, 'nft', ['list', 'table', 'ip6', 'flannel-ipv6']);
  } catch {
    return '(no table)';
  }
}

/** Polls until `get()` deep-equals `want` (bounded), then asserts it so a failure shows the difference. */
async function eventually<T>(get: () => T, want: T, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let got = get();
  while (Date.now() < deadline && JSON.stringify(got) !== JSON.stringify(want)) {
    await delay(100);
    got = get();
  }
  assert.deepEqual(got, want);
}

/** Stops of every loop started, so `after` ends them even when a test fails half-way. */
const running: Array<() => Promise<void>> = [];

/** Runs both dual stack setup loops of `mgr` until the returned stop is awaited. */
function startDual(mgr: IptablesTrafficManager | NftablesTrafficManager, masq: Partial<MasqRulesParams> = {}) {
  const ac = new AbortController();
  const p = { network: NET, subnet: POD, ipv6Network: NET6, ipv6Subnet: POD6, resyncSeconds: 1, randomFully: true, signal: ac.signal, ...masq };
  let firstApplies = 0;
  const done = Promise.all([
    mgr.setupAndEnsureMasqRules({ ...p, onFirstApply: () => firstApplies++ }),
    mgr.setupAndEnsureForwardRules({ network: p.network, ipv6Network: p.ipv6Network, resyncSeconds: 1, signal: ac.signal, onFirstApply: () => firstApplies++ }),
  ]);
  const stop = async () => {
    ac.abort();
    await done;
  };
  running.push(stop);
  return { stop, firstApplies: () => firstApplies };
}

describe('dual stack traffic rules (root, netns)', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  after(async () => {
    await Promise.allSettled(running.splice(0).map((s) => s()));
    netns.cleanup();
  });

  it('iptables mode: exact ip6tables nat/filter rules beside the v4 ones; a deleted v6 rule comes back', async () => {
    const ns = netns.add('tr6-ipt');
    nsRun(ns, 'ip6tables', ['-w', '-t', 'nat', ...PLANTED_NAT6.split(' ')]);
    const mgr = new IptablesTrafficManager({ netns: ns });
    await mgr.init(AbortSignal.timeout(10_000));
    const loops = startDual(mgr);
    const want6 = [PLANTED_NAT6, ...specMasq6('2001:db8:42::/56', '2001:db8:42:1::/64')];
    await eventually(() => nat6(ns), want6);
    await eventually(() => filter6(ns), specFwd6('2001:db8:42::/56'));
    // One readiness signal per rule kind, after both families (polled: the callback may trail the kernel state).
    await eventually(() => loops.firstApplies(), 2);
    // The v4 chain holds only v4 rules (and v6 only v6): the families do not leak into each other.
    assert.equal(nat4(ns).length, 8);
    assert.ok(nat4(ns).every((l) => !l.includes(':')));
    assert.match(nsRun(ns, 'ip6tables', ['-w', '-S', 'FORWARD']), /^-P FORWARD ACCEPT$/m);

    nsRun(ns, 'ip6tables', ['-w', '-t', 'nat', '-D', 'FLANNEL-POSTRTG', '4']);
    nsRun(ns, 'ip6tables', ['-w', '-t', 'filter', '-D', 'FORWARD', '-m', 'comment', '--comment', 'flanneld forward', '-j', 'FLANNEL-FWD']);
    assert.notDeepEqual(nat6(ns), want6);
    await eventually(() => nat6(ns), want6);
    await eventually(() => filter6(ns), specFwd6('2001:db8:42::/56'));
    await loops.stop();
  });

  it('iptables mode: a changed v6 subnet replaces the old ip6tables rules; IPv6 turned off deletes them', async () => {
    const ns = netns.add('tr6-rec');
    const first = startDual(new IptablesTrafficManager({ netns: ns }));
    await eventually(() => nat6(ns), specMasq6('2001:db8:42::/56', '2001:db8:42:1::/64'));
    await first.stop();

    const pod6b = IPv6Net.parse('2001:db8:42:7::/64');
    const second = startDual(new IptablesTrafficManager({ netns: ns }), { ipv6Subnet: pod6b, prevNetwork: NET, prevSubnet: POD, prevIpv6Network: NET6, prevIpv6Subnet: POD6, randomFully: false });
    await eventually(() => nat6(ns), specMasq6('2001:db8:42::/56', '2001:db8:42:7::/64', ''));
    await second.stop();

    // The next run is v4 only: the v6 masquerade rules of the previous run go (the chain itself stays, as for v4).
    const third = new IptablesTrafficManager({ netns: ns });
    const ac = new AbortController();
    const masq = third.setupAndEnsureMasqRules({ network: NET, subnet: POD, prevNetwork: NET, prevSubnet: POD, prevIpv6Network: NET6, prevIpv6Subnet: pod6b, resyncSeconds: 1, randomFully: false, signal: ac.signal });
    running.push(async () => {
      ac.abort();
      await masq;
    });
    await eventually(() => nat6(ns), ['-N FLANNEL-POSTRTG']);
    assert.equal(nat4(ns).length, 8);
  });

  it('nftables mode: both tables at init, exact ip6 flannel-ipv6 table, a flushed v6 chain comes back, no re-apply when intact', async () => {
    const ns = netns.add('tr6-nft');
    const mgr = new NftablesTrafficManager({ netns: ns });
    await mgr.init(AbortSignal.timeout(10_000));
    assert.equal(nftTable6(ns), 'table ip6 flannel-ipv6 {\n\tcomment "rules for flannel-ipv6"\n}\n');
    const loops = startDual(mgr);
    const want6 = specTable6('2001:db8:42::/56', '2001:db8:42:1::/64');
    await eventually(() => nftTable6(ns), want6);
    await eventually(() => nftTable(ns), specTable('10.244.0.0/16', '10.244.1.0/24'));
    await eventually(() => loops.firstApplies(), 2);

    // The resync reads the ip6 chains back as equal: rule handles stay the same across two periods.
    const handles = () => nsRun(ns, 'nft', ['-a', 'list', 'table', 'ip6', 'flannel-ipv6']);
    const before = handles();
    await delay(2500);
    assert.equal(handles(), before);

    nsRun(ns, 'nft', ['flush', 'chain', 'ip6', 'flannel-ipv6', 'postrtg']);
    nsRun(ns, 'nft', ['delete', 'chain', 'ip6', 'flannel-ipv6', 'forward']);
    assert.doesNotMatch(nftTable6(ns), /masquerade|chain forward/);
    await eventually(() => nftTable6(ns), want6);
    await loops.stop();
  });
});
