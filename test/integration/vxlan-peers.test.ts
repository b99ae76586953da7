// Our vxlan backend's per-peer status (flanneld's `GET /peers`) against real namespaces: each peer listed once,
// programmed when its route, neighbour and FDB entries (both families in dual stack) are in the kernel; failed with
// why when its lease cannot be used or the kernel refuses an entry, and programmed again once repaired.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ipn, isRoot, linkMac, Netns } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { Underlay } from '../helpers/backend-node.ts';
import { MemoryCluster } from '../helpers/memory-subnet-manager.ts';
import {
  fdb4,
  fdb6,
  neigh4,
  neigh6,
  routes4,
  routes6,
  VxlanNode,
  vxlanConfig,
  VXLAN_V4 as V4,
  VXLAN_V6 as V6,
} from '../helpers/vxlan-nodes.ts';
import { DualStackVxlanNode, dualStackHost, twoDualStackHosts } from '../helpers/dualstack-nodes.ts';
import { IPv6OnlyVxlanNode, ipv6OnlyConfig } from '../helpers/ipv6only-nodes.ts';
import type { PeerStatus } from '../../src/backend/backend.ts';
import type { LeaseAttrs } from '../../src/subnet/lease.ts';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const peerOf = (n: VxlanNode, subnet: string): PeerStatus | undefined =>
  n.vxlan.peers().find((p) => p.subnet === subnet);
/** The peer's status once it is in `state`. */
const inState = (n: VxlanNode, subnet: string, state: PeerStatus['state'], timeoutMs = 3000): Promise<PeerStatus> =>
  until(
    `${subnet} ${state} on ${n.ns}`,
    () => {
      const p = peerOf(n, subnet);
      return p?.state === state && p;
    },
    timeoutMs,
    25,
  );
const rows = (n: VxlanNode) => n.vxlan.peers().map((p) => [p.subnet, p.publicIP, p.state]);
const vxlanLease = (publicIP: string, mac: string): LeaseAttrs => ({
  publicIP,
  publicIPv6: null,
  backendType: 'vxlan',
  backendData: { VNI: 1, VtepMAC: mac },
});
/** Lets the clock move on, so a `since` recorded after this is later than one recorded before. */
const tick = () => new Promise((r) => setTimeout(r, 5));
/** What the status says when a device that is down refuses the onlink route to `subnet` (via its network address). */
const refusedRoute = (subnet: string) =>
  `the kernel refused the route ${subnet} via ${subnet.split('/')[0]} onlink: ENETDOWN`;

describe('vxlan backend reports its peers', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  const cluster = new MemoryCluster(vxlanConfig());
  let a: VxlanNode;
  let b: VxlanNode;
  let started: number;

  before(async () => {
    const u = new Underlay(netns, 'fl-psw');
    const nsA = u.host('fl-pa', '192.168.216.1');
    const nsB = u.host('fl-pb', '192.168.216.2');
    started = Date.now();
    // A checks its peers every 300 ms: repairs (and the status they bring) come quickly.
    a = await new VxlanNode(nsA, '192.168.216.1', '10.244.1.0/24', cluster).tune({ checkIntervalMs: 300 }).start();
    b = await new VxlanNode(nsB, '192.168.216.2', '10.244.2.0/24', cluster).start();
  });

  after(async () => {
    await a?.stop().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    netns.cleanup();
  });

  it('lists the other host programmed, with its subnet, public IP and since, as the kernel holds it', async () => {
    const p = await inState(a, '10.244.2.0/24', 'programmed');
    assert.deepEqual(a.vxlan.peers(), [
      { subnet: '10.244.2.0/24', publicIP: '192.168.216.2', state: 'programmed', since: p.since },
    ]);
    assert.match(p.since, ISO);
    assert.ok(Date.parse(p.since) >= started && Date.parse(p.since) <= Date.now(), p.since);
    const macB = linkMac(b.ns, V4);
    assert.ok(
      routes4(a.ns).some((r: any) => r.dst === '10.244.2.0/24' && r.gateway === '10.244.2.0'),
      'the route',
    );
    assert.ok(
      neigh4(a.ns).some((n: any) => n.dst === '10.244.2.0' && n.lladdr === macB),
      'the neighbour',
    );
    assert.ok(
      fdb4(a.ns).some((f: any) => f.mac === macB && f.dst === '192.168.216.2'),
      'the FDB entry',
    );
    await inState(b, '10.244.1.0/24', 'programmed');
    assert.deepEqual(rows(b), [['10.244.1.0/24', '192.168.216.1', 'programmed']]);
  });

  it('keeps since while the peer stays programmed, also when a deleted entry is put back', async () => {
    const { since } = peerOf(a, '10.244.2.0/24')!;
    ipn(a.ns, 'route', 'del', '10.244.2.0/24', 'dev', V4);
    await until('the route back', () => routes4(a.ns).some((r: any) => r.dst === '10.244.2.0/24'), 3000, 25);
    // A few more checks.
    await new Promise((r) => setTimeout(r, 700));
    assert.deepEqual(peerOf(a, '10.244.2.0/24'), {
      subnet: '10.244.2.0/24',
      publicIP: '192.168.216.2',
      state: 'programmed',
      since,
    });
  });

  it('shows a vxlan lease with a malformed VtepMAC failed with why, programmed once the lease is fixed, gone once removed', async () => {
    cluster.put('10.244.3.0/24', vxlanLease('192.168.216.3', 'not-a-mac'));
    const failed = await inState(a, '10.244.3.0/24', 'failed');
    assert.deepEqual(failed, {
      subnet: '10.244.3.0/24',
      publicIP: '192.168.216.3',
      state: 'failed',
      reason:
        'error decoding subnet lease JSON of 10.244.3.0/24: no valid VtepMAC in BackendData {"VNI":1,"VtepMAC":"not-a-mac"}',
      since: failed.since,
    });
    assert.deepEqual(rows(a), [
      ['10.244.2.0/24', '192.168.216.2', 'programmed'],
      ['10.244.3.0/24', '192.168.216.3', 'failed'],
    ]);
    assert.ok(!routes4(a.ns).some((r: any) => r.dst === '10.244.3.0/24'), 'nothing programmed for it');

    await tick();
    cluster.put('10.244.3.0/24', vxlanLease('192.168.216.3', '0e:00:00:00:03:03'));
    const ok = await inState(a, '10.244.3.0/24', 'programmed');
    assert.equal(ok.reason, undefined);
    assert.ok(Date.parse(ok.since) > Date.parse(failed.since), `${ok.since} after ${failed.since}`);
    assert.ok(fdb4(a.ns).some((f: any) => f.mac === '0e:00:00:00:03:03' && f.dst === '192.168.216.3'));

    cluster.remove('10.244.3.0/24');
    await until('the removed peer gone', () => !peerOf(a, '10.244.3.0/24'), 3000, 25);
    assert.deepEqual(rows(a), [['10.244.2.0/24', '192.168.216.2', 'programmed']]);
  });

  it('lists no lease of another backend', async () => {
    cluster.put('10.244.4.0/24', { publicIP: '192.168.216.4', publicIPv6: null, backendType: 'host-gw' });
    // Leases are handled in order: once the later one is in, the host-gw one was seen.
    cluster.put('10.244.5.0/24', vxlanLease('192.168.216.5', '0e:00:00:00:05:05'));
    await inState(a, '10.244.5.0/24', 'programmed');
    assert.deepEqual(rows(a), [
      ['10.244.2.0/24', '192.168.216.2', 'programmed'],
      ['10.244.5.0/24', '192.168.216.5', 'programmed'],
    ]);
    cluster.remove('10.244.4.0/24');
    cluster.remove('10.244.5.0/24');
    await until('the vxlan one gone', () => !peerOf(a, '10.244.5.0/24'), 3000, 25);
  });

  it("shows peers whose entries the kernel refuses (flannel.1 down) failed with the kernel's reason, programmed again once repaired", async () => {
    const before = peerOf(a, '10.244.2.0/24')!;
    await tick();
    // A device that is down loses its routes and refuses new ones: B's entries at the next check, and a new peer's
    // when it is first programmed.
    ipn(a.ns, 'link', 'set', V4, 'down');
    cluster.put('10.244.6.0/24', vxlanLease('192.168.216.6', '0e:00:00:00:06:06'));
    try {
      const failedB = await inState(a, '10.244.2.0/24', 'failed');
      const failedC = await inState(a, '10.244.6.0/24', 'failed');
      assert.equal(failedB.reason, refusedRoute('10.244.2.0/24'));
      assert.equal(failedC.reason, refusedRoute('10.244.6.0/24'));
      assert.equal(failedB.publicIP, '192.168.216.2');
      assert.ok(Date.parse(failedB.since) > Date.parse(before.since), `${failedB.since} after ${before.since}`);
      // Checks that keep failing the same way keep since.
      await new Promise((r) => setTimeout(r, 700));
      assert.deepEqual(peerOf(a, '10.244.2.0/24'), failedB);
      await tick();
    } finally {
      ipn(a.ns, 'link', 'set', V4, 'up');
    }
    const okB = await inState(a, '10.244.2.0/24', 'programmed');
    await inState(a, '10.244.6.0/24', 'programmed');
    assert.equal(okB.reason, undefined);
    assert.ok(Date.parse(okB.since) > Date.parse(before.since));
    assert.ok(
      routes4(a.ns).some((r: any) => r.dst === '10.244.2.0/24') &&
        routes4(a.ns).some((r: any) => r.dst === '10.244.6.0/24'),
      'both routes back',
    );
    cluster.remove('10.244.6.0/24');
  });

  it('shows the peers programmed again, since moved on, once a deleted flannel.1 is recreated with them', async () => {
    const before = peerOf(a, '10.244.2.0/24')!;
    await tick();
    ipn(a.ns, 'link', 'del', V4);
    await until(
      'flannel.1 recreated with the route to B',
      () => routes4(a.ns).some((r: any) => r.dst === '10.244.2.0/24'),
      5000,
      25,
    );
    const ok = await inState(a, '10.244.2.0/24', 'programmed');
    assert.ok(
      Date.parse(ok.since) > Date.parse(before.since),
      `${ok.since} after ${before.since}: it was failed meanwhile`,
    );
    assert.deepEqual(rows(a), [['10.244.2.0/24', '192.168.216.2', 'programmed']]);
  });

  it('forgets a peer whose lease is removed', async () => {
    cluster.remove('10.244.2.0/24');
    await until('B gone', () => a.vxlan.peers().length === 0, 3000, 25);
  });
});

describe('vxlan backend reports dual-stack peers once', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  const cluster = twoDualStackHosts('vxlan');
  let a: DualStackVxlanNode;
  let b: DualStackVxlanNode;

  before(async () => {
    const u = new Underlay(netns, 'fl-pdsw');
    const nsA = dualStackHost(u, 'fl-pda', '192.168.217.1', 'fd12:217::1');
    const nsB = dualStackHost(u, 'fl-pdb', '192.168.217.2', 'fd12:217::2');
    a = await new DualStackVxlanNode(nsA, '192.168.217.1', 'fd12:217::1', '10.244.1.0/24', cluster)
      .tune({ checkIntervalMs: 300 })
      .start();
    b = await new DualStackVxlanNode(nsB, '192.168.217.2', 'fd12:217::2', '10.244.2.0/24', cluster).start();
  });

  after(async () => {
    await a?.stop().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    netns.cleanup();
  });

  it('by its IPv4 subnet and public IP, programmed with both families in the kernel', async () => {
    const p = await inState(a, '10.244.2.0/24', 'programmed');
    assert.deepEqual(a.vxlan.peers(), [
      { subnet: '10.244.2.0/24', publicIP: '192.168.217.2', state: 'programmed', since: p.since },
    ]);
    assert.ok(
      routes4(a.ns).some((r: any) => r.dst === '10.244.2.0/24') && neigh4(a.ns).length === 1 && fdb4(a.ns).length === 1,
      'IPv4 entries',
    );
    assert.ok(
      routes6(a.ns).some((r: any) => r.dst === 'fd00:10:244:2::/64') &&
        neigh6(a.ns).length === 1 &&
        fdb6(a.ns).length === 1,
      'IPv6 entries',
    );
  });

  it('failed when only its IPv6 entries are refused (flannel-v6.1 down), naming them, and programmed again once repaired', async () => {
    const before = peerOf(a, '10.244.2.0/24')!;
    await tick();
    ipn(a.ns, 'link', 'set', V6, 'down');
    let failed: PeerStatus;
    try {
      failed = await inState(a, '10.244.2.0/24', 'failed');
    } finally {
      ipn(a.ns, 'link', 'set', V6, 'up');
    }
    assert.equal(failed.reason, refusedRoute('fd00:10:244:2::/64'));
    assert.equal(failed.subnet, '10.244.2.0/24', 'still listed by its IPv4 subnet');
    assert.equal(a.vxlan.peers().length, 1);
    const ok = await inState(a, '10.244.2.0/24', 'programmed');
    assert.ok(Date.parse(ok.since) > Date.parse(before.since));
    assert.ok(
      routes6(a.ns).some((r: any) => r.dst === 'fd00:10:244:2::/64'),
      'the IPv6 route back',
    );
  });

  it('failed when its BackendV6Data has no valid VtepMAC, although its IPv4 entries went in', async () => {
    cluster.put(
      '10.244.3.0/24',
      {
        publicIP: '192.168.217.3',
        publicIPv6: 'fd12:217::3',
        backendType: 'vxlan',
        backendData: { VNI: 1, VtepMAC: '0e:00:00:00:03:03' },
        backendV6Data: { VNI: 1, VtepMAC: 'zz' },
      },
      'fd00:10:244:3::/64',
    );
    const failed = await inState(a, '10.244.3.0/24', 'failed');
    assert.equal(
      failed.reason,
      'error decoding subnet lease JSON of 10.244.3.0/24: no valid VtepMAC in BackendV6Data {"VNI":1,"VtepMAC":"zz"}',
    );
    assert.equal(failed.publicIP, '192.168.217.3');
    assert.ok(
      fdb4(a.ns).some((f: any) => f.mac === '0e:00:00:00:03:03'),
      'its IPv4 FDB entry',
    );
    cluster.remove('10.244.3.0/24');
    await until('it gone', () => !peerOf(a, '10.244.3.0/24'), 3000, 25);
  });

  it('an IPv6-only peer by its IPv6 subnet and public IPv6', async () => {
    cluster.put('fd00:10:244:4::/64', {
      publicIP: '0.0.0.0',
      publicIPv6: 'fd12:217::4',
      backendType: 'vxlan',
      backendV6Data: { VNI: 1, VtepMAC: '0e:00:00:00:04:04' },
    });
    await inState(a, 'fd00:10:244:4::/64', 'programmed');
    assert.deepEqual(rows(a), [
      ['10.244.2.0/24', '192.168.217.2', 'programmed'],
      ['fd00:10:244:4::/64', 'fd12:217::4', 'programmed'],
    ]);
    cluster.remove('fd00:10:244:4::/64');
    await until('it gone', () => !peerOf(a, 'fd00:10:244:4::/64'), 3000, 25);
  });
});

describe('vxlan backend reports peers on an IPv6-only network', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  const cluster = new MemoryCluster(ipv6OnlyConfig('vxlan'));
  let a: IPv6OnlyVxlanNode;
  let b: IPv6OnlyVxlanNode;

  before(async () => {
    const u = new Underlay(netns, 'fl-p6sw');
    a = await new IPv6OnlyVxlanNode(
      u.hostV6('fl-p6a', 'fd12:218::1'),
      'fd12:218::1',
      'fd00:10:244:1::/64',
      cluster,
    ).start();
    b = await new IPv6OnlyVxlanNode(
      u.hostV6('fl-p6b', 'fd12:218::2'),
      'fd12:218::2',
      'fd00:10:244:2::/64',
      cluster,
    ).start();
  });

  after(async () => {
    await a?.stop().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    netns.cleanup();
  });

  it('by its IPv6 subnet and public IPv6', async () => {
    const p = await inState(a, 'fd00:10:244:2::/64', 'programmed');
    assert.deepEqual(a.vxlan.peers(), [
      { subnet: 'fd00:10:244:2::/64', publicIP: 'fd12:218::2', state: 'programmed', since: p.since },
    ]);
    assert.ok(routes6(a.ns).some((r: any) => r.dst === 'fd00:10:244:2::/64'));
  });
});
