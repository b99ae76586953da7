// The etcd subnet manager against a real etcd: keys, values and etcd leases as etcd itself reports them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Etcd3 } from 'etcd3';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import type { LeaseEvent } from '../../src/subnet/lease.ts';
import { etcdMissing, type EtcdHandle } from '../helpers/etcd.ts';
import { EtcdSubnetFixture, vxlanAttrs as vxlan, vxlanValue as valueOf } from '../helpers/etcd-subnet.ts';
import { within } from '../helpers/wait.ts';
import { leaseLines } from '../helpers/lease-events.ts';

const CONFIG = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}';

const fx = new EtcdSubnetFixture(CONFIG, 'flannel-test');
const { stop, freshPrefix, manager, acquire, etcdctl } = fx;
let etcd: EtcdHandle;
let admin: Etcd3;

async function leaseIdOf(key: string): Promise<string> {
  const res = await admin.get(key).exec();
  assert.equal(res.kvs.length, 1, `${key} exists`);
  return String(res.kvs[0]!.lease);
}

const summary = (evs: LeaseEvent[]) => leaseLines(evs, undefined, { sorted: true });

describe('etcd subnet manager', { skip: etcdMissing }, () => {
  before(async () => {
    await fx.start();
    ({ etcd, admin } = fx);
  });

  after(() => fx.destroy());

  it('names itself after the previous subnet', () => {
    assert.equal(manager('/x').name, 'Etcd Local Manager with Previous Subnet: None');
    assert.equal(
      manager('/x', { previousSubnet: IPv4Net.parse('10.5.3.0/24') }).name,
      'Etcd Local Manager with Previous Subnet: 10.5.3.0/24',
    );
  });

  it('waits for the config to appear and validates it', async () => {
    const prefix = await freshPrefix(false);
    const m = manager(prefix);
    const pending = m.getNetworkConfig(stop.signal);
    await new Promise((r) => setTimeout(r, 1200));
    await admin.put(`${prefix}/config`).value('{"Network":"10.7.0.0/16"}');
    const config = await within(5000, 'the config', pending);
    assert.equal(config.network?.toString(), '10.7.0.0/16');
    assert.equal(config.subnetLen, 24);
    assert.equal(config.backendType, 'udp');
  });

  it('gives up waiting for the config when aborted', async () => {
    const m = manager(await freshPrefix(false));
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    await assert.rejects(within(3000, 'abort', m.getNetworkConfig(ac.signal)));
  });

  it('creates the exact key and JSON with a 24 h etcd lease', async () => {
    const prefix = await freshPrefix();
    const lease = await acquire(manager(prefix, { random: () => 0 }), vxlan('192.168.50.1', 'c6:d2:32:6f:8f:44'));
    assert.equal(lease.subnet!.toString(), '10.5.1.0/24');
    const key = `${prefix}/subnets/10.5.1.0-24`;
    assert.equal(etcdctl('get', key, '--print-value-only').trim(), valueOf('192.168.50.1', 'c6:d2:32:6f:8f:44'));
    // Lease IDs are 64-bit: read them as text, JSON.parse would round them.
    const leaseId = /"lease":(\d+)/.exec(etcdctl('get', key, '-w', 'json'))?.[1];
    assert.ok(leaseId && leaseId !== '0', 'the key is bound to an etcd lease');
    const ttl = JSON.parse(etcdctl('lease', 'timetolive', BigInt(leaseId).toString(16), '-w', 'json'));
    assert.equal(ttl['granted-ttl'], 86400);
    assert.ok(ttl.ttl > 86300 && ttl.ttl <= 86400, `ttl ${ttl.ttl}`);
    assert.ok(lease.expiration && Math.abs(lease.expiration.getTime() - Date.now() - 86400_000) < 10_000);
  });

  it("reuses the lease that carries this node's public IP, with a new etcd lease", async () => {
    const prefix = await freshPrefix();
    await admin.put(`${prefix}/subnets/10.5.9.0-24`).value(valueOf('192.168.50.9', 'aa:aa:aa:aa:aa:09'));
    const first = await acquire(manager(prefix), vxlan('192.168.50.2', 'aa:aa:aa:aa:aa:02'));
    const key = `${prefix}/subnets/${first.subnet!.toString().replace('/', '-')}`;
    const firstId = await leaseIdOf(key);
    const again = await acquire(
      manager(prefix, { previousSubnet: IPv4Net.parse('10.5.77.0/24') }),
      vxlan('192.168.50.2', 'bb:bb:bb:bb:bb:02'),
    );
    assert.equal(again.subnet!.toString(), first.subnet!.toString());
    assert.notEqual(await leaseIdOf(key), firstId);
    assert.equal(await admin.get(key).string(), valueOf('192.168.50.2', 'bb:bb:bb:bb:bb:02'));
    assert.equal((await admin.getAll().prefix(`${prefix}/subnets/`).keys()).length, 2);
  });

  it('deletes an own lease that no longer fits the config', async () => {
    const prefix = await freshPrefix();
    await admin.put(`${prefix}/subnets/10.5.0.0-24`).value(valueOf('192.168.50.3', 'aa:aa:aa:aa:aa:03'));
    const lease = await acquire(manager(prefix, { random: () => 0 }), vxlan('192.168.50.3', 'aa:aa:aa:aa:aa:03'));
    assert.equal(lease.subnet!.toString(), '10.5.1.0/24');
    assert.deepEqual(await admin.getAll().prefix(`${prefix}/subnets/`).keys(), [`${prefix}/subnets/10.5.1.0-24`]);
  });

  it('reuses the previous subnet from subnet.env when it is free', async () => {
    const prefix = await freshPrefix();
    const lease = await acquire(
      manager(prefix, { previousSubnet: IPv4Net.parse('10.5.77.0/24') }),
      vxlan('192.168.50.4', 'aa:aa:aa:aa:aa:04'),
    );
    assert.equal(lease.subnet!.toString(), '10.5.77.0/24');
    assert.notEqual(await leaseIdOf(`${prefix}/subnets/10.5.77.0-24`), '0');
  });

  it('keeps a reservation (a key without etcd lease) lease-less when reusing it', async () => {
    const prefix = await freshPrefix();
    const key = `${prefix}/subnets/10.5.200.0-24`;
    etcdctl('put', key, '{"PublicIP":"192.168.50.5"}');
    const lease = await acquire(manager(prefix), vxlan('192.168.50.5', 'aa:aa:aa:aa:aa:05'));
    assert.equal(lease.subnet!.toString(), '10.5.200.0/24');
    assert.equal(lease.expiration, null);
    assert.equal(await leaseIdOf(key), '0');
    assert.equal(await admin.get(key).string(), valueOf('192.168.50.5', 'aa:aa:aa:aa:aa:05'));
  });

  it('picks another subnet when another node wins the create race, and revokes the unused etcd lease', async () => {
    const prefix = await freshPrefix();
    const leasesBefore = (await admin.leaseClient.leaseLeases()).leases.length;
    const raced: string[] = [];
    const m = manager(prefix, {
      random: () => 0,
      beforeCreate: async (key) => {
        if (raced.length > 0) return;
        raced.push(key);
        await admin.put(key).value(valueOf('192.168.50.99', 'aa:aa:aa:aa:aa:99'));
      },
    });
    const lease = await acquire(m, vxlan('192.168.50.6', 'aa:aa:aa:aa:aa:06'));
    assert.deepEqual(raced, [`${prefix}/subnets/10.5.1.0-24`]);
    assert.equal(lease.subnet!.toString(), '10.5.2.0/24');
    assert.equal(await admin.get(raced[0]!).string(), valueOf('192.168.50.99', 'aa:aa:aa:aa:aa:99'));
    assert.equal((await admin.leaseClient.leaseLeases()).leases.length, leasesBefore + 1);
  });

  it('gives up after 10 lost races', async () => {
    const prefix = await freshPrefix();
    let races = 0;
    const m = manager(prefix, {
      beforeCreate: async (key) => {
        races++;
        await admin.put(key).value(valueOf('192.168.50.98', 'aa:aa:aa:aa:aa:98'));
      },
    });
    await assert.rejects(
      acquire(m, vxlan('192.168.50.7', 'aa:aa:aa:aa:aa:07')),
      /max retries reached trying to acquire a subnet/,
    );
    assert.equal(races, 10);
  });

  it('renews the lease before it runs out', async () => {
    const prefix = await freshPrefix();
    const m = manager(prefix, { leaseTTLSeconds: 6, renewMarginSeconds: 4 });
    const lease = await acquire(m, vxlan('192.168.50.8', 'aa:aa:aa:aa:aa:08'));
    const key = `${prefix}/subnets/${lease.subnet!.toString().replace('/', '-')}`;
    const firstId = await leaseIdOf(key);
    const ac = new AbortController();
    const done = m.completeLease(lease, ac.signal);
    let id = firstId;
    for (let i = 0; i < 40 && id === firstId; i++) {
      await new Promise((r) => setTimeout(r, 250));
      id = await leaseIdOf(key);
    }
    assert.notEqual(id, firstId, 'renewal bound the key to a new etcd lease');
    const ttl = await admin.leaseClient.leaseTimeToLive({ ID: id });
    assert.equal(Number(ttl.grantedTTL), 6);
    // Past the first lease's end the key must still be there thanks to renewals.
    await new Promise((r) => setTimeout(r, 5000));
    assert.notEqual(await admin.get(key).string(), null);
    ac.abort();
    assert.equal(await within(3000, 'completeLease to end', done), 'aborted');
  });

  it('reports revocation when the own key is deleted', async () => {
    const prefix = await freshPrefix();
    const m = manager(prefix);
    const lease = await acquire(m, vxlan('192.168.50.10', 'aa:aa:aa:aa:aa:10'));
    const done = m.completeLease(lease, stop.signal);
    await new Promise((r) => setTimeout(r, 300));
    await admin.delete().key(`${prefix}/subnets/${lease.subnet!.toString().replace('/', '-')}`);
    assert.equal(await within(2000, 'revocation', done), 'revoked');
  });

  it('watches other leases: snapshot, puts, deletes with old attrs, malformed keys skipped', async () => {
    const prefix = await freshPrefix();
    const subnets = `${prefix}/subnets`;
    await admin.put(`${subnets}/10.5.20.0-24`).value(valueOf('192.168.50.20', 'aa:aa:aa:aa:aa:20'));
    await admin.put(`${subnets}/10.5.21.0-24`).value('{not json');
    await admin.put(`${subnets}/not-a-subnet`).value(valueOf('192.168.50.29', 'aa:aa:aa:aa:aa:29'));
    const m = manager(prefix, { previousSubnet: IPv4Net.parse('10.5.30.0/24') });
    const own = await acquire(m, vxlan('192.168.50.30', 'aa:aa:aa:aa:aa:30'));
    const ac = new AbortController();
    const it = m.watchLeases(own, ac.signal)[Symbol.asyncIterator]();
    try {
      const first = await within(3000, 'the snapshot', it.next());
      assert.deepEqual(summary(first.value), ['added 10.5.20.0/24 192.168.50.20']);

      await admin.put(`${subnets}/10.5.22.0-24`).value(valueOf('192.168.50.22', 'aa:aa:aa:aa:aa:22'));
      const added = await within(1000, 'a put', it.next());
      assert.deepEqual(summary(added.value), ['added 10.5.22.0/24 192.168.50.22']);
      assert.ok(added.value[0].lease.expiration === null, 'a put without etcd lease has no expiration');

      await admin.delete().key(`${subnets}/10.5.20.0-24`);
      const removed = await within(1000, 'a delete', it.next());
      assert.deepEqual(summary(removed.value), ['removed 10.5.20.0/24 192.168.50.20']);
      assert.deepEqual(removed.value[0].lease.attrs.backendData, { VNI: 1, VtepMAC: 'aa:aa:aa:aa:aa:20' });

      await admin.put(`${subnets}/10.5.23.0-24`).value('garbage');
      await admin.put(`${subnets}/10.5.24.0-24`).value(valueOf('192.168.50.24', 'aa:aa:aa:aa:aa:24'));
      const after = await within(1000, 'a put after a malformed one', it.next());
      assert.deepEqual(summary(after.value), ['added 10.5.24.0/24 192.168.50.24']);
    } finally {
      ac.abort();
      await it.return?.(undefined);
    }
  });

  it("starts the lease watch from the allocation's listing: no second range request, nothing written since missed", async () => {
    const prefix = await freshPrefix();
    const subnets = `${prefix}/subnets`;
    await admin.put(`${subnets}/10.5.40.0-24`).value(valueOf('192.168.50.40', 'aa:aa:aa:aa:aa:40'));
    const m = manager(prefix);
    const own = await acquire(m, vxlan('192.168.50.41', 'aa:aa:aa:aa:aa:41'));
    // Written after the allocation listed the leases: it must still arrive, as a change after the snapshot.
    await admin.put(`${subnets}/10.5.42.0-24`).value(valueOf('192.168.50.42', 'aa:aa:aa:aa:aa:42'));
    const ranges = async () => {
      const text = await (await fetch(`${fx.etcd.endpoint}/metrics`)).text();
      const m = /grpc_server_handled_total\{grpc_code="OK",grpc_method="Range",[^}]*\} (\d+)/.exec(text);
      return Number(m?.[1]);
    };
    const before = await ranges();
    const ac = new AbortController();
    const it = m.watchLeases(own, ac.signal)[Symbol.asyncIterator]();
    try {
      const first = await within(3000, 'the snapshot', it.next());
      assert.deepEqual(summary(first.value), ['added 10.5.40.0/24 192.168.50.40']);
      const later = await within(3000, 'the lease written meanwhile', it.next());
      assert.deepEqual(summary(later.value), ['added 10.5.42.0/24 192.168.50.42']);
      assert.equal(await ranges(), before, 'the watch listed the leases again');
    } finally {
      ac.abort();
      await it.return?.(undefined);
    }
  });

  it('recovers from compaction by listing again and reporting the difference', async () => {
    const prefix = await freshPrefix();
    const subnets = `${prefix}/subnets`;
    await admin.put(`${subnets}/10.5.40.0-24`).value(valueOf('192.168.50.40', 'aa:aa:aa:aa:aa:40'));
    // Own subnet pinned: a random one could be 10.5.42.0/24, which the test then writes as a peer's.
    const m = manager(prefix, { previousSubnet: IPv4Net.parse('10.5.41.0/24') });
    const own = await acquire(m, vxlan('192.168.50.41', 'aa:aa:aa:aa:aa:41'));
    assert.equal(own.subnet!.toString(), '10.5.41.0/24');
    const ac = new AbortController();
    const it = m.watchLeases(own, ac.signal)[Symbol.asyncIterator]();
    try {
      const first = await within(3000, 'the snapshot', it.next());
      assert.deepEqual(summary(first.value), ['added 10.5.40.0/24 192.168.50.40']);
      // The watch starts only when we ask for more, so these changes get compacted away before it does.
      await admin.put(`${subnets}/10.5.42.0-24`).value(valueOf('192.168.50.42', 'aa:aa:aa:aa:aa:42'));
      await admin.delete().key(`${subnets}/10.5.40.0-24`);
      const head = await admin.put(`${prefix}/marker`).value('x');
      await admin.kv.compact({ revision: head.header.revision, physical: true });
      const next = await within(5000, 'the re-listing', it.next());
      assert.deepEqual(summary(next.value), ['added 10.5.42.0/24 192.168.50.42', 'removed 10.5.40.0/24 192.168.50.40']);
      await admin.put(`${subnets}/10.5.43.0-24`).value(valueOf('192.168.50.43', 'aa:aa:aa:aa:aa:43'));
      // A liveness bound, not a speed target: etcd3 may still be re-opening its watch stream after the cancel.
      const later = await within(10_000, 'a put after recovery', it.next());
      assert.deepEqual(summary(later.value), ['added 10.5.43.0/24 192.168.50.43']);
    } finally {
      ac.abort();
      await it.return?.(undefined);
    }
  });

  it('waits out an etcd outage: the watch keeps retrying and never throws', async () => {
    const prefix = await freshPrefix();
    await admin.put(`${prefix}/subnets/10.5.60.0-24`).value(valueOf('192.168.50.60', 'aa:aa:aa:aa:aa:60'));
    const m = manager(prefix);
    const own = await acquire(m, vxlan('192.168.50.61', 'aa:aa:aa:aa:aa:61'));
    // A first watch takes the allocation's listing; the one under test must list etcd itself.
    const warm = new AbortController();
    const w = m.watchLeases(own, warm.signal)[Symbol.asyncIterator]();
    await within(3000, 'the first watch', w.next());
    warm.abort();
    await w.return?.(undefined);
    await etcd.stop();
    const ac = new AbortController();
    const it = m.watchLeases(own, ac.signal)[Symbol.asyncIterator]();
    try {
      const pending = it.next();
      const early = await Promise.race([
        pending.then(
          () => 'yielded',
          () => 'threw',
        ),
        new Promise((r) => setTimeout(() => r('waiting'), 2000)),
      ]);
      assert.equal(early, 'waiting');
      await etcd.restart();
      const first = await within(15_000, 'the snapshot once etcd is back', pending);
      assert.deepEqual(summary(first.value), ['added 10.5.60.0/24 192.168.50.60']);
    } finally {
      ac.abort();
      await it.return?.(undefined);
    }
  });

  it('keeps watching across an etcd restart', async () => {
    const prefix = await freshPrefix();
    const subnets = `${prefix}/subnets`;
    const m = manager(prefix, { previousSubnet: IPv4Net.parse('10.5.50.0/24') });
    const own = await acquire(m, vxlan('192.168.50.50', 'aa:aa:aa:aa:aa:50'));
    const ac = new AbortController();
    const it = m.watchLeases(own, ac.signal)[Symbol.asyncIterator]();
    const revoked = m.completeLease(own, ac.signal);
    try {
      const first = await within(3000, 'the snapshot', it.next());
      assert.deepEqual(first.value, []);
      const pending = it.next();
      await etcd.restart();
      await admin.put(`${subnets}/10.5.51.0-24`).value(valueOf('192.168.50.51', 'aa:aa:aa:aa:aa:51'));
      const got = await within(15_000, 'a put after the restart', pending);
      assert.deepEqual(summary(got.value), ['added 10.5.51.0/24 192.168.50.51']);
    } finally {
      ac.abort();
      await it.return?.(undefined);
    }
    assert.equal(await within(3000, 'completeLease to end', revoked), 'aborted');
  });
});
