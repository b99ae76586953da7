// The etcd subnet manager on an IPv6-only network against a real etcd: `0.0.0.0-0&<v6>-<len>` keys, PublicIP
// 0.0.0.0 on every host, the own lease found by PublicIPv6, and v6-only leases in the watch.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Etcd3 } from 'etcd3';
import type { LeaseAttrs, LeaseEvent } from '../../src/subnet/lease.ts';
import { etcdMissing } from '../helpers/etcd.ts';
import { EtcdSubnetFixture } from '../helpers/etcd-subnet.ts';
import { within } from '../helpers/wait.ts';
import { LogRecorder } from '../helpers/log.ts';
import { leaseLines } from '../helpers/lease-events.ts';

const CONFIG = '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}';
const mac6 = (n: number) => `0e:00:00:00:06:${String(n).padStart(2, '0')}`;
// What the vxlan backend acquires with on an IPv6-only network: PublicIP 0.0.0.0 and no BackendData.
const attrs = (n: number, mac = mac6(n)): LeaseAttrs => ({
  publicIP: '0.0.0.0',
  publicIPv6: `fc00:1::${n}`,
  backendType: 'vxlan',
  backendV6Data: { VNI: 1, VtepMAC: mac },
});
const valueOf = (n: number, mac = mac6(n)) =>
  `{"PublicIP":"0.0.0.0","PublicIPv6":"fc00:1::${n}","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"${mac}"}}`;

const fx = new EtcdSubnetFixture(CONFIG, 'flannel-v6only');
const { freshPrefix, manager, acquire, etcdctl, keys } = fx;
let admin: Etcd3;

const summary = (evs: LeaseEvent[]) =>
  leaseLines(evs, ['subnet', 'ipv6Subnet', 'publicIP', 'publicIPv6'], { sorted: true });

describe('etcd subnet manager, IPv6-only', { skip: etcdMissing }, () => {
  before(async () => {
    await fx.start();
    ({ admin } = fx);
  });

  after(() => fx.destroy());

  it('writes the key `0.0.0.0-0&<v6>-64` with PublicIP 0.0.0.0 and no BackendData, under a 24 h etcd lease', async () => {
    const prefix = await freshPrefix();
    const lease = await acquire(manager(prefix, { random: () => 0 }), attrs(1));
    assert.equal('subnet' in lease, false, 'an IPv6-only lease has no IPv4 subnet');
    assert.equal(lease.ipv6Subnet?.toString(), 'fc00:0:0:1::/64');
    assert.deepEqual(lease.attrs, attrs(1));
    const key = `${prefix}/subnets/0.0.0.0-0&fc00:0:0:1::-64`;
    assert.deepEqual(etcdctl('get', `${prefix}/subnets/`, '--prefix', '--keys-only').split('\n').filter(Boolean), [
      key,
    ]);
    assert.equal(etcdctl('get', key, '--print-value-only').trim(), valueOf(1));
    const leaseId = /"lease":(\d+)/.exec(etcdctl('get', key, '-w', 'json'))?.[1];
    assert.ok(leaseId && leaseId !== '0', 'the key is bound to an etcd lease');
    const ttl = JSON.parse(etcdctl('lease', 'timetolive', BigInt(leaseId).toString(16), '-w', 'json'));
    assert.equal(ttl['granted-ttl'], 86400);
  });

  it('finds the own lease by PublicIPv6 (all PublicIPs are 0.0.0.0) and gives another host another subnet', async () => {
    const prefix = await freshPrefix();
    const first = await acquire(manager(prefix, { random: () => 0 }), attrs(1));
    const logs = new LogRecorder();
    let again;
    try {
      // A restart of host 1 with a new VtepMAC.
      again = await acquire(manager(prefix, { random: () => 0 }), attrs(1, '0e:00:00:00:06:99'));
    } finally {
      logs.stop();
    }
    assert.equal(again.ipv6Subnet?.toString(), first.ipv6Subnet?.toString());
    assert.deepEqual(
      logs.find('Found lease (ip: 0.0.0.0/0 ipv6: fc00:0:0:1::/64) for current IP (fc00:1::1), reusing').length,
      1,
      logs.lines.join('\n'),
    );
    assert.equal(logs.find('Allocated lease').length, 0);
    assert.equal(
      await admin.get(`${prefix}/subnets/0.0.0.0-0&fc00:0:0:1::-64`).string(),
      valueOf(1, '0e:00:00:00:06:99'),
    );
    // Host 2: same PublicIP 0.0.0.0, other PublicIPv6 → not host 1's lease.
    const two = await acquire(manager(prefix, { random: () => 0 }), attrs(2));
    assert.equal(two.ipv6Subnet?.toString(), 'fc00:0:0:2::/64');
    assert.deepEqual(await keys(prefix), ['0.0.0.0-0&fc00:0:0:1::-64', '0.0.0.0-0&fc00:0:0:2::-64']);
    assert.equal(await admin.get(`${prefix}/subnets/0.0.0.0-0&fc00:0:0:2::-64`).string(), valueOf(2));
  });

  it('replaces a dual-stack lease that carries this PublicIPv6 (it does not fit an IPv6-only config)', async () => {
    const prefix = await freshPrefix();
    await admin
      .put(`${prefix}/subnets/10.5.7.0-24&fc00:0:0:7::-64`)
      .value(
        '{"PublicIP":"192.168.60.7","PublicIPv6":"fc00:1::7","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:07"}}',
      );
    const lease = await acquire(manager(prefix, { random: () => 0 }), attrs(7));
    assert.equal(`${lease.subnet ?? '-'} ${lease.ipv6Subnet}`, '- fc00:0:0:1::/64');
    assert.deepEqual(await keys(prefix), ['0.0.0.0-0&fc00:0:0:1::-64']);
  });

  it("watches v6-only leases: another host's lease is added, then removed with its delete; the own revocation is reported", async () => {
    const prefix = await freshPrefix();
    const subnets = `${prefix}/subnets`;
    const m = manager(prefix, { random: () => 0 });
    const own = await acquire(m, attrs(1));
    const ac = new AbortController();
    const it = m.watchLeases(own, ac.signal)[Symbol.asyncIterator]();
    const revoked = m.completeLease(own, ac.signal);
    try {
      const first = await within(3000, 'the snapshot', it.next());
      assert.deepEqual(summary(first.value), [], 'the own lease is not a peer');
      const other = await acquire(manager(prefix, { random: () => 0 }), attrs(2));
      assert.equal(other.ipv6Subnet?.toString(), 'fc00:0:0:2::/64');
      const put = await within(3000, "the other host's lease", it.next());
      assert.deepEqual(summary(put.value), ['added - fc00:0:0:2::/64 0.0.0.0 fc00:1::2']);
      assert.deepEqual(put.value[0].lease.attrs, attrs(2));
      await admin.delete().key(`${subnets}/0.0.0.0-0&fc00:0:0:2::-64`);
      const del = await within(3000, 'the delete', it.next());
      assert.deepEqual(summary(del.value), ['removed - fc00:0:0:2::/64 0.0.0.0 fc00:1::2']);
      await admin.delete().key(`${subnets}/0.0.0.0-0&fc00:0:0:1::-64`);
      assert.equal(await within(3000, 'revocation', revoked), 'revoked');
    } finally {
      ac.abort();
      await it.return?.(undefined);
    }
  });
});
