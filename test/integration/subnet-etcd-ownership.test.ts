// Who owns a subnet key, against a real etcd: the owner heals its key when someone overwrites it, a node never takes
// the lease of another live node with the same public IP, retries after lost races try other subnets, keys under
// subnets/ that name no subnet are warned about, and a node holds one etcd lease however often it restarts.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Etcd3 } from 'etcd3';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { etcdMissing } from '../helpers/etcd.ts';
import { EtcdSubnetFixture, vxlanAttrs as vxlan, vxlanValue as valueOf } from '../helpers/etcd-subnet.ts';
import { LogRecorder } from '../helpers/log.ts';
import { until, within } from '../helpers/wait.ts';

const CONFIG = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}';

const fx = new EtcdSubnetFixture(CONFIG, 'flannel-own');
const { freshPrefix, manager, acquire } = fx;
let admin: Etcd3;

async function keyState(key: string): Promise<{ value: string; lease: string } | null> {
  const kv = (await admin.get(key).exec()).kvs[0];
  return kv ? { value: kv.value.toString(), lease: String(kv.lease) } : null;
}

async function liveLeaseIds(): Promise<string[]> {
  return (await admin.leaseClient.leaseLeases()).leases.map((l) => String(l.ID)).sort();
}

describe('etcd subnet manager: ownership of the own key', { skip: etcdMissing }, () => {
  let logs: LogRecorder;
  before(async () => {
    await fx.start();
    admin = fx.admin;
    logs = new LogRecorder();
  });
  after(async () => {
    logs.stop();
    await fx.destroy();
  });

  /** A node holding its lease (acquired, renewal running) on a fresh prefix. */
  async function runningNode(ip: string, mac: string) {
    const prefix = await freshPrefix();
    const m = manager(prefix, { random: () => 0 });
    const lease = await acquire(m, vxlan(ip, mac));
    const key = m.registry.subnetKey(lease);
    const ac = new AbortController();
    const outcome = m.completeLease(lease, ac.signal);
    // The renewal watch has read the key once it is listed: give it a moment.
    await new Promise((r) => setTimeout(r, 300));
    return { prefix, key, lease, ac, outcome };
  }

  it('writes its own key back within seconds when someone overwrote it with garbage', async () => {
    const n = await runningNode('192.168.60.1', 'aa:00:00:00:00:01');
    await admin.put(n.key).value('garbage');
    await until(
      'the key healed',
      async () => {
        const s = await keyState(n.key);
        return s?.value === valueOf('192.168.60.1', 'aa:00:00:00:00:01') && s.lease !== '0';
      },
      5000,
      50,
    );
    assert.equal(logs.find(n.key, 'overwritten with a value that is no lease').length, 1);
    n.ac.abort();
    assert.equal(await within(3000, 'the monitor to end', n.outcome), 'aborted');
  });

  it('reattaches its key to an etcd lease after a plain put detached it, keeping one etcd lease', async () => {
    const n = await runningNode('192.168.60.2', 'aa:00:00:00:00:02');
    const held = (await keyState(n.key))!.lease;
    assert.ok((await liveLeaseIds()).includes(held));
    await admin.put(n.key).value(valueOf('192.168.60.2', 'aa:00:00:00:00:02'));
    assert.equal((await keyState(n.key))!.lease, '0', 'a plain put detaches the key');
    const healed = await until(
      'the key on an etcd lease again',
      async () => {
        const s = await keyState(n.key);
        return s && s.lease !== '0' ? s.lease : undefined;
      },
      5000,
      50,
    );
    assert.notEqual(healed, held);
    await until('the detached etcd lease revoked', async () => !(await liveLeaseIds()).includes(held), 3000, 50);
    assert.equal(logs.find(n.key, 'detached from its etcd lease').length, 1);
    n.ac.abort();
    await n.outcome;
  });

  it("writes another node's value back, and stops with a conflict when that writer keeps rewriting it", async () => {
    const n = await runningNode('192.168.60.3', 'aa:00:00:00:00:03');
    const ours = valueOf('192.168.60.3', 'aa:00:00:00:00:03');
    const theirs = valueOf('192.168.60.3', 'bb:00:00:00:00:03');
    let rewrites = 0;
    let outcome: string | undefined;
    void n.outcome.then((o) => (outcome = o));
    // A writer that fights: it puts its value back whenever the owner restored its own.
    while (outcome === undefined && rewrites < 10) {
      const lease = await admin.lease(60, { autoKeepAlive: false }).grant();
      await admin.put(n.key).value(theirs).lease(lease);
      rewrites++;
      await until(
        'the owner to answer',
        async () => outcome !== undefined || (await keyState(n.key))?.value === ours,
        5000,
        20,
      );
    }
    assert.equal(await within(3000, 'the monitor to end', n.outcome), 'conflict');
    assert.equal(rewrites, 4, 'three foreign rewrites are written back, the fourth is a conflict');
    const conflict = logs.find(n.key, 'stopping instead of fighting over it');
    assert.equal(conflict.length, 1);
    assert.match(
      conflict[0]!,
      /same public IP 192\.168\.60\.3: its VtepMAC is bb:00:00:00:00:03, this node's is aa:00:00:00:00:03/,
    );
    assert.match(conflict[0]!, /--iface, --iface-regex, --iface-can-reach or --public-ip/);
  });

  it('refuses the lease of a live node with the same public IP, naming both VtepMACs and the fix', async () => {
    const n = await runningNode('192.168.60.4', 'aa:00:00:00:00:04');
    const second = manager(n.prefix, { takeoverProbeMs: 1000 });
    await assert.rejects(
      acquire(second, vxlan('192.168.60.4', 'bb:00:00:00:00:04')),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'EDUPLICATEPUBLICIP');
        assert.match(
          e.message,
          /same public IP 192\.168\.60\.4: its VtepMAC is aa:00:00:00:00:04, this node's is bb:00:00:00:00:04/,
        );
        assert.match(e.message, /--iface, --iface-regex, --iface-can-reach or --public-ip/);
        return true;
      },
    );
    assert.equal(
      (await keyState(n.key))!.value,
      valueOf('192.168.60.4', 'aa:00:00:00:00:04'),
      'the live node keeps its lease',
    );
    assert.deepEqual(
      await fx.keys(n.prefix),
      [n.key.slice(`${n.prefix}/subnets/`.length)],
      'no second subnet for the same public IP',
    );
    n.ac.abort();
    assert.equal(await n.outcome, 'aborted');
  });

  it('takes its own lease back after a reboot (new device MAC, nobody renewing it)', async () => {
    const prefix = await freshPrefix();
    const first = manager(prefix, { random: () => 0 });
    const before = await acquire(first, vxlan('192.168.60.5', 'aa:00:00:00:00:05'));
    const key = first.registry.subnetKey(before);
    const oldEtcdLease = (await keyState(key))!.lease;
    const after = await acquire(manager(prefix, { takeoverProbeMs: 500 }), vxlan('192.168.60.5', 'bb:00:00:00:00:05'));
    assert.equal(after.subnet!.toString(), before.subnet!.toString());
    const now = (await keyState(key))!;
    assert.equal(now.value, valueOf('192.168.60.5', 'bb:00:00:00:00:05'));
    assert.ok(!(await liveLeaseIds()).includes(oldEtcdLease), 'the etcd lease of the run before is revoked');
  });

  it('holds one etcd lease however often it restarts', async () => {
    const prefix = await freshPrefix();
    const owner = manager(prefix, { random: () => 0 });
    const first = await acquire(owner, vxlan('192.168.60.6', 'aa:00:00:00:00:06'));
    const key = owner.registry.subnetKey(first);
    const leases = new Set<string>();
    for (let restart = 0; restart < 3; restart++) {
      const m = manager(prefix, { previousSubnet: first.subnet });
      await acquire(m, vxlan('192.168.60.6', 'aa:00:00:00:00:06'));
      leases.add((await keyState(key))!.lease);
      await m.close();
    }
    const live = await liveLeaseIds();
    assert.equal(
      [...leases].filter((id) => live.includes(id)).length,
      1,
      'only the etcd lease of the last run is alive',
    );
  });

  it('reclaims its previous subnet from a key that holds garbage (a put detached it from any lease)', async () => {
    const prefix = await freshPrefix();
    const key = `${prefix}/subnets/10.5.7.0-24`;
    await admin.put(key).value('garbage');
    const m = manager(prefix, { previousSubnet: IPv4Net.parse('10.5.7.0/24') });
    const lease = await acquire(m, vxlan('192.168.60.7', 'aa:00:00:00:00:07'));
    assert.equal(lease.subnet!.toString(), '10.5.7.0/24');
    const s = (await keyState(key))!;
    assert.equal(s.value, valueOf('192.168.60.7', 'aa:00:00:00:00:07'));
    assert.notEqual(s.lease, '0');
    assert.equal(logs.find(key, 'reclaiming it as this node').length, 1);
  });

  it('does not pick a key that holds garbage for a node whose previous subnet it is not', async () => {
    const prefix = await freshPrefix();
    await admin.put(`${prefix}/subnets/10.5.0.0-24`).value('garbage');
    const lease = await acquire(manager(prefix, { random: () => 0 }), vxlan('192.168.60.8', 'aa:00:00:00:00:08'));
    assert.equal(lease.subnet!.toString(), '10.5.1.0/24');
    assert.equal((await keyState(`${prefix}/subnets/10.5.0.0-24`))!.value, 'garbage');
  });

  it('tries another subnet on every retry after a lost race, the previous one included', async () => {
    const prefix = await freshPrefix();
    const tried: string[] = [];
    const m = manager(prefix, {
      previousSubnet: IPv4Net.parse('10.5.3.0/24'),
      beforeCreate: async (key) => {
        tried.push(key.slice(key.lastIndexOf('/') + 1));
        await admin.put(key).value(valueOf('192.168.60.99', 'aa:00:00:00:00:99'));
      },
    });
    await assert.rejects(acquire(m, vxlan('192.168.60.9', 'aa:00:00:00:00:09')), /max retries reached/);
    assert.equal(tried.length, 10);
    assert.equal(tried[0], '10.5.3.0-24');
    assert.equal(new Set(tried).size, 10, `retries tried one subnet twice: ${tried}`);
  });

  it('warns once about each key under subnets/ that is no subnet, at startup and while watching', async () => {
    const prefix = await freshPrefix();
    const early = `${prefix}/subnets/not-a-subnet`;
    const late = `${prefix}/subnets/10.244.236.0-24&zz::-64`;
    await admin.put(early).value('{}');
    const m = manager(prefix, { random: () => 0 });
    const own = await acquire(m, vxlan('192.168.60.10', 'aa:00:00:00:00:10'));
    const ac = new AbortController();
    let batches = 0;
    const watching = (async () => {
      for await (const _ of m.watchLeases(own, ac.signal)) batches++;
    })();
    await until('the first batch', () => batches > 0, 5000, 20);
    await admin.put(late).value('{}');
    await admin.put(early).value('{"again":1}');
    await until('the late key warned about', () => logs.find(late, 'not a subnet key').length > 0, 5000, 50);
    ac.abort();
    await within(3000, 'the watch to end', watching);
    const early1 = logs.find(early, 'not a subnet key');
    assert.equal(early1.length, 1, early1.join('\n'));
    assert.match(early1[0]!, /^W\d{4} /, 'at warning level');
    assert.equal(logs.find(late, 'not a subnet key').length, 1);
  });
});
