// Two hosts on one underlay running our vxlan backend: the state of docs/COMPATIBILITY.md, "Kernel state per backend",
// traffic, peer churn, restart, recreation.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bridgeJson, ipJson, isRoot, linkMac, Netns, nsRun, run } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { Underlay } from '../helpers/backend-node.ts';
import { MemoryCluster } from '../helpers/memory-subnet-manager.ts';
import { VxlanNode, vxlanConfig } from '../helpers/vxlan-nodes.ts';

const routesOn = (ns: string, dev: string) => ipJson(ns, ['route', 'show', 'dev', dev]);
const neighOn = (ns: string, dev: string) => ipJson(ns, ['neigh', 'show', 'dev', dev]);
const fdbOn = (ns: string, dev: string) => bridgeJson(ns, ['fdb', 'show', 'dev', dev]);

function ping(ns: string, from: string, to: string): string {
  return nsRun(ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', '-I', from, to]);
}

describe('vxlan backend between two hosts', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  const cluster = new MemoryCluster(vxlanConfig());
  let a: VxlanNode;
  let b: VxlanNode;

  before(async () => {
    const u = new Underlay(netns);
    a = await new VxlanNode(u.host('fl-a', '192.168.200.1'), '192.168.200.1', '10.244.1.0/24', cluster).start();
    b = await new VxlanNode(u.host('fl-b', '192.168.200.2'), '192.168.200.2', '10.244.2.0/24', cluster).start();
  });

  after(async () => {
    await a?.stop().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    netns.cleanup();
  });

  it('creates flannel.1 as documented: vxlan id 1, local, dev eth0, dstport 8472, nolearning, mtu 1450', () => {
    const [link] = ipJson(a.ns, ['-d', 'link', 'show', 'flannel.1']);
    assert.equal(link.mtu, 1450);
    assert.ok(link.flags.includes('UP'));
    const info = link.linkinfo;
    assert.equal(info.info_kind, 'vxlan');
    assert.equal(info.info_data.id, 1);
    assert.equal(info.info_data.local, '192.168.200.1');
    assert.equal(info.info_data.link, 'eth0');
    assert.equal(info.info_data.port, 8472);
    assert.equal(info.info_data.learning, false);
    assert.equal(info.info_data.group, undefined);
    // Locally administered unicast.
    const b0 = parseInt(link.address.slice(0, 2), 16);
    assert.equal(b0 & 3, 2);
    assert.equal(a.network.mtu, 1450);
  });

  it('addresses flannel.1 with the lease network address as /32 (scope global)', () => {
    const [addr] = ipJson(a.ns, ['-4', 'addr', 'show', 'flannel.1']);
    assert.deepEqual(
      addr.addr_info.map((i: any) => `${i.local}/${i.prefixlen} ${i.scope}`),
      ['10.244.1.0/32 global'],
    );
  });

  it('publishes {"VNI":1,"VtepMAC":<the device MAC>} with BackendType vxlan', () => {
    const attrs = a.sm.published.at(-1)!;
    assert.equal(attrs.backendType, 'vxlan');
    assert.equal(attrs.publicIP, '192.168.200.1');
    assert.equal(attrs.publicIPv6, null);
    assert.equal(JSON.stringify(attrs.backendData), `{"VNI":1,"VtepMAC":"${linkMac(a.ns, 'flannel.1')}"}`);
  });

  it('programs the peer: onlink route, PERMANENT neighbour, FDB entry to its PublicIP', async () => {
    const bMac = linkMac(b.ns, 'flannel.1');
    await until('A to learn about B', () => routesOn(a.ns, 'flannel.1').length > 0, 1000, 25);
    assert.deepEqual(
      routesOn(a.ns, 'flannel.1').map((r: any) => `${r.dst} via ${r.gateway} ${r.flags.join(',')}`),
      ['10.244.2.0/24 via 10.244.2.0 onlink'],
    );
    const neigh = neighOn(a.ns, 'flannel.1');
    assert.deepEqual(
      neigh.map((n: any) => `${n.dst} ${n.lladdr} ${n.state.join(',')}`),
      [`10.244.2.0 ${bMac} PERMANENT`],
    );
    const fdb = fdbOn(a.ns, 'flannel.1');
    assert.deepEqual(
      fdb.map((f: any) => `${f.mac} ${f.dst} ${f.flags.join(',')} ${f.state}`),
      [`${bMac} 192.168.200.2 self permanent`],
    );
  });

  it('carries traffic across flannel.1 both ways', async () => {
    await until('B to learn about A', () => routesOn(b.ns, 'flannel.1').length > 0, 1000, 25);
    assert.match(ping(a.ns, '10.244.1.0', '10.244.2.0'), /3 received/);
    assert.match(ping(b.ns, '10.244.2.0', '10.244.1.0'), /3 received/);
  });

  it('adds and removes a peer within 1 second, and leaves no FDB entry behind when its VtepMAC changes', async () => {
    const attrs = (mac: string) => ({
      publicIP: '192.168.200.7',
      publicIPv6: null,
      backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: mac },
    });
    cluster.put('10.244.7.0/24', attrs('0e:00:00:00:07:01'));
    await until(
      'peer 10.244.7.0/24 on A',
      () =>
        routesOn(a.ns, 'flannel.1').some((r: any) => r.dst === '10.244.7.0/24') &&
        neighOn(a.ns, 'flannel.1').some((n: any) => n.dst === '10.244.7.0' && n.lladdr === '0e:00:00:00:07:01') &&
        fdbOn(a.ns, 'flannel.1').some((f: any) => f.mac === '0e:00:00:00:07:01' && f.dst === '192.168.200.7'),
      1000,
      25,
    );

    cluster.put('10.244.7.0/24', attrs('0e:00:00:00:07:02'));
    await until(
      'the new MAC to replace the old one',
      () => {
        const fdb = fdbOn(a.ns, 'flannel.1');
        return (
          fdb.some((f: any) => f.mac === '0e:00:00:00:07:02') &&
          !fdb.some((f: any) => f.mac === '0e:00:00:00:07:01') &&
          neighOn(a.ns, 'flannel.1').some((n: any) => n.dst === '10.244.7.0' && n.lladdr === '0e:00:00:00:07:02')
        );
      },
      1000,
      25,
    );

    cluster.remove('10.244.7.0/24');
    await until(
      'peer 10.244.7.0/24 gone from A',
      () =>
        !routesOn(a.ns, 'flannel.1').some((r: any) => r.dst === '10.244.7.0/24') &&
        !neighOn(a.ns, 'flannel.1').some((n: any) => n.dst === '10.244.7.0') &&
        !fdbOn(a.ns, 'flannel.1').some((f: any) => f.dst === '192.168.200.7'),
      1000,
      25,
    );
    // B's entries are untouched by the churn.
    assert.equal(routesOn(a.ns, 'flannel.1').length, 1);
  });

  it('ignores leases of other backend types', async () => {
    cluster.put('10.244.8.0/24', { publicIP: '192.168.200.8', publicIPv6: null, backendType: 'host-gw' });
    cluster.put('10.244.9.0/24', {
      publicIP: '192.168.200.9',
      publicIPv6: null,
      backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: '0e:00:00:00:09:01' },
    });
    // The vxlan lease put after the host-gw one shows the host-gw one was processed (and ignored) already.
    await until(
      '10.244.9.0/24 on A',
      () => routesOn(a.ns, 'flannel.1').some((r: any) => r.dst === '10.244.9.0/24'),
      1000,
      25,
    );
    assert.ok(!ipJson(a.ns, ['route']).some((r: any) => r.dst === '10.244.8.0/24'));
    cluster.remove('10.244.8.0/24');
    cluster.remove('10.244.9.0/24');
    await until(
      '10.244.9.0/24 gone',
      () => !routesOn(a.ns, 'flannel.1').some((r: any) => r.dst === '10.244.9.0/24'),
      1000,
      25,
    );
  });

  it('recreates flannel.1 with its MAC, address and peers when it is deleted', async () => {
    const mac = linkMac(a.ns, 'flannel.1');
    const oldIndex = ipJson(a.ns, ['link', 'show', 'flannel.1'])[0].ifindex;
    run('ip', ['-n', a.ns, 'link', 'del', 'flannel.1']);
    await until(
      'flannel.1 back with B programmed',
      () => {
        const link = ipJson(a.ns, ['link', 'show', 'flannel.1'])[0];
        return (
          link &&
          link.ifindex !== oldIndex &&
          link.flags.includes('UP') &&
          routesOn(a.ns, 'flannel.1').some((r: any) => r.dst === '10.244.2.0/24') &&
          fdbOn(a.ns, 'flannel.1').some((f: any) => f.dst === '192.168.200.2') &&
          neighOn(a.ns, 'flannel.1').some((n: any) => n.dst === '10.244.2.0')
        );
      },
      5000,
      25,
    );
    assert.equal(linkMac(a.ns, 'flannel.1'), mac);
    assert.deepEqual(
      ipJson(a.ns, ['-4', 'addr', 'show', 'flannel.1'])[0].addr_info.map((i: any) => `${i.local}/${i.prefixlen}`),
      ['10.244.1.0/32'],
    );
    assert.match(ping(a.ns, '10.244.1.0', '10.244.2.0'), /3 received/);
  });

  it('keeps the VTEP MAC across a backend restart (reusing the compatible device)', async () => {
    const mac = linkMac(b.ns, 'flannel.1');
    const index = ipJson(b.ns, ['link', 'show', 'flannel.1'])[0].ifindex;
    await b.stop();
    await b.start();
    assert.equal(linkMac(b.ns, 'flannel.1'), mac);
    assert.equal(ipJson(b.ns, ['link', 'show', 'flannel.1'])[0].ifindex, index, 'the device was reused, not recreated');
    assert.deepEqual(b.sm.published.at(-1)!.backendData, { VNI: 1, VtepMAC: mac });
    await until(
      'B to program A again',
      () => routesOn(b.ns, 'flannel.1').some((r: any) => r.dst === '10.244.1.0/24'),
      1000,
      25,
    );
    assert.match(ping(b.ns, '10.244.2.0', '10.244.1.0'), /3 received/);
  });
});
