// What the vxlan backend finds at startup: stale entries to sweep, an incompatible device, and DirectRouting.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bridgeJson, ipJson, ipn, isRoot, nsRun } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { MemoryCluster } from '../helpers/memory-subnet-manager.ts';
import { underlayPerSuite } from '../helpers/backend-node.ts';
import { VxlanNode, vxlanConfig } from '../helpers/vxlan-nodes.ts';

const routeLines = (ns: string) =>
  ipJson(ns, ['-4', 'route', 'show', 'table', 'main']).map((r: any) => `${r.dst} via ${r.gateway ?? '-'} dev ${r.dev}`);
const peerAttrs = (ip: string, mac: string) => ({
  publicIP: ip,
  publicIPv6: null,
  backendType: 'vxlan',
  backendData: { VNI: 1, VtepMAC: mac },
});

describe('vxlan backend at startup', { skip: !isRoot && 'needs root' }, () => {
  const u = underlayPerSuite<VxlanNode>();

  it('sweeps flannel entries of vanished peers and nothing else', async () => {
    const ns = u.host('fl-c', '192.168.201.3');
    // A device left by a previous run (compatible), with entries for a peer that is gone …
    ipn(
      ns,
      'link',
      'add',
      'flannel.1',
      'address',
      '0e:11:11:11:11:03',
      'type',
      'vxlan',
      'id',
      '1',
      'local',
      '192.168.201.3',
      'dev',
      'eth0',
      'dstport',
      '8472',
      'nolearning',
    );
    ipn(ns, 'link', 'set', 'flannel.1', 'up');
    ipn(ns, 'neigh', 'add', '10.244.9.0', 'lladdr', '0e:00:00:00:09:09', 'dev', 'flannel.1', 'nud', 'permanent');
    nsRun(ns, 'bridge', [
      'fdb',
      'append',
      '0e:00:00:00:09:09',
      'dev',
      'flannel.1',
      'dst',
      '192.168.201.9',
      'self',
      'permanent',
    ]);
    ipn(ns, 'route', 'add', '10.244.9.0/24', 'via', '10.244.9.0', 'dev', 'flannel.1', 'onlink');
    // … and things that are not ours to touch: a route outside Network on flannel.1, a route into Network on
    // another device, and a permanent neighbour on another device.
    ipn(ns, 'route', 'add', '172.16.5.0/24', 'via', '172.16.5.0', 'dev', 'flannel.1', 'onlink');
    ipn(ns, 'route', 'add', '10.244.10.0/24', 'via', '192.168.201.1', 'dev', 'eth0');
    ipn(ns, 'neigh', 'add', '192.168.201.99', 'lladdr', '0e:00:00:00:99:99', 'dev', 'eth0', 'nud', 'permanent');

    const cluster = new MemoryCluster(vxlanConfig());
    cluster.put('10.244.4.0/24', peerAttrs('192.168.201.4', '0e:00:00:00:04:04'));
    const c = new VxlanNode(ns, '192.168.201.3', '10.244.3.0/24', cluster);
    u.nodes.push(await c.start());

    await until(
      'the stale peer to be swept',
      () =>
        !routeLines(ns).includes('10.244.9.0/24 via 10.244.9.0 dev flannel.1') &&
        !ipJson(ns, ['neigh', 'show', 'dev', 'flannel.1']).some((n: any) => n.dst === '10.244.9.0') &&
        !bridgeJson(ns, ['fdb', 'show', 'dev', 'flannel.1']).some((f: any) => f.dst === '192.168.201.9'),
      1000,
      25,
    );
    const routes = routeLines(ns);
    assert.ok(routes.includes('10.244.4.0/24 via 10.244.4.0 dev flannel.1'), routes.join('\n'));
    assert.ok(routes.includes('172.16.5.0/24 via 172.16.5.0 dev flannel.1'), 'route outside Network kept');
    assert.ok(routes.includes('10.244.10.0/24 via 192.168.201.1 dev eth0'), 'route on another device kept');
    assert.ok(!routes.some((r) => r.startsWith('10.244.9.0/24')));
    assert.ok(
      ipJson(ns, ['neigh', 'show', 'dev', 'eth0']).some((n: any) => n.dst === '192.168.201.99'),
      'neighbour on eth0 kept',
    );
    assert.deepEqual(
      bridgeJson(ns, ['fdb', 'show', 'dev', 'flannel.1']).map((f: any) => `${f.mac} ${f.dst}`),
      ['0e:00:00:00:04:04 192.168.201.4'],
    );
    // The compatible device was reused with its MAC, and that MAC was published.
    assert.equal(ipJson(ns, ['link', 'show', 'flannel.1'])[0].address, '0e:11:11:11:11:03');
    assert.deepEqual(c.sm.published.at(-1)!.backendData, { VNI: 1, VtepMAC: '0e:11:11:11:11:03' });
  });

  it('recreates an incompatible flannel.1, keeping its MAC, and removes stray addresses inside Network', async () => {
    const ns = u.host('fl-d', '192.168.201.5');
    // Wrong local address and learning on: a different VXLAN setup, not reusable.
    ipn(
      ns,
      'link',
      'add',
      'flannel.1',
      'address',
      '0e:22:22:22:22:05',
      'mtu',
      '1400',
      'type',
      'vxlan',
      'id',
      '1',
      'local',
      '192.168.201.55',
      'dev',
      'eth0',
      'dstport',
      '8472',
      'gbp',
    );
    const oldIndex = ipJson(ns, ['link', 'show', 'flannel.1'])[0].ifindex;
    const cluster = new MemoryCluster(vxlanConfig());
    const d = new VxlanNode(ns, '192.168.201.5', '10.244.5.0/24', cluster);
    u.nodes.push(await d.start());
    const [link] = ipJson(ns, ['-d', 'link', 'show', 'flannel.1']);
    assert.notEqual(link.ifindex, oldIndex, 'recreated');
    assert.equal(link.address, '0e:22:22:22:22:05');
    assert.equal(link.mtu, 1450);
    assert.equal(link.linkinfo.info_data.local, '192.168.201.5');
    assert.equal(link.linkinfo.info_data.gbp, undefined);
    assert.equal(link.linkinfo.info_data.learning, false);
    assert.deepEqual(d.sm.published.at(-1)!.backendData, { VNI: 1, VtepMAC: '0e:22:22:22:22:05' });

    // A restart finds a stray address inside Network on the (now compatible) device and replaces it.
    await d.stop();
    ipn(ns, 'addr', 'add', '10.244.77.0/32', 'dev', 'flannel.1');
    ipn(ns, 'addr', 'add', '172.16.9.1/32', 'dev', 'flannel.1');
    await d.start();
    const addrs = ipJson(ns, ['-4', 'addr', 'show', 'flannel.1'])[0]
      .addr_info.map((i: any) => `${i.local}/${i.prefixlen}`)
      .sort();
    assert.deepEqual(addrs, ['10.244.5.0/32', '172.16.9.1/32']);
  });

  it('with DirectRouting routes a same-L2 peer only via its PublicIP on eth0 and sweeps stale direct routes', async () => {
    const nsE = u.host('fl-e', '192.168.201.6');
    const nsF = u.host('fl-f', '192.168.201.7');
    // A stale direct route of a vanished peer, plus a wider route into Network that is not flannel's shape.
    ipn(nsE, 'route', 'add', '10.244.8.0/24', 'via', '192.168.201.8', 'dev', 'eth0');
    ipn(nsE, 'route', 'add', '10.244.16.0/20', 'via', '192.168.201.8', 'dev', 'eth0');
    const cluster = new MemoryCluster(vxlanConfig({ DirectRouting: true }));
    const e = new VxlanNode(nsE, '192.168.201.6', '10.244.1.0/24', cluster);
    const f = new VxlanNode(nsF, '192.168.201.7', '10.244.2.0/24', cluster);
    u.nodes.push(await e.start(), await f.start());

    await until(
      'E to route to F directly and drop the stale route',
      () => {
        const r = routeLines(nsE);
        return r.includes('10.244.2.0/24 via 192.168.201.7 dev eth0') && !r.some((l) => l.startsWith('10.244.8.0/24'));
      },
      1000,
      25,
    );
    const routes = routeLines(nsE).filter((r) => r.startsWith('10.244.'));
    assert.deepEqual(routes.sort(), [
      '10.244.16.0/20 via 192.168.201.8 dev eth0',
      '10.244.2.0/24 via 192.168.201.7 dev eth0',
    ]);
    assert.deepEqual(ipJson(nsE, ['neigh', 'show', 'dev', 'flannel.1']), []);
    assert.deepEqual(bridgeJson(nsE, ['fdb', 'show', 'dev', 'flannel.1']), []);
    await until(
      'F to route to E',
      () => routeLines(nsF).includes('10.244.1.0/24 via 192.168.201.6 dev eth0'),
      1000,
      25,
    );
    assert.match(
      nsRun(nsE, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', '-I', '10.244.1.0', '10.244.2.0']),
      /3 received/,
    );

    // A peer behind a router is not directly reachable: it gets the vxlan treatment.
    ipn(nsE, 'route', 'add', '10.99.0.0/16', 'via', '192.168.201.254', 'dev', 'eth0', 'onlink');
    cluster.put('10.244.3.0/24', peerAttrs('10.99.0.3', '0e:00:00:00:03:04'));
    await until(
      'E to use flannel.1 for the routed peer',
      () => routeLines(nsE).includes('10.244.3.0/24 via 10.244.3.0 dev flannel.1'),
      1000,
      25,
    );
    assert.deepEqual(
      bridgeJson(nsE, ['fdb', 'show', 'dev', 'flannel.1']).map((x: any) => `${x.mac} ${x.dst}`),
      ['0e:00:00:00:03:04 10.99.0.3'],
    );
  });
});
