// The iptables traffic manager against the real kernel, each case in its own network namespace.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IptablesTrafficManager } from '../../src/traffic/iptables/index.ts';
import { Netns, isRoot, nsRun } from '../helpers/netns.ts';
import { eventually } from '../helpers/wait.ts';
import { filterRules, natRules, specFwd, specMasq, flannelJump } from '../helpers/iptables.ts';
import { RuleLoops } from '../helpers/rule-loops.ts';

const NET = IPv4Net.parse('10.244.0.0/16');
const POD = IPv4Net.parse('10.244.1.0/24');

const PLANTED_NAT = '-A POSTROUTING -s 192.0.2.0/24 -j RETURN';
const PLANTED_FWD = '-A FORWARD -s 198.51.100.0/24 -j ACCEPT';

const nat = (ns: string) => natRules(ns, 'iptables');
const filter = (ns: string) => filterRules(ns, 'iptables');

describe('iptables traffic manager (root, netns)', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  const loops = new RuleLoops();
  after(async () => {
    await loops.stopAll();
    netns.cleanup();
  });

  describe('masquerade and forward rules', () => {
    let ns = '';
    before(() => {
      ns = netns.add('tr-ipt');
      nsRun(ns, 'iptables', ['-w', '-t', 'nat', ...PLANTED_NAT.split(' ')]);
      nsRun(ns, 'iptables', ['-w', '-t', 'filter', ...PLANTED_FWD.split(' ')]);
    });

    it('appends exactly the spec rules after pre-existing rules', async () => {
      const mgr = new IptablesTrafficManager({ netns: ns });
      await mgr.init(AbortSignal.timeout(10_000));
      loops.run((signal) =>
        mgr.setupAndEnsureMasqRules({ network: NET, subnet: POD, resyncSeconds: 1, randomFully: true, signal }),
      );
      loops.run((signal) => mgr.setupAndEnsureForwardRules({ network: NET, resyncSeconds: 1, signal }));
      await eventually(() => nat(ns), [PLANTED_NAT, ...specMasq('10.244.0.0/16', '10.244.1.0/24')]);
      await eventually(() => filter(ns), [PLANTED_FWD, ...specFwd('10.244.0.0/16')]);
      // The FORWARD policy is never touched.
      assert.match(nsRun(ns, 'iptables', ['-w', '-S', 'FORWARD']), /^-P FORWARD ACCEPT$/m);
    });

    it('restores a rule deleted by hand, in order, on the next resync', async () => {
      // nsRun throws if a deletion fails, so both rules are really gone before the resync runs.
      nsRun(ns, 'iptables', ['-w', '-t', 'nat', '-D', 'FLANNEL-POSTRTG', '3']);
      flannelJump(ns, 'iptables', '-D', 'forward');
      await eventually(() => nat(ns), [PLANTED_NAT, ...specMasq('10.244.0.0/16', '10.244.1.0/24')]);
      await eventually(() => filter(ns), [PLANTED_FWD, ...specFwd('10.244.0.0/16')]);
    });

    it('does not duplicate anything when setup runs again (a restart)', async () => {
      await loops.stopAll();
      const again = new IptablesTrafficManager({ netns: ns });
      await again.init(AbortSignal.timeout(10_000));
      const ac = new AbortController();
      const masq = again.setupAndEnsureMasqRules({
        network: NET,
        subnet: POD,
        resyncSeconds: 1,
        randomFully: true,
        signal: ac.signal,
      });
      const fwd = again.setupAndEnsureForwardRules({ network: NET, resyncSeconds: 1, signal: ac.signal });
      await delay(1500); // past the bootstrap and one resync
      ac.abort();
      await Promise.all([masq, fwd]);
      assert.deepEqual(nat(ns), [PLANTED_NAT, ...specMasq('10.244.0.0/16', '10.244.1.0/24')]);
      assert.deepEqual(filter(ns), [PLANTED_FWD, ...specFwd('10.244.0.0/16')]);
    });

    it('leaves every rule in place after the loops stop (no cleanup on shutdown)', async () => {
      await loops.stopAll();
      assert.deepEqual(nat(ns), [PLANTED_NAT, ...specMasq('10.244.0.0/16', '10.244.1.0/24')]);
      assert.deepEqual(filter(ns), [PLANTED_FWD, ...specFwd('10.244.0.0/16')]);
    });
  });

  it('collapses duplicate jumps into one appended jump', async () => {
    const ns = netns.add('tr-dup');
    const jump = ['-m', 'comment', '--comment', 'flanneld forward', '-j', 'FLANNEL-FWD'];
    nsRun(ns, 'iptables', ['-w', '-N', 'FLANNEL-FWD']);
    nsRun(ns, 'iptables', ['-w', '-A', 'FORWARD', ...jump]);
    nsRun(ns, 'iptables', ['-w', '-A', 'FORWARD', ...jump]);
    nsRun(ns, 'iptables', ['-w', ...PLANTED_FWD.split(' ')]);
    const mgr = new IptablesTrafficManager({ netns: ns });
    loops.run((signal) => mgr.setupAndEnsureForwardRules({ network: NET, resyncSeconds: 1, signal }));
    await eventually(() => filter(ns), [PLANTED_FWD, ...specFwd('10.244.0.0/16')]);
  });

  it('replaces the rule set of a previous network/subnet with the new one', async () => {
    const ns = netns.add('tr-recycle');
    const first = new IptablesTrafficManager({ netns: ns });
    const ac = loops.run((signal) =>
      first.setupAndEnsureMasqRules({ network: NET, subnet: POD, resyncSeconds: 1, randomFully: true, signal }),
    );
    await eventually(() => nat(ns), specMasq('10.244.0.0/16', '10.244.1.0/24'));
    ac.abort();

    const second = new IptablesTrafficManager({ netns: ns });
    loops.run((signal) =>
      second.setupAndEnsureMasqRules({
        network: IPv4Net.parse('10.50.0.0/16'),
        subnet: IPv4Net.parse('10.50.7.0/24'),
        prevNetwork: NET,
        prevSubnet: POD,
        resyncSeconds: 1,
        randomFully: false,
        signal,
      }),
    );
    await eventually(() => nat(ns), specMasq('10.50.0.0/16', '10.50.7.0/24', ''));
    assert.doesNotMatch(nsRun(ns, 'iptables', ['-w', '-t', 'nat', '-S']), /10\.244\./);
  });

  it('deletes the nftables-mode tables at init and leaves other tables alone', async () => {
    const ns = netns.add('tr-nft');
    nsRun(ns, 'nft', ['add', 'table', 'ip', 'flannel-ipv4']);
    nsRun(ns, 'nft', ['add', 'table', 'ip6', 'flannel-ipv6']);
    nsRun(ns, 'nft', ['add', 'table', 'ip', 'keep-me']);
    const tables = () =>
      (JSON.parse(nsRun(ns, 'nft', ['-j', 'list', 'tables'])).nftables as any[])
        .filter((e) => e.table)
        .map((e) => `${e.table.family} ${e.table.name}`)
        .sort();
    assert.deepEqual(tables(), ['ip flannel-ipv4', 'ip keep-me', 'ip6 flannel-ipv6']);
    await new IptablesTrafficManager({ netns: ns }).init(AbortSignal.timeout(10_000));
    assert.deepEqual(tables(), ['ip keep-me']);
  });
});
