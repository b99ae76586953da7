// The etcd subnet manager in dual stack against a real etcd: `<v4>&<v6>` keys and v6 lease JSON as etcd holds them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Etcd3 } from 'etcd3';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';
import type { LeaseAttrs, LeaseEvent } from '../../src/subnet/lease.ts';
import { etcdMissing } from '../helpers/etcd.ts';
import { EtcdSubnetFixture } from '../helpers/etcd-subnet.ts';
import { within } from '../helpers/wait.ts';
import { leaseLines } from '../helpers/lease-events.ts';

const CONFIG = '{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}';
const attrs = (n: number): LeaseAttrs => ({
  publicIP: `192.168.60.${n}`,
  publicIPv6: `fc00:1::${n}`,
  backendType: 'vxlan',
  backendData: { VNI: 1, VtepMAC: `0e:00:00:00:00:${String(n).padStart(2, '0')}` },
  backendV6Data: { VNI: 1, VtepMAC: `0e:00:00:00:06:${String(n).padStart(2, '0')}` },
});
const valueOf = (n: number) =>
  `{"PublicIP":"192.168.60.${n}","PublicIPv6":"fc00:1::${n}","BackendType":"vxlan",` +
  `"BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:${String(n).padStart(2, '0')}"},` +
  `"BackendV6Data":{"VNI":1,"VtepMAC":"0e:00:00:00:06:${String(n).padStart(2, '0')}"}}`;

const fx = new EtcdSubnetFixture(CONFIG, 'flannel-dual');
const { freshPrefix, manager, acquire, etcdctl, keys } = fx;
let admin: Etcd3;

const summary = (evs: LeaseEvent[]) => leaseLines(evs, ['subnet', 'ipv6Subnet', 'publicIPv6'], { sorted: true });

describe('etcd subnet manager, dual stack', { skip: etcdMissing }, () => {
  before(async () => {
    await fx.start();
    ({ admin } = fx);
  });

  after(() => fx.destroy());

  it('creates the exact `<v4>&<v6>` key and JSON with a 24 h etcd lease', async () => {
    const prefix = await freshPrefix();
    const lease = await acquire(manager(prefix, { random: () => 0 }), attrs(1));
    assert.equal(lease.subnet!.toString(), '10.5.1.0/24');
    assert.equal(lease.ipv6Subnet?.toString(), 'fc00:0:0:1::/64');
    const key = `${prefix}/subnets/10.5.1.0-24&fc00:0:0:1::-64`;
    assert.deepEqual(await keys(prefix), ['10.5.1.0-24&fc00:0:0:1::-64']);
    assert.equal(etcdctl('get', key, '--print-value-only').trim(), valueOf(1));
    const leaseId = /"lease":(\d+)/.exec(etcdctl('get', key, '-w', 'json'))?.[1];
    assert.ok(leaseId && leaseId !== '0', 'the key is bound to an etcd lease');
    const ttl = JSON.parse(etcdctl('lease', 'timetolive', BigInt(leaseId).toString(16), '-w', 'json'));
    assert.equal(ttl['granted-ttl'], 86400);
  });

  it('reuses the dual-stack lease of this PublicIP and replaces a v4-only one', async () => {
    const prefix = await freshPrefix();
    await admin.put(`${prefix}/subnets/10.5.7.0-24`).value(valueOf(7));
    await admin.put(`${prefix}/subnets/10.5.8.0-24&fc00:0:0:8::-64`).value(valueOf(8));
    const seven = await acquire(manager(prefix, { random: () => 0 }), attrs(7));
    assert.equal(
      `${seven.subnet} ${seven.ipv6Subnet}`,
      '10.5.1.0/24 fc00:0:0:1::/64',
      'the v4-only lease no longer fits',
    );
    const eight = await acquire(manager(prefix, { random: () => 0 }), {
      ...attrs(8),
      backendData: { VNI: 1, VtepMAC: '0e:00:00:00:00:88' },
    });
    assert.equal(`${eight.subnet} ${eight.ipv6Subnet}`, '10.5.8.0/24 fc00:0:0:8::/64');
    assert.deepEqual(await keys(prefix), ['10.5.1.0-24&fc00:0:0:1::-64', '10.5.8.0-24&fc00:0:0:8::-64']);
    assert.match(
      (await admin.get(`${prefix}/subnets/10.5.8.0-24&fc00:0:0:8::-64`).string())!,
      /"BackendData":\{"VNI":1,"VtepMAC":"0e:00:00:00:00:88"\}/,
    );
  });

  it('reuses the previous v4 and v6 subnets from subnet.env when they are free', async () => {
    const prefix = await freshPrefix();
    const m = manager(prefix, {
      previousSubnet: IPv4Net.parse('10.5.77.0/24'),
      previousIPv6Subnet: IPv6Net.parse('fc00:0:0:77::/64'),
    });
    const lease = await acquire(m, attrs(4));
    assert.equal(`${lease.subnet} ${lease.ipv6Subnet}`, '10.5.77.0/24 fc00:0:0:77::/64');
    assert.deepEqual(await keys(prefix), ['10.5.77.0-24&fc00:0:0:77::-64']);
  });

  it('watches dual-stack leases (snapshot, put, delete carry the v6 subnet) and reports revocation of the own key', async () => {
    const prefix = await freshPrefix();
    const subnets = `${prefix}/subnets`;
    await admin.put(`${subnets}/10.5.20.0-24&fc00:0:0:20::-64`).value(valueOf(20));
    const m = manager(prefix, { random: () => 0 });
    const own = await acquire(m, attrs(2));
    const ac = new AbortController();
    const it = m.watchLeases(own, ac.signal)[Symbol.asyncIterator]();
    const revoked = m.completeLease(own, ac.signal);
    try {
      const first = await within(3000, 'the snapshot', it.next());
      assert.deepEqual(summary(first.value), ['added 10.5.20.0/24 fc00:0:0:20::/64 fc00:1::20']);
      await admin.put(`${subnets}/10.5.21.0-24&fc00:0:0:21::-64`).value(valueOf(21));
      const put = await within(3000, 'the put', it.next());
      assert.deepEqual(summary(put.value), ['added 10.5.21.0/24 fc00:0:0:21::/64 fc00:1::21']);
      assert.deepEqual(put.value[0].lease.attrs.backendV6Data, { VNI: 1, VtepMAC: '0e:00:00:00:06:21' });
      await admin.delete().key(`${subnets}/10.5.20.0-24&fc00:0:0:20::-64`);
      const del = await within(3000, 'the delete', it.next());
      assert.deepEqual(summary(del.value), ['removed 10.5.20.0/24 fc00:0:0:20::/64 fc00:1::20']);
      await admin
        .delete()
        .key(`${subnets}/${own.subnet!.toString().replace('/', '-')}&${own.ipv6Subnet!.toString().replace('/', '-')}`);
      assert.equal(await within(3000, 'revocation', revoked), 'revoked');
    } finally {
      ac.abort();
      await it.return?.(undefined);
    }
  });
});
