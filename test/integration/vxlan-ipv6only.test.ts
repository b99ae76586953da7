// Two IPv6-only hosts running our vxlan backend (EnableIPv4 false): only flannel-v6.1, a lease without BackendData
// and with PublicIP 0.0.0.0, IPv6 peers programmed on flannel-v6.1, the MTU of an IPv6 underlay, and traffic.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ipJson, isRoot, linkMac, Netns, pings6 } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { Underlay } from '../helpers/backend-node.ts';
import { MemoryCluster } from '../helpers/memory-subnet-manager.ts';
import { fdb6, neigh6, routes6, VXLAN_V6 as V6 } from '../helpers/vxlan-nodes.ts';
import { IPv6OnlyVxlanNode, ipv6OnlyConfig } from '../helpers/ipv6only-nodes.ts';

const vxlanDevices = (ns: string): string[] =>
  ipJson(ns, ['-d', 'link', 'show', 'type', 'vxlan'])
    .map((l: any) => l.ifname)
    .sort();
const showRoutes = (rs: any[]) => rs.map((r: any) => `${r.dst} via ${r.gateway} ${(r.flags ?? []).join(',')}`.trim());

describe('vxlan backend, IPv6-only network', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  const cluster = new MemoryCluster(ipv6OnlyConfig('vxlan'));
  let a: IPv6OnlyVxlanNode;
  let b: IPv6OnlyVxlanNode;

  before(async () => {
    const u = new Underlay(netns, 'f6t-sw');
    const nsA = u.hostV6('f6t-va', 'fd12:205::1');
    const nsB = u.hostV6('f6t-vb', 'fd12:205::2');
    a = await new IPv6OnlyVxlanNode(nsA, 'fd12:205::1', 'fd00:10:244:1::/64', cluster).start();
    b = await new IPv6OnlyVxlanNode(nsB, 'fd12:205::2', 'fd00:10:244:2::/64', cluster).start();
  });

  after(async () => {
    await a?.stop().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    netns.cleanup();
  });

  it('creates flannel-v6.1 only (no flannel.1), local = the public IPv6, addressed with the v6 lease as /128', async () => {
    assert.deepEqual(vxlanDevices(a.ns), [V6]);
    assert.deepEqual(
      ipJson(a.ns, ['link', 'show'])
        .map((l: any) => l.ifname)
        .filter((n: string) => n.startsWith('flannel')),
      [V6],
    );
    const [dev] = ipJson(a.ns, ['-d', 'link', 'show', V6]);
    assert.equal(dev.linkinfo.info_data.id, 1);
    assert.equal(dev.linkinfo.info_data.local6, 'fd12:205::1');
    assert.equal(dev.linkinfo.info_data.local, undefined);
    assert.equal(dev.linkinfo.info_data.link, 'eth0');
    assert.ok(dev.flags.includes('UP'));
    const addrs = ipJson(a.ns, ['addr', 'show', 'dev', V6])[0].addr_info.filter((i: any) => i.scope === 'global');
    assert.deepEqual(
      addrs.map((i: any) => `${i.family} ${i.local}/${i.prefixlen}`),
      ['inet6 fd00:10:244:1::/128'],
    );
    assert.equal(a.vxlan.deviceIndex, undefined, 'no flannel.1 index');
    assert.equal(a.vxlan.deviceIndexV6, dev.ifindex);
  });

  it('gives the network the IPv6 underlay MTU: the external MTU − 70', () => {
    const extMtu = ipJson(a.ns, ['link', 'show', 'eth0'])[0].mtu;
    assert.equal(extMtu, 1500);
    assert.equal(a.vxlan.mtu, extMtu - 70);
    assert.equal(ipJson(a.ns, ['link', 'show', V6])[0].mtu, extMtu - 70);
  });

  it('publishes PublicIP 0.0.0.0, PublicIPv6 and BackendV6Data, and no BackendData', () => {
    const attrs = a.sm.published.at(-1)!;
    assert.deepEqual(attrs, {
      publicIP: '0.0.0.0',
      publicIPv6: 'fd12:205::1',
      backendType: 'vxlan',
      backendV6Data: { VNI: 1, VtepMAC: linkMac(a.ns, V6) },
    });
    assert.equal('backendData' in attrs, false);
    const lease = cluster.leases.get('fd00:10:244:1::/64')!;
    assert.equal(lease.subnet, undefined);
    assert.equal(lease.ipv6Subnet?.toString(), 'fd00:10:244:1::/64');
  });

  it("programs the peer's v6-only lease on flannel-v6.1: onlink route, PERMANENT neighbour, FDB dst <peer PublicIPv6>", async () => {
    const bMac = linkMac(b.ns, V6);
    await until(
      'A to program B on flannel-v6.1',
      () => routes6(a.ns).length > 0 && fdb6(a.ns).length > 0 && neigh6(a.ns).length > 0,
      3000,
      25,
    );
    assert.deepEqual(showRoutes(routes6(a.ns)), ['fd00:10:244:2::/64 via fd00:10:244:2:: onlink']);
    assert.deepEqual(
      neigh6(a.ns).map((n: any) => `${n.dst} ${n.lladdr}`),
      [`fd00:10:244:2:: ${bMac}`],
    );
    assert.deepEqual(
      fdb6(a.ns).map((f: any) => `${f.mac} ${f.dst} ${f.flags.join(',')} ${f.state}`),
      [`${bMac} fd12:205::2 self permanent`],
    );
    // Nothing IPv4 anywhere: the hosts have no IPv4 address and flannel adds no IPv4 route.
    assert.deepEqual(ipJson(a.ns, ['-4', 'route', 'show', 'table', 'main']), []);
  });

  it("carries IPv6 traffic between the hosts' subnets", async () => {
    await until('a v6 ping from A to B', () => pings6(a.ns, 'fd00:10:244:1::', 'fd00:10:244:2::', 3), 8000, 300);
  });

  it("adds and removes a third host's v6-only lease, and ignores an IPv4-only lease", async () => {
    cluster.put('fd00:10:244:3::/64', {
      publicIP: '0.0.0.0',
      publicIPv6: 'fd12:205::3',
      backendType: 'vxlan',
      backendV6Data: { VNI: 1, VtepMAC: '0e:00:00:00:63:03' },
    });
    cluster.put('10.244.9.0/24', {
      publicIP: '192.168.205.9',
      publicIPv6: null,
      backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: '0e:00:00:00:09:09' },
    });
    await until('A to program the third host', () => routes6(a.ns).length === 2, 3000, 25);
    assert.deepEqual(showRoutes(routes6(a.ns)).sort(), [
      'fd00:10:244:2::/64 via fd00:10:244:2:: onlink',
      'fd00:10:244:3::/64 via fd00:10:244:3:: onlink',
    ]);
    assert.deepEqual(
      fdb6(a.ns)
        .map((f: any) => `${f.mac} ${f.dst}`)
        .sort(),
      [`${linkMac(b.ns, V6)} fd12:205::2`, '0e:00:00:00:63:03 fd12:205::3'].sort(),
    );
    cluster.remove('fd00:10:244:3::/64');
    await until(
      "the third host's entries to go",
      () => routes6(a.ns).length === 1 && neigh6(a.ns).length === 1 && fdb6(a.ns).length === 1,
      3000,
      25,
    );
    assert.deepEqual(
      neigh6(a.ns).map((n: any) => n.dst),
      ['fd00:10:244:2::'],
    );
    // The IPv4-only lease got nothing, and no flannel.1 appeared for it.
    assert.deepEqual(vxlanDevices(a.ns), [V6]);
    assert.deepEqual(ipJson(a.ns, ['-4', 'route', 'show', 'table', 'main']), []);
    cluster.remove('10.244.9.0/24');
  });
});
