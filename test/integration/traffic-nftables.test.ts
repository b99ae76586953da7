// The nftables traffic manager against the real kernel, each case in its own network namespace.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IptablesTrafficManager } from '../../src/traffic/iptables/index.ts';
import { NftablesTrafficManager } from '../../src/traffic/nftables/index.ts';
import { Netns, isRoot, nsRun } from '../helpers/netns.ts';
import { emptyTable, nftTable as table, specTable } from '../helpers/nftables.ts';
import { eventually } from '../helpers/wait.ts';
import { RuleLoops } from '../helpers/rule-loops.ts';
import { flannelJump } from '../helpers/iptables.ts';

const NET = IPv4Net.parse('10.244.0.0/16');
const POD = IPv4Net.parse('10.244.1.0/24');

/** `nft -j` rules per chain, without handles: what the kernel holds, in the JSON schema. */
function jsonRules(ns: string): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const e of JSON.parse(nsRun(ns, 'nft', ['-j', 'list', 'table', 'ip', 'flannel-ipv4'])).nftables as any[]) {
    if (e.chain) out[e.chain.name] = [`${e.chain.type} ${e.chain.hook} ${e.chain.prio} ${e.chain.policy}`];
    if (e.rule) out[e.rule.chain]!.push(e.rule.expr);
  }
  return out;
}

function nftTables(ns: string): string[] {
  return (JSON.parse(nsRun(ns, 'nft', ['-j', 'list', 'tables'])).nftables as any[])
    .filter((e) => e.table)
    .map((e) => `${e.table.family} ${e.table.name}`)
    .sort();
}

const ruleLoops = new RuleLoops();

/** Runs both setup loops of `mgr` until `stop()`; nothing is removed when they end. */
const startLoops = (
  mgr: NftablesTrafficManager | IptablesTrafficManager,
  net = NET,
  pod = POD,
  opts: { prevNetwork?: IPv4Net; prevSubnet?: IPv4Net } = {},
) => ruleLoops.start(mgr, { network: net, subnet: pod, ...opts }).stop;

const prefix = (field: string, addr: string, len: number, op = '==') => ({
  match: { op, left: { payload: { protocol: 'ip', field } }, right: { prefix: { addr, len } } },
});

describe('nftables traffic manager (root, netns)', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  after(async () => {
    await ruleLoops.stopAll();
    netns.cleanup();
  });

  it('writes exactly the spec table, restores a flushed chain, and never duplicates on re-apply', async () => {
    const ns = netns.add('tr-nft');
    const mgr = new NftablesTrafficManager({ netns: ns });
    await mgr.init(AbortSignal.timeout(10_000));
    assert.equal(table(ns), emptyTable);
    const stop = startLoops(mgr);
    const want = specTable('10.244.0.0/16', '10.244.1.0/24');
    await eventually(() => table(ns), want);

    // The JSON view agrees with the text: same hooks and priorities, same expressions.
    const json = jsonRules(ns);
    assert.deepEqual(json.postrtg![0], 'nat postrouting 100 accept');
    assert.deepEqual(json.forward, [
      'filter forward 0 accept',
      [prefix('saddr', '10.244.0.0', 16), { accept: null }],
      [prefix('daddr', '10.244.0.0', 16), { accept: null }],
    ]);
    assert.deepEqual(json.postrtg![4], [
      prefix('saddr', '10.244.1.0', 24, '!='),
      prefix('daddr', '10.244.0.0', 16),
      { return: null },
    ]);

    // Flushed by hand: the resync (1 s) puts every rule back, in order.
    nsRun(ns, 'nft', ['flush', 'chain', 'ip', 'flannel-ipv4', 'postrtg']);
    nsRun(ns, 'nft', ['delete', 'chain', 'ip', 'flannel-ipv4', 'forward']);
    assert.doesNotMatch(table(ns), /masquerade|chain forward/);
    await eventually(() => table(ns), want);

    // A restart applies again on top of the same table: still one copy of everything.
    await stop();
    const again = new NftablesTrafficManager({ netns: ns });
    await again.init(AbortSignal.timeout(10_000));
    const stopAgain = startLoops(again);
    await delay(1500); // past the first apply and one resync
    await stopAgain();
    assert.equal(table(ns), want);
  });

  it('replaces the rules of a previous network/subnet (the chain flush) and honours a disabled fully-random', async () => {
    const ns = netns.add('tr-nftre');
    const first = new NftablesTrafficManager({ netns: ns });
    await first.init(AbortSignal.timeout(10_000));
    const stopFirst = startLoops(first);
    await eventually(() => table(ns), specTable('10.244.0.0/16', '10.244.1.0/24'));
    await stopFirst();

    const second = new NftablesTrafficManager({ netns: ns });
    const ac = new AbortController();
    const net = IPv4Net.parse('10.50.0.0/16');
    const masq = second.setupAndEnsureMasqRules({
      network: net,
      subnet: IPv4Net.parse('10.50.7.0/24'),
      prevNetwork: NET,
      prevSubnet: POD,
      resyncSeconds: 1,
      randomFully: false,
      signal: ac.signal,
    });
    const fwd = second.setupAndEnsureForwardRules({ network: net, resyncSeconds: 1, signal: ac.signal });
    ruleLoops.add(async () => {
      ac.abort();
      await Promise.all([masq, fwd]);
    });
    await eventually(() => table(ns), specTable('10.50.0.0/16', '10.50.7.0/24', ''));
    assert.doesNotMatch(table(ns), /10\.244\./);
  });

  it('iptables → nftables: deletes FLANNEL-POSTRTG (nat) and FLANNEL-FWD (filter) with their jumps, keeps other rules', async () => {
    const ns = netns.add('tr-i2n');
    const ipt = new IptablesTrafficManager({ netns: ns });
    await ipt.init(AbortSignal.timeout(10_000));
    const stopIpt = startLoops(ipt);
    const natRules = () => nsRun(ns, 'iptables', ['-w', '-t', 'nat', '-S']);
    const filterRules = () => nsRun(ns, 'iptables', ['-w', '-t', 'filter', '-S']);
    const deadline = Date.now() + 8000;
    while (Date.now() < deadline && !(/-j FLANNEL-POSTRTG/.test(natRules()) && /-j FLANNEL-FWD/.test(filterRules())))
      await delay(100);
    await stopIpt();
    assert.match(natRules(), /-A POSTROUTING .*-j FLANNEL-POSTRTG/);
    assert.match(filterRules(), /-A FORWARD .*-j FLANNEL-FWD/);
    nsRun(ns, 'iptables', ['-w', '-t', 'nat', '-A', 'POSTROUTING', '-s', '192.0.2.0/24', '-j', 'RETURN']);
    nsRun(ns, 'ip6tables', ['-w', '-t', 'nat', '-N', 'FLANNEL-POSTRTG']);
    flannelJump(ns, 'ip6tables', '-A', 'masq');

    await new NftablesTrafficManager({ netns: ns }).init(AbortSignal.timeout(10_000));
    assert.equal(
      natRules(),
      '-P PREROUTING ACCEPT\n-P INPUT ACCEPT\n-P OUTPUT ACCEPT\n-P POSTROUTING ACCEPT\n-A POSTROUTING -s 192.0.2.0/24 -j RETURN\n',
    );
    assert.equal(filterRules(), '-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n');
    assert.doesNotMatch(nsRun(ns, 'ip6tables', ['-w', '-t', 'nat', '-S']), /FLANNEL/);
  });

  it('nftables → iptables: the flannel tables are gone, other tables stay', async () => {
    const ns = netns.add('tr-n2i');
    nsRun(ns, 'nft', ['add', 'table', 'ip', 'keep-me']);
    const mgr = new NftablesTrafficManager({ netns: ns });
    await mgr.init(AbortSignal.timeout(10_000));
    const stop = startLoops(mgr);
    await eventually(() => table(ns), specTable('10.244.0.0/16', '10.244.1.0/24'));
    await stop();
    await new IptablesTrafficManager({ netns: ns }).init(AbortSignal.timeout(10_000));
    assert.deepEqual(
      nftTables(ns).filter((t) => !/^ip6? (nat|filter)$/.test(t)),
      ['ip keep-me'],
    );
  });
});
