// An IP family the network does not use keeps no flannel rules, in both modes: an IPv6-only network removes the IPv4
// chains and jumps an earlier run left (whatever subnet built them), IPv6 turned off removes the IPv6 ones. Real
// kernel, each case in its own network namespace.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';
import { IptablesTrafficManager } from '../../src/traffic/iptables/index.ts';
import { NftablesTrafficManager } from '../../src/traffic/nftables/index.ts';
import type { MasqRulesParams, TrafficManager } from '../../src/traffic/traffic-manager.ts';
import { Netns, isRoot, nsRun } from '../helpers/netns.ts';
import { eventually } from '../helpers/wait.ts';
import { LogRecorder } from '../helpers/log.ts';
import { RuleLoops } from '../helpers/rule-loops.ts';
import { filterRules, flannelLines, natRules, specFwd, specMasq, specMasq6 } from '../helpers/iptables.ts';
import { emptyTable, emptyTable6, nftTable, nftTable6, specTable, specTable6 } from '../helpers/nftables.ts';

const NET = IPv4Net.parse('10.244.0.0/16');
const POD = IPv4Net.parse('10.244.1.0/24');
/** What an earlier run used: the cleanup must not depend on knowing it. */
const OLD_NET = IPv4Net.parse('10.50.0.0/16');
const OLD_POD = IPv4Net.parse('10.50.7.0/24');
const NET6 = IPv6Net.parse('2001:db8:42::/56');
const POD6 = IPv6Net.parse('2001:db8:42:1::/64');

const PLANTED_NAT = '-A POSTROUTING -s 192.0.2.0/24 -j RETURN';
const PLANTED_FWD = '-A FORWARD -s 198.51.100.0/24 -j ACCEPT';
const PLANTED_NAT6 = '-A POSTROUTING -s 2001:db8:99::/64 -j RETURN';

type Families = Partial<
  Pick<
    MasqRulesParams,
    | 'network'
    | 'subnet'
    | 'ipv6Network'
    | 'ipv6Subnet'
    | 'prevNetwork'
    | 'prevSubnet'
    | 'prevIpv6Network'
    | 'prevIpv6Subnet'
  >
>;

const ruleLoops = new RuleLoops();
/** Runs both setup loops of `mgr` for the given families until `stop()`; counts the first-apply callbacks. */
const start = (mgr: TrafficManager, f: Families) => ruleLoops.start(mgr, f);

const DUAL: Families = { network: OLD_NET, subnet: OLD_POD, ipv6Network: NET6, ipv6Subnet: POD6 };

describe('a disabled IP family leaves no flannel rules (root, netns)', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  after(async () => {
    await ruleLoops.stopAll();
    netns.cleanup();
  });

  it('iptables mode, IPv6 only: every IPv4 flannel chain and jump goes, whatever subnet built it; only ip6tables rules go in', async () => {
    const ns = netns.add('ftc-ipt4off');
    nsRun(ns, 'iptables', ['-w', '-t', 'nat', ...PLANTED_NAT.split(' ')]);
    nsRun(ns, 'iptables', ['-w', '-t', 'filter', ...PLANTED_FWD.split(' ')]);
    const first = start(new IptablesTrafficManager({ netns: ns }), DUAL);
    await eventually(() => natRules(ns, 'iptables'), [PLANTED_NAT, ...specMasq('10.50.0.0/16', '10.50.7.0/24')]);
    await eventually(() => filterRules(ns, 'iptables'), [PLANTED_FWD, ...specFwd('10.50.0.0/16')]);
    await first.stop();
    // More than the exact rule set: a second jump and a rule of some other run.
    nsRun(ns, 'iptables', ['-w', '-t', 'nat', '-A', 'POSTROUTING', '-j', 'FLANNEL-POSTRTG']);
    nsRun(ns, 'iptables', ['-w', '-t', 'nat', '-A', 'FLANNEL-POSTRTG', '-s', '10.99.0.0/16', '-j', 'RETURN']);
    nsRun(ns, 'iptables', ['-w', '-t', 'filter', '-I', 'FORWARD', '-j', 'FLANNEL-FWD']);

    const log = new LogRecorder();
    // The previous values name yet another network: the removal must not rely on them.
    const mgr = new IptablesTrafficManager({ netns: ns });
    await mgr.init(AbortSignal.timeout(10_000));
    const v6only = start(mgr, {
      ipv6Network: NET6,
      ipv6Subnet: POD6,
      prevNetwork: NET,
      prevSubnet: POD,
      prevIpv6Network: NET6,
      prevIpv6Subnet: POD6,
    });
    try {
      await eventually(() => v6only.firstApplies(), 2);
      await eventually(() => flannelLines(ns, 'iptables'), []);
      assert.deepEqual(natRules(ns, 'iptables'), [PLANTED_NAT]);
      assert.deepEqual(filterRules(ns, 'iptables'), [PLANTED_FWD]);
      assert.deepEqual(natRules(ns, 'ip6tables'), specMasq6('2001:db8:42::/56', '2001:db8:42:1::/64'));
      assert.deepEqual(filterRules(ns, 'ip6tables'), specFwd('2001:db8:42::/56'));
      await delay(1500); // past a resync: nothing IPv4 comes back
      assert.deepEqual(flannelLines(ns, 'iptables'), []);
    } finally {
      log.stop();
    }
    assert.deepEqual(log.matching(/Setting up (masking|forward) rules/), []);
    assert.equal(
      log.matching(/Setting up IPv6 masking rules for network 2001:db8:42::\/56, subnet 2001:db8:42:1::\/64/).length,
      1,
    );
    assert.equal(log.matching(/Setting up IPv6 forward rules for network 2001:db8:42::\/56/).length, 1);
    assert.equal(
      log.matching(/Deleted the iptables nat chain FLANNEL-POSTRTG and the jumps to it: the network has no IPv4 part/)
        .length,
      1,
    );
    assert.equal(
      log.matching(/Deleted the iptables filter chain FLANNEL-FWD and the jumps to it: the network has no IPv4 part/)
        .length,
      1,
    );
    assert.deepEqual(log.matching(/ip6tables .*chain/), []);
    await v6only.stop();
  });

  it('iptables mode, IPv6 off without previous v6 values: the ip6tables chains and jumps go; a second run logs no removal', async () => {
    const ns = netns.add('ftc-ipt6off');
    nsRun(ns, 'ip6tables', ['-w', '-t', 'nat', ...PLANTED_NAT6.split(' ')]);
    const first = start(new IptablesTrafficManager({ netns: ns }), DUAL);
    await eventually(
      () => natRules(ns, 'ip6tables'),
      [PLANTED_NAT6, ...specMasq6('2001:db8:42::/56', '2001:db8:42:1::/64')],
    );
    await eventually(() => filterRules(ns, 'ip6tables'), specFwd('2001:db8:42::/56'));
    await first.stop();
    nsRun(ns, 'ip6tables', ['-w', '-t', 'nat', '-A', 'FLANNEL-POSTRTG', '-s', '2001:db8:77::/64', '-j', 'RETURN']);

    const log = new LogRecorder();
    try {
      const v4only = start(new IptablesTrafficManager({ netns: ns }), {
        network: NET,
        subnet: POD,
        prevNetwork: OLD_NET,
        prevSubnet: OLD_POD,
      });
      await eventually(() => v4only.firstApplies(), 2);
      await eventually(() => flannelLines(ns, 'ip6tables'), []);
      assert.deepEqual(natRules(ns, 'ip6tables'), [PLANTED_NAT6]);
      assert.deepEqual(natRules(ns, 'iptables'), specMasq('10.244.0.0/16', '10.244.1.0/24'));
      assert.deepEqual(filterRules(ns, 'iptables'), specFwd('10.244.0.0/16'));
      await v4only.stop();
      assert.equal(
        log.matching(/Deleted the ip6tables nat chain FLANNEL-POSTRTG and the jumps to it: IPv6 is not enabled/).length,
        1,
      );
      assert.equal(
        log.matching(/Deleted the ip6tables filter chain FLANNEL-FWD and the jumps to it: IPv6 is not enabled/).length,
        1,
      );
      assert.deepEqual(log.matching(/Setting up IPv6/), []);
      assert.equal(
        log.matching(/Setting up masking rules for network 10\.244\.0\.0\/16, subnet 10\.244\.1\.0\/24/).length,
        1,
      );

      // Nothing left to remove: no removal line the next time.
      const again = start(new IptablesTrafficManager({ netns: ns }), { network: NET, subnet: POD });
      await eventually(() => again.firstApplies(), 2);
      await again.stop();
      assert.equal(log.matching(/Deleted the /).length, 2);
      assert.deepEqual(flannelLines(ns, 'ip6tables'), []);
    } finally {
      log.stop();
    }
  });

  it('nftables mode, IPv6 off: the chains of ip6 flannel-ipv6 go, the empty table stays', async () => {
    const ns = netns.add('ftc-nft6off');
    const first = new NftablesTrafficManager({ netns: ns });
    await first.init(AbortSignal.timeout(10_000));
    const dual = start(first, { network: NET, subnet: POD, ipv6Network: NET6, ipv6Subnet: POD6 });
    await eventually(() => nftTable6(ns), specTable6('2001:db8:42::/56', '2001:db8:42:1::/64'));
    await eventually(() => nftTable(ns), specTable('10.244.0.0/16', '10.244.1.0/24'));
    await dual.stop();

    const log = new LogRecorder();
    try {
      const mgr = new NftablesTrafficManager({ netns: ns });
      await mgr.init(AbortSignal.timeout(10_000));
      const v4only = start(mgr, { network: NET, subnet: POD, prevIpv6Network: NET6, prevIpv6Subnet: POD6 });
      await eventually(() => v4only.firstApplies(), 2);
      await eventually(() => nftTable6(ns), emptyTable6);
      assert.equal(nftTable(ns), specTable('10.244.0.0/16', '10.244.1.0/24'));
      await delay(1500); // past a resync: the v6 chains stay away, the v4 table stays as it is
      assert.equal(nftTable6(ns), emptyTable6);
      assert.equal(nftTable(ns), specTable('10.244.0.0/16', '10.244.1.0/24'));
      await v4only.stop();
    } finally {
      log.stop();
    }
    assert.equal(
      log.matching(/Deleted chain postrtg of nftables table ip6 flannel-ipv6: IPv6 is not enabled/).length,
      1,
    );
    assert.equal(
      log.matching(/Deleted chain forward of nftables table ip6 flannel-ipv6: IPv6 is not enabled/).length,
      1,
    );
    assert.deepEqual(log.matching(/Setting up IPv6/), []);
  });

  it('nftables mode, IPv6 only: the chains of ip flannel-ipv4 go, whatever network built them; both tables remain', async () => {
    const ns = netns.add('ftc-nft4off');
    const first = new NftablesTrafficManager({ netns: ns });
    await first.init(AbortSignal.timeout(10_000));
    const dual = start(first, DUAL);
    await eventually(() => nftTable(ns), specTable('10.50.0.0/16', '10.50.7.0/24'));
    await dual.stop();

    const log = new LogRecorder();
    try {
      const mgr = new NftablesTrafficManager({ netns: ns });
      await mgr.init(AbortSignal.timeout(10_000));
      const v6only = start(mgr, { ipv6Network: NET6, ipv6Subnet: POD6, prevNetwork: NET, prevSubnet: POD });
      await eventually(() => v6only.firstApplies(), 2);
      await eventually(() => nftTable(ns), emptyTable);
      assert.equal(nftTable6(ns), specTable6('2001:db8:42::/56', '2001:db8:42:1::/64'));
      await v6only.stop();
    } finally {
      log.stop();
    }
    assert.equal(
      log.matching(/Deleted chain postrtg of nftables table ip flannel-ipv4: the network has no IPv4 part/).length,
      1,
    );
    assert.equal(
      log.matching(/Deleted chain forward of nftables table ip flannel-ipv4: the network has no IPv4 part/).length,
      1,
    );
    assert.deepEqual(log.matching(/Setting up (masking|forward) rules/), []);
    assert.equal(log.matching(/Setting up IPv6 masking rules/).length, 1);
  });

  it('nftables mode, IPv6 only from scratch: the ip6 table lists postrtg then forward, the ip table stays empty', async () => {
    const ns = netns.add('ftc-nft6new');
    const mgr = new NftablesTrafficManager({ netns: ns });
    await mgr.init(AbortSignal.timeout(10_000));
    const v6only = start(mgr, { ipv6Network: NET6, ipv6Subnet: POD6 });
    await eventually(() => nftTable6(ns), specTable6('2001:db8:42::/56', '2001:db8:42:1::/64'));
    assert.equal(nftTable(ns), emptyTable);
    await v6only.stop();
  });
});

describe('traffic managers refuse rule parameters without any IP family', () => {
  const signal = AbortSignal.abort();
  for (const mgr of [
    new IptablesTrafficManager({ netns: 'ftc-unused' }),
    new NftablesTrafficManager({ netns: 'ftc-unused' }),
  ]) {
    it(`${mgr.constructor.name}: names the parameters to pass`, async () => {
      await assert.rejects(
        mgr.setupAndEnsureMasqRules({ resyncSeconds: 1, randomFully: true, signal }),
        /masquerade rules need at least one IP family: pass network and subnet \(IPv4\), ipv6Network and ipv6Subnet \(IPv6\)/,
      );
      await assert.rejects(
        mgr.setupAndEnsureForwardRules({ resyncSeconds: 1, signal }),
        /forward rules need at least one IP family: pass network \(IPv4\), ipv6Network \(IPv6\)/,
      );
      await assert.rejects(
        mgr.setupAndEnsureMasqRules({ network: NET, resyncSeconds: 1, randomFully: true, signal }),
        /IPv4 masquerade rules need both network and subnet \(got 10\.244\.0\.0\/16 \/ no subnet\)/,
      );
    });
  }
});
