// Two dual-stack hosts running our vxlan backend: flannel-v6.1 next to flannel.1 (docs/COMPATIBILITY.md,
// "Device names"), IPv6 peers, traffic.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ipJson, isRoot, linkMac, Netns, nsRun, pings6, run } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { Underlay } from '../helpers/backend-node.ts';
import { fdb6, neigh6, routes6, VXLAN_V6 as V6 } from '../helpers/vxlan-nodes.ts';
import { DualStackVxlanNode, dualStackHost, twoDualStackHosts } from '../helpers/dualstack-nodes.ts';

const globalV6 = (ns: string): string[] =>
  ipJson(ns, ['-6', 'addr', 'show', 'dev', V6])[0]
    .addr_info.filter((i: any) => i.local && i.scope === 'global')
    .map((i: any) => `${i.local}/${i.prefixlen}`);

describe('vxlan backend, dual stack', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  const cluster = twoDualStackHosts('vxlan');
  let a: DualStackVxlanNode;
  let b: DualStackVxlanNode;

  before(async () => {
    const u = new Underlay(netns);
    const nsA = dualStackHost(u, 'fl-6a', '192.168.203.1', 'fd12:203::1');
    const nsB = dualStackHost(u, 'fl-6b', '192.168.203.2', 'fd12:203::2');
    a = await new DualStackVxlanNode(nsA, '192.168.203.1', 'fd12:203::1', '10.244.1.0/24', cluster).start();
    b = await new DualStackVxlanNode(nsB, '192.168.203.2', 'fd12:203::2', '10.244.2.0/24', cluster).start();
  });

  after(async () => {
    await a?.stop().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    netns.cleanup();
  });

  it('creates flannel-v6.1 like flannel.1 but with local = the public IPv6, MTU 1430, and accept_ra 0', () => {
    const [v6] = ipJson(a.ns, ['-d', 'link', 'show', V6]);
    const [v4] = ipJson(a.ns, ['-d', 'link', 'show', 'flannel.1']);
    assert.equal(v6.linkinfo.info_kind, 'vxlan');
    assert.equal(v6.linkinfo.info_data.id, 1);
    assert.equal(v6.linkinfo.info_data.local6, 'fd12:203::1');
    assert.equal(v6.linkinfo.info_data.link, 'eth0');
    assert.equal(v6.linkinfo.info_data.port, 8472);
    assert.equal(v6.linkinfo.info_data.learning, false);
    // The kernel's limit for an IPv6 underlay: 1500 − 70.
    assert.equal(v6.mtu, 1430);
    assert.equal(v4.mtu, 1450);
    assert.ok(v6.flags.includes('UP'));
    assert.notEqual(v6.address, v4.address, 'each device has its own VtepMAC');
    assert.equal(parseInt(v6.address.slice(0, 2), 16) & 3, 2);
    assert.equal(nsRun(a.ns, 'cat', [`/proc/sys/net/ipv6/conf/${V6}/accept_ra`]).trim(), '0');
    assert.equal(v4.linkinfo.info_data.local, '192.168.203.1');
  });

  it('addresses flannel-v6.1 with the v6 lease network address as /128 (and flannel.1 as before)', () => {
    const global6 = globalV6(a.ns);
    assert.deepEqual(global6, ['fd00:10:244:1::/128']);
    const v4 = ipJson(a.ns, ['-4', 'addr', 'show', 'flannel.1'])[0].addr_info.map(
      (i: any) => `${i.local}/${i.prefixlen}`,
    );
    assert.deepEqual(v4, ['10.244.1.0/32']);
  });

  it('publishes PublicIPv6 and BackendV6Data {"VNI":1,"VtepMAC":<flannel-v6.1 MAC>}', () => {
    const attrs = a.sm.published.at(-1)!;
    assert.equal(attrs.publicIP, '192.168.203.1');
    assert.equal(attrs.publicIPv6, 'fd12:203::1');
    assert.equal(JSON.stringify(attrs.backendData), `{"VNI":1,"VtepMAC":"${linkMac(a.ns, 'flannel.1')}"}`);
    assert.equal(JSON.stringify(attrs.backendV6Data), `{"VNI":1,"VtepMAC":"${linkMac(a.ns, V6)}"}`);
    assert.equal(cluster.leases.get('10.244.1.0/24')!.ipv6Subnet!.toString(), 'fd00:10:244:1::/64');
  });

  it('programs the IPv6 peer on flannel-v6.1: onlink route, PERMANENT neighbour, FDB dst <peer PublicIPv6>', async () => {
    const bMac6 = linkMac(b.ns, V6);
    await until('A to program B on flannel-v6.1', () => routes6(a.ns).length > 0 && fdb6(a.ns).length > 0, 3000, 25);
    assert.deepEqual(
      routes6(a.ns).map((r: any) => `${r.dst} via ${r.gateway} ${r.flags.join(',')}`),
      ['fd00:10:244:2::/64 via fd00:10:244:2:: onlink'],
    );
    assert.deepEqual(
      neigh6(a.ns).map((n: any) => `${n.dst} ${n.lladdr}`),
      [`fd00:10:244:2:: ${bMac6}`],
    );
    assert.deepEqual(
      fdb6(a.ns).map((f: any) => `${f.mac} ${f.dst} ${f.flags.join(',')} ${f.state}`),
      [`${bMac6} fd12:203::2 self permanent`],
    );
    // The v4 side is untouched by the v6 one.
    const v4 = ipJson(a.ns, ['route', 'show', 'dev', 'flannel.1']).map((r: any) => `${r.dst} via ${r.gateway}`);
    assert.deepEqual(v4, ['10.244.2.0/24 via 10.244.2.0']);
  });

  it("carries IPv6 and IPv4 traffic between the hosts' subnets", async () => {
    // The /128 addresses go through duplicate address detection first (about a second).
    await until('a v6 ping from A to B', () => pings6(a.ns, 'fd00:10:244:1::', 'fd00:10:244:2::', 3), 8000, 300);
    const v4 = nsRun(b.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '-I', '10.244.2.0', '10.244.1.0']);
    assert.match(v4, /2 received/);
  });

  it('sweeps stale IPv6 entries on flannel-v6.1 at startup and keeps the current peer', async () => {
    await a.stop();
    const dev = (await a.nl.linkByName(V6).catch(() => undefined)) ?? undefined;
    assert.equal(dev, undefined, 'the handle is closed after stop');
    run('ip', [
      '-n',
      a.ns,
      '-6',
      'neigh',
      'replace',
      'fd00:10:244:9::',
      'lladdr',
      '0e:00:00:00:09:09',
      'dev',
      V6,
      'nud',
      'permanent',
    ]);
    run('ip', [
      '-n',
      a.ns,
      '-6',
      'route',
      'replace',
      'fd00:10:244:9::/64',
      'via',
      'fd00:10:244:9::',
      'dev',
      V6,
      'onlink',
    ]);
    nsRun(a.ns, 'bridge', ['fdb', 'append', '0e:00:00:00:09:09', 'dev', V6, 'dst', 'fd12:203::9', 'self', 'permanent']);
    // An address inside nothing of ours is removed too (spec: other non-link-local v6 addresses).
    run('ip', ['-n', a.ns, '-6', 'addr', 'add', 'fd99::1/128', 'dev', V6, 'nodad']);
    await a.start();
    await until(
      'the stale v6 route to go',
      () => routes6(a.ns).every((r: any) => r.dst !== 'fd00:10:244:9::/64'),
      3000,
      25,
    );
    assert.deepEqual(
      routes6(a.ns).map((r: any) => r.dst),
      ['fd00:10:244:2::/64'],
    );
    assert.deepEqual(
      neigh6(a.ns).map((n: any) => n.dst),
      ['fd00:10:244:2::'],
    );
    assert.deepEqual(
      fdb6(a.ns).map((f: any) => f.dst),
      ['fd12:203::2'],
    );
    const global6 = globalV6(a.ns);
    assert.deepEqual(global6, ['fd00:10:244:1::/128']);
  });

  it('removes the IPv6 peer entries when the lease goes, leaving a v4-only peer alone on flannel-v6.1', async () => {
    cluster.put('10.244.3.0/24', {
      publicIP: '192.168.203.3',
      publicIPv6: null,
      backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: '0e:00:00:00:03:03' },
    });
    await until(
      'A to program the v4-only peer',
      () => ipJson(a.ns, ['route', 'show', 'dev', 'flannel.1']).length === 2,
      3000,
      25,
    );
    assert.deepEqual(
      routes6(a.ns).map((r: any) => r.dst),
      ['fd00:10:244:2::/64'],
    );
    cluster.remove('10.244.2.0/24');
    await until(
      'the v6 entries of B to go',
      () => routes6(a.ns).length === 0 && neigh6(a.ns).length === 0 && fdb6(a.ns).length === 0,
      3000,
      25,
    );
    assert.deepEqual(
      ipJson(a.ns, ['route', 'show', 'dev', 'flannel.1']).map((r: any) => r.dst),
      ['10.244.3.0/24'],
    );
  });
});
