// Dual stack rules against the real kernel: ip6tables and `ip6 flannel-ipv6` (docs/COMPATIBILITY.md, "iptables rules",
// "nftables rules"), each case in its own network namespace, next to the unchanged IPv4 rules.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';
import { IptablesTrafficManager } from '../../src/traffic/iptables/index.ts';
import { NftablesTrafficManager } from '../../src/traffic/nftables/index.ts';
import { Netns, isRoot, nsRun } from '../helpers/netns.ts';
import { eventually } from '../helpers/wait.ts';
import { RuleLoops, type LoopParams } from '../helpers/rule-loops.ts';
import { filterRules, natRules, specFwd, specMasq6, flannelJump } from '../helpers/iptables.ts';
import { emptyTable6, nftTable, nftTable6, specTable, specTable6 } from '../helpers/nftables.ts';

const NET = IPv4Net.parse('10.244.0.0/16');
const POD = IPv4Net.parse('10.244.1.0/24');
const NET6 = IPv6Net.parse('2001:db8:42::/56');
const POD6 = IPv6Net.parse('2001:db8:42:1::/64');

const PLANTED_NAT6 = '-A POSTROUTING -s 2001:db8:99::/64 -j RETURN';

const nat6 = (ns: string) => natRules(ns, 'ip6tables');
const filter6 = (ns: string) => filterRules(ns, 'ip6tables');
const nat4 = (ns: string) => natRules(ns, 'iptables');

const ruleLoops = new RuleLoops();

/** Runs both dual stack setup loops of `mgr` until the returned stop is awaited. */
const startDual = (mgr: IptablesTrafficManager | NftablesTrafficManager, masq: LoopParams = {}) =>
  ruleLoops.start(mgr, { network: NET, subnet: POD, ipv6Network: NET6, ipv6Subnet: POD6, ...masq });

describe('dual stack traffic rules (root, netns)', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  after(async () => {
    await ruleLoops.stopAll();
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
    await eventually(() => filter6(ns), specFwd('2001:db8:42::/56'));
    // One readiness signal per rule kind, after both families (polled: the callback may trail the kernel state).
    await eventually(() => loops.firstApplies(), 2);
    // The v4 chain holds only v4 rules (and v6 only v6): the families do not leak into each other.
    assert.equal(nat4(ns).length, 8);
    assert.ok(nat4(ns).every((l) => !l.includes(':')));
    assert.match(nsRun(ns, 'ip6tables', ['-w', '-S', 'FORWARD']), /^-P FORWARD ACCEPT$/m);

    nsRun(ns, 'ip6tables', ['-w', '-t', 'nat', '-D', 'FLANNEL-POSTRTG', '4']);
    flannelJump(ns, 'ip6tables', '-D', 'forward');
    assert.notDeepEqual(nat6(ns), want6);
    await eventually(() => nat6(ns), want6);
    await eventually(() => filter6(ns), specFwd('2001:db8:42::/56'));
    await loops.stop();
  });

  it('iptables mode: a changed v6 subnet replaces the old ip6tables rules; IPv6 turned off deletes them and the chain', async () => {
    const ns = netns.add('tr6-rec');
    const first = startDual(new IptablesTrafficManager({ netns: ns }));
    await eventually(() => nat6(ns), specMasq6('2001:db8:42::/56', '2001:db8:42:1::/64'));
    await first.stop();

    const pod6b = IPv6Net.parse('2001:db8:42:7::/64');
    const second = startDual(new IptablesTrafficManager({ netns: ns }), {
      ipv6Subnet: pod6b,
      prevNetwork: NET,
      prevSubnet: POD,
      prevIpv6Network: NET6,
      prevIpv6Subnet: POD6,
      randomFully: false,
    });
    await eventually(() => nat6(ns), specMasq6('2001:db8:42::/56', '2001:db8:42:7::/64', ''));
    await second.stop();

    // The next run is v4 only: the previous run's ip6tables chain goes with its jump (iptables mode keeps no chain of a
    // family it does not use); the v4 rules stay as they are.
    const third = new IptablesTrafficManager({ netns: ns });
    const ac = new AbortController();
    const masq = third.setupAndEnsureMasqRules({
      network: NET,
      subnet: POD,
      prevNetwork: NET,
      prevSubnet: POD,
      prevIpv6Network: NET6,
      prevIpv6Subnet: pod6b,
      resyncSeconds: 1,
      randomFully: false,
      signal: ac.signal,
    });
    ruleLoops.add(async () => {
      ac.abort();
      await masq;
    });
    await eventually(() => nat6(ns), []);
    assert.equal(nat4(ns).length, 8);
  });

  it('nftables mode: both tables at init, exact ip6 flannel-ipv6 table, a flushed v6 chain comes back, no re-apply when intact', async () => {
    const ns = netns.add('tr6-nft');
    const mgr = new NftablesTrafficManager({ netns: ns });
    await mgr.init(AbortSignal.timeout(10_000));
    assert.equal(nftTable6(ns), emptyTable6);
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
