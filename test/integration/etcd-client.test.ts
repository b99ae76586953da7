// flanneld's own etcd v3 client (gRPC over node:http2) against a real etcd: every call flannel makes, checked with
// etcdctl, failover past a dead endpoint, a watch's events and its end when etcd goes away.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createEtcdClient, type EtcdClient, type WatchFailure } from '../../src/subnet/etcd/client.ts';
import type { WatchEvent } from '../../src/subnet/etcd/proto.ts';
import { etcdMissing, freePort, startEtcd, type EtcdHandle } from '../helpers/etcd.ts';
import { until } from '../helpers/wait.ts';
import { LogRecorder } from '../helpers/log.ts';

describe('etcd client', { skip: etcdMissing }, () => {
  let e: EtcdHandle;
  let client: EtcdClient;
  let dead: string;
  let log: LogRecorder;
  before(async () => {
    e = await startEtcd();
    log = new LogRecorder();
    // Nothing listens on the first endpoint: every call must get through on the second.
    dead = `http://127.0.0.1:${await freePort()}`;
    client = createEtcdClient({ endpoints: [dead, e.endpoint], callTimeoutMs: 3000 });
  });
  after(async () => {
    client?.close();
    log?.stop();
    await e?.destroy();
  });

  it('writes, reads and deletes keys past a dead first endpoint', async () => {
    const rev = await client.put('/c/one', 'v1');
    assert.match(rev, /^\d+$/);
    assert.equal(e.etcdctl('get', '/c/one', '--print-value-only').trim(), 'v1');
    const got = await client.get('/c/one');
    assert.deepEqual(got.kv, { key: '/c/one', value: 'v1', lease: '0', modRevision: rev });
    assert.equal(got.revision, rev);
    assert.equal((await client.get('/c/none')).kv, undefined);
    await client.delete('/c/one');
    assert.equal(e.etcdctl('get', '/c/one').trim(), '');
  });

  it('lists a prefix in key order, not the keys beside it, with a value of 64 KiB intact', async () => {
    const big = 'x'.repeat(65536);
    e.etcdctl('put', '/c/p/b', big);
    e.etcdctl('put', '/c/p/a', 'A');
    e.etcdctl('put', '/c/p0', 'beside');
    const { kvs } = await client.getPrefix('/c/p/');
    assert.deepEqual(
      kvs.map((kv) => [kv.key, kv.value.length]),
      [
        ['/c/p/a', 1],
        ['/c/p/b', 65536],
      ],
    );
  });

  it('grants, attaches, reads and revokes etcd leases with IDs beyond 2^53', async () => {
    const { id, ttl } = await client.leaseGrant(600);
    assert.equal(ttl, 600);
    assert.ok(BigInt(id) > 2n ** 53n, `lease ID ${id}`);
    await client.put('/c/leased', 'v', id);
    const kv = (await client.get('/c/leased')).kv!;
    assert.equal(kv.lease, id);
    assert.match(e.etcdctl('lease', 'timetolive', BigInt(id).toString(16)), /granted with TTL\(600s\)/);
    const left = await client.leaseTimeToLive(id);
    assert.ok(left > 590 && left <= 600, `${left} s left`);
    await client.leaseRevoke(id);
    assert.equal((await client.get('/c/leased')).kv, undefined, 'revoking deletes the key');
    assert.equal(await client.leaseTimeToLive(id), -1);
    await assert.rejects(client.leaseRevoke(id), /requested lease not found \(gRPC code 5\)/);
  });

  it('puts only if the version or mod revision still is the expected one', async () => {
    const first = await client.putIf('version', '0', { key: '/c/tx', value: 'a' });
    assert.equal(first.succeeded, true);
    const again = await client.putIf('version', '0', { key: '/c/tx', value: 'b' });
    assert.equal(again.succeeded, false);
    assert.equal(e.etcdctl('get', '/c/tx', '--print-value-only').trim(), 'a');
    const stale = await client.putIf('modRevision', String(Number(first.revision) - 1), { key: '/c/tx', value: 'c' });
    assert.equal(stale.succeeded, false);
    const fresh = await client.putIf('modRevision', first.revision, { key: '/c/tx', value: 'd' });
    assert.equal(fresh.succeeded, true);
    assert.equal(e.etcdctl('get', '/c/tx', '--print-value-only').trim(), 'd');
  });

  it('watches a prefix from a revision with previous values, and reports the end when etcd stops', async () => {
    const start = await client.put('/c/w/a', '1');
    e.etcdctl('put', '/c/w/a', '2');
    e.etcdctl('del', '/c/w/a');
    const events: WatchEvent[] = [];
    const failures: WatchFailure[] = [];
    let connected = 0;
    const w = client.watch(
      { key: '/c/w/', prefix: true, startRevision: start },
      { connected: () => connected++, events: (evs) => events.push(...evs), failed: (f) => failures.push(f) },
    );
    try {
      await until('the three events since the start revision', () => events.length >= 3, 5000, 50);
      assert.equal(connected, 1);
      assert.deepEqual(
        events.map((ev) => [ev.type, ev.kv.value, ev.prev?.value]),
        [
          ['put', '1', undefined],
          ['put', '2', '1'],
          ['delete', '', '2'],
        ],
      );
      e.etcdctl('put', '/c/w0', 'beside');
      e.etcdctl('put', '/c/w/b', '3');
      await until('the live event', () => events.length >= 4, 5000, 50);
      assert.equal(events[3]!.kv.key, '/c/w/b');
      assert.equal(events.length, 4);
      await e.stop();
      await until('the watch to end', () => failures.length > 0, 10_000, 50);
      assert.equal(failures.length, 1);
      assert.equal(failures[0]!.kind, 'disconnected');
    } finally {
      w.cancel();
      await e.restart();
    }
    // After the restart, calls work again on a new connection.
    assert.equal((await client.get('/c/w/b')).kv?.value, '3');
  });
});
