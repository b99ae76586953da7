// Hosts on one underlay running our host-gw backend: the route of docs/COMPATIBILITY.md, "Kernel state per backend",
// traffic, replacing conflicting routes, the route checker, non-adjacent peers, removal, the startup sweep and the NAT
// refusal.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ipJson, ipn, isRoot, Netns, nsRun } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { MemoryCluster } from '../helpers/memory-subnet-manager.ts';
import { Underlay, underlayPerSuite } from '../helpers/backend-node.ts';
import { HostGwNode, hostGwConfig } from '../helpers/hostgw-nodes.ts';
import { LogRecorder } from '../helpers/log.ts';

/** Gateway routes of the main table as `<dst> via <gw> dev <dev>[ onlink]`. */
const gwRoutes = (ns: string) =>
  ipJson(ns, ['-4', 'route', 'show', 'table', 'main'])
    .filter((r: any) => r.gateway)
    .map((r: any) => `${r.dst} via ${r.gateway} dev ${r.dev}${r.flags?.includes('onlink') ? ' onlink' : ''}`);
const hostGw = (ip: string) => ({ publicIP: ip, publicIPv6: null, backendType: 'host-gw' });
/** A stand-in for cni0: the subnet's .1 on a bridge, so the host owns an address inside its subnet. */
function addGatewayAddress(ns: string, subnet: string): void {
  ipn(ns, 'link', 'add', 'cni0', 'type', 'bridge');
  ipn(ns, 'addr', 'add', subnet.replace(/\.0\/24$/, '.1/24'), 'dev', 'cni0');
  ipn(ns, 'link', 'set', 'cni0', 'up');
}

describe('host-gw backend between two hosts', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  const cluster = new MemoryCluster(hostGwConfig());
  let logs: LogRecorder;
  let a: HostGwNode;
  let b: HostGwNode;

  before(async () => {
    logs = new LogRecorder();
    const u = new Underlay(netns);
    const nsA = u.host('fl-ga', '192.168.210.1');
    const nsB = u.host('fl-gb', '192.168.210.2');
    addGatewayAddress(nsA, '10.244.1.0/24');
    addGatewayAddress(nsB, '10.244.2.0/24');
    a = await new HostGwNode(nsA, '192.168.210.1', '10.244.1.0/24', cluster, 200).start();
    b = await new HostGwNode(nsB, '192.168.210.2', '10.244.2.0/24', cluster, 200).start();
  });

  after(async () => {
    logs?.stop();
    await a?.stop().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    netns.cleanup();
  });

  it('routes the peer subnet via its PublicIP on eth0 as documented, with no device and the eth0 MTU', async () => {
    await until('A to route to B', () => gwRoutes(a.ns).includes('10.244.2.0/24 via 192.168.210.2 dev eth0'), 1000, 25);
    assert.deepEqual(gwRoutes(a.ns), ['10.244.2.0/24 via 192.168.210.2 dev eth0']);
    await until('B to route to A', () => gwRoutes(b.ns).includes('10.244.1.0/24 via 192.168.210.1 dev eth0'), 1000, 25);
    assert.deepEqual(
      ipJson(a.ns, ['link', 'show'])
        .map((l: any) => l.ifname)
        .sort(),
      ['cni0', 'eth0', 'lo'],
    );
    assert.equal(a.network.mtu, 1500);
    assert.equal(
      JSON.stringify(a.sm.published.at(-1)),
      '{"publicIP":"192.168.210.1","publicIPv6":null,"backendType":"host-gw"}',
    );
    const [st] = a.network.peers();
    assert.deepEqual(
      { ...st, since: undefined },
      { subnet: '10.244.2.0/24', publicIP: '192.168.210.2', state: 'programmed', since: undefined },
    );
  });

  it("carries traffic between the hosts' subnets both ways", () => {
    assert.match(
      nsRun(a.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', '-I', '10.244.1.1', '10.244.2.1']),
      /3 received/,
    );
    assert.match(
      nsRun(b.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', '-I', '10.244.2.1', '10.244.1.1']),
      /3 received/,
    );
  });

  it('replaces a route to the subnet via another gateway, skips an identical one, and deletes it on removal', async () => {
    ipn(a.ns, 'route', 'add', '10.244.7.0/24', 'via', '192.168.210.99', 'dev', 'eth0');
    cluster.put('10.244.7.0/24', hostGw('192.168.210.7'));
    await until(
      'A to route 10.244.7.0/24 via its PublicIP',
      () => gwRoutes(a.ns).includes('10.244.7.0/24 via 192.168.210.7 dev eth0'),
      1000,
      25,
    );
    assert.ok(!gwRoutes(a.ns).some((r) => r.includes('192.168.210.99')), 'the conflicting route is gone');
    assert.equal(logs.find('Replacing existing route to 10.244.7.0/24 via 192.168.210.99 dev eth0').length >= 1, true);

    cluster.put('10.244.7.0/24', hostGw('192.168.210.7'));
    await until(
      'the identical route to be skipped',
      () => logs.find('Route to 10.244.7.0/24 via 192.168.210.7 dev eth0 already exists, skipping.').length > 0,
      1000,
      25,
    );

    // A peer whose PublicIP changes gets its route moved.
    cluster.put('10.244.7.0/24', hostGw('192.168.210.17'));
    await until(
      'the route to follow the new PublicIP',
      () => gwRoutes(a.ns).includes('10.244.7.0/24 via 192.168.210.17 dev eth0'),
      1000,
      25,
    );
    assert.equal(gwRoutes(a.ns).filter((r) => r.startsWith('10.244.7.0/24')).length, 1);

    cluster.remove('10.244.7.0/24');
    await until('the route to be deleted', () => !gwRoutes(a.ns).some((r) => r.startsWith('10.244.7.0/24')), 1000, 25);
    assert.deepEqual(
      a.network.peers().map((s) => s.subnet),
      ['10.244.2.0/24'],
    );
  });

  it('ignores leases of other backend types', async () => {
    cluster.put('10.244.8.0/24', {
      publicIP: '192.168.210.8',
      publicIPv6: null,
      backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: '0e:00:00:00:08:08' },
    });
    // The host-gw lease put after it shows the vxlan one was handled (and ignored) already.
    cluster.put('10.244.9.0/24', hostGw('192.168.210.9'));
    await until(
      '10.244.9.0/24 on A',
      () => gwRoutes(a.ns).includes('10.244.9.0/24 via 192.168.210.9 dev eth0'),
      1000,
      25,
    );
    assert.ok(!ipJson(a.ns, ['route']).some((r: any) => r.dst === '10.244.8.0/24'));
    assert.ok(logs.find('ignoring non-host-gw v4Subnet(10.244.8.0/24)', 'type=vxlan').length > 0);
    cluster.remove('10.244.8.0/24');
    cluster.remove('10.244.9.0/24');
    await until('10.244.9.0/24 gone', () => !gwRoutes(a.ns).some((r) => r.startsWith('10.244.9.0/24')), 1000, 25);
  });

  it('re-adds a deleted route and undoes a hand-changed gateway within the check period', async () => {
    ipn(a.ns, 'route', 'del', '10.244.2.0/24');
    await until(
      'the checker to recover the route',
      () => gwRoutes(a.ns).includes('10.244.2.0/24 via 192.168.210.2 dev eth0'),
      3000,
      25,
    );
    // The route is visible in the kernel a moment before the backend logs it.
    await until(
      'the recovery log line',
      () => logs.find('Route recovered 10.244.2.0/24 via 192.168.210.2 dev eth0').length > 0,
      1000,
      25,
    );

    ipn(a.ns, 'route', 'replace', '10.244.2.0/24', 'via', '192.168.210.66', 'dev', 'eth0');
    await until(
      'the checker to restore the gateway',
      () => gwRoutes(a.ns).includes('10.244.2.0/24 via 192.168.210.2 dev eth0'),
      3000,
      25,
    );
    assert.deepEqual(
      gwRoutes(a.ns).filter((r) => r.startsWith('10.244.2.0/24')),
      ['10.244.2.0/24 via 192.168.210.2 dev eth0'],
    );
  });

  it('logs a peer behind a router with the reason, keeps it desired, and programs it once it becomes adjacent', async () => {
    // 10.99.0.0/16 is reachable only through a router on the underlay: not L2-adjacent.
    ipn(a.ns, 'route', 'add', '10.99.0.0/16', 'via', '192.168.210.254', 'dev', 'eth0');
    cluster.put('10.244.3.0/24', hostGw('10.99.0.3'));
    const failed = (await until(
      'A to record the failure',
      () => a.network.peers().find((s) => s.subnet === '10.244.3.0/24' && s.state === 'failed'),
      1000,
      25,
    ))!;
    assert.equal(failed.publicIP, '10.99.0.3');
    assert.match(
      failed.reason!,
      /the kernel refused the route: (network is unreachable \(ENETUNREACH\)|invalid argument \(EINVAL\))/,
    );
    assert.match(
      failed.reason!,
      /peer 10\.99\.0\.3 is reached through gateway 192\.168\.210\.254, not directly on eth0/,
    );
    assert.ok(
      logs.find('Error adding route to 10.244.3.0/24 via 10.99.0.3 dev eth0', 'reached through gateway 192.168.210.254')
        .length > 0,
    );
    assert.ok(!gwRoutes(a.ns).some((r) => r.startsWith('10.244.3.0/24')));

    // The peer's network moves onto eth0: the checker retries the desired route and succeeds.
    ipn(a.ns, 'addr', 'add', '10.99.0.1/24', 'dev', 'eth0');
    await until(
      'the checker to add the route',
      () => gwRoutes(a.ns).includes('10.244.3.0/24 via 10.99.0.3 dev eth0'),
      3000,
      25,
    );
    // The route is visible in the kernel a moment before the backend logs it.
    await until(
      'the recovery log line',
      () => logs.find('Route recovered 10.244.3.0/24 via 10.99.0.3 dev eth0').length > 0,
      1000,
      25,
    );
    const ok = a.network.peers().find((s) => s.subnet === '10.244.3.0/24')!;
    assert.equal(ok.state, 'programmed');
    assert.equal(ok.reason, undefined);

    cluster.remove('10.244.3.0/24');
    await until('the route to be deleted', () => !gwRoutes(a.ns).some((r) => r.startsWith('10.244.3.0/24')), 1000, 25);
    assert.ok(!a.network.peers().some((s) => s.subnet === '10.244.3.0/24'));
  });
});

describe('host-gw backend at startup', { skip: !isRoot && 'needs root' }, () => {
  const u = underlayPerSuite<HostGwNode>();

  it('sweeps host-gw routes of vanished peers, fixes a wrong gateway, and touches nothing else', async () => {
    const ns = u.host('fl-gc', '192.168.211.3');
    ipn(ns, 'route', 'add', '10.244.9.0/24', 'via', '192.168.211.9', 'dev', 'eth0'); // stale: no lease
    ipn(ns, 'route', 'add', '10.244.4.0/24', 'via', '192.168.211.99', 'dev', 'eth0'); // a lease wants another gateway
    // Not ours: another prefix length, outside Network, no gateway, another table.
    ipn(ns, 'route', 'add', '10.244.16.0/20', 'via', '192.168.211.9', 'dev', 'eth0');
    ipn(ns, 'route', 'add', '172.16.5.0/24', 'via', '192.168.211.9', 'dev', 'eth0');
    ipn(ns, 'route', 'add', '10.244.10.0/24', 'dev', 'eth0');
    ipn(ns, 'route', 'add', '10.244.11.0/24', 'via', '192.168.211.9', 'dev', 'eth0', 'table', '100');

    const cluster = new MemoryCluster(hostGwConfig());
    cluster.put('10.244.4.0/24', hostGw('192.168.211.4'));
    u.nodes.push(await new HostGwNode(ns, '192.168.211.3', '10.244.3.0/24', cluster).start());

    await until(
      'the stale route to be swept',
      () => !gwRoutes(ns).some((r) => r.startsWith('10.244.9.0/24')),
      1000,
      25,
    );
    assert.deepEqual(gwRoutes(ns).sort(), [
      '10.244.16.0/20 via 192.168.211.9 dev eth0',
      '10.244.4.0/24 via 192.168.211.4 dev eth0',
      '172.16.5.0/24 via 192.168.211.9 dev eth0',
    ]);
    assert.ok(
      ipJson(ns, ['-4', 'route', 'show', 'table', 'main']).some((r: any) => r.dst === '10.244.10.0/24' && !r.gateway),
    );
    assert.deepEqual(
      ipJson(ns, ['-4', 'route', 'show', 'table', '100']).map((r: any) => `${r.dst} via ${r.gateway}`),
      ['10.244.11.0/24 via 192.168.211.9'],
    );
  });

  it("refuses to start behind NAT (PublicIP ≠ interface IP) with upstream's message and takes no lease", async () => {
    const ns = u.host('fl-gd', '192.168.211.5');
    const cluster = new MemoryCluster(hostGwConfig());
    const node = new HostGwNode(ns, '192.168.211.5', '10.244.5.0/24', cluster, 10_000, '203.0.113.5');
    await assert.rejects(node.start(), {
      message:
        "your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is not supported by host-gw backend",
    });
    assert.equal(cluster.leases.size, 0);
    assert.deepEqual(gwRoutes(ns), []);
  });
});
