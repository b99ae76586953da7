// Two dual-stack hosts running our host-gw backend: `<v6 subnet> via <PublicIPv6> dev eth0` (docs/COMPATIBILITY.md,
// "host-gw backend"), traffic, the checker re-adding a deleted v6 route, the startup sweep and removal.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ipJson, isRoot, Netns, pings6, run } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { Underlay } from '../helpers/backend-node.ts';
import { MemoryCluster } from '../helpers/memory-subnet-manager.ts';
import { DualStackHostGwNode, dualStackConfig, dualStackHost } from '../helpers/dualstack-nodes.ts';

const gwRoutes6 = (ns: string) =>
  ipJson(ns, ['-6', 'route', 'show', 'dev', 'eth0'])
    .filter((r: any) => r.gateway)
    .map((r: any) => `${r.dst} via ${r.gateway}`);

describe('host-gw backend, dual stack', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  const cluster = new MemoryCluster(dualStackConfig('host-gw'))
    .dualStack('10.244.1.0/24', 'fd00:10:244:1::/64')
    .dualStack('10.244.2.0/24', 'fd00:10:244:2::/64');
  let a: DualStackHostGwNode;
  let b: DualStackHostGwNode;

  before(async () => {
    const u = new Underlay(netns);
    const nsA = dualStackHost(u, 'fl-g6a', '192.168.204.1', 'fd12:204::1');
    const nsB = dualStackHost(u, 'fl-g6b', '192.168.204.2', 'fd12:204::2');
    a = await new DualStackHostGwNode(nsA, '192.168.204.1', 'fd12:204::1', '10.244.1.0/24', cluster, 200).start();
    b = await new DualStackHostGwNode(nsB, '192.168.204.2', 'fd12:204::2', '10.244.2.0/24', cluster, 200).start();
  });

  after(async () => {
    await a?.stop().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    netns.cleanup();
  });

  it('publishes PublicIPv6 and no backend data', () => {
    const attrs = a.sm.published.at(-1)!;
    assert.deepEqual(attrs, { publicIP: '192.168.204.1', publicIPv6: 'fd12:204::1', backendType: 'host-gw' });
  });

  it('routes the peer v6 subnet via its PublicIPv6 on eth0, next to the v4 route', async () => {
    await until('A to route B over v6', () => gwRoutes6(a.ns).length > 0, 3000, 25);
    assert.deepEqual(gwRoutes6(a.ns), ['fd00:10:244:2::/64 via fd12:204::2']);
    const v4 = ipJson(a.ns, ['route', 'show', 'dev', 'eth0'])
      .filter((r: any) => r.gateway)
      .map((r: any) => `${r.dst} via ${r.gateway}`);
    assert.deepEqual(v4, ['10.244.2.0/24 via 192.168.204.2']);
  });

  it('carries v6 traffic to an address inside the peer subnet', async () => {
    run('ip', ['-n', b.ns, 'addr', 'add', 'fd00:10:244:2::5/128', 'dev', 'lo']);
    run('ip', ['-n', a.ns, 'addr', 'add', 'fd00:10:244:1::5/128', 'dev', 'lo']);
    // The first packets may wait for neighbour discovery of the peer's underlay address.
    await until('a v6 ping from A to B', () => pings6(a.ns, 'fd00:10:244:1::5', 'fd00:10:244:2::5', 2), 8000, 300);
  });

  it('re-adds a deleted v6 route through the checker', async () => {
    run('ip', ['-n', a.ns, '-6', 'route', 'del', 'fd00:10:244:2::/64']);
    await until('the checker to restore the v6 route', () => gwRoutes6(a.ns).length === 1, 3000, 25);
    assert.deepEqual(gwRoutes6(a.ns), ['fd00:10:244:2::/64 via fd12:204::2']);
  });

  it('sweeps a stale v6 route at startup and removes the v6 route with the lease', async () => {
    await a.stop();
    run('ip', ['-n', a.ns, '-6', 'route', 'add', 'fd00:10:244:9::/64', 'via', 'fd12:204::9', 'dev', 'eth0']);
    // Not a SubnetLen-sized piece of the v6 Network: not ours, stays.
    run('ip', ['-n', a.ns, '-6', 'route', 'add', 'fd00:99::/64', 'via', 'fd12:204::9', 'dev', 'eth0']);
    await a.start();
    await until(
      'the stale v6 route to go',
      () => !gwRoutes6(a.ns).includes('fd00:10:244:9::/64 via fd12:204::9'),
      3000,
      25,
    );
    assert.deepEqual(gwRoutes6(a.ns).sort(), ['fd00:10:244:2::/64 via fd12:204::2', 'fd00:99::/64 via fd12:204::9']);
    cluster.remove('10.244.2.0/24');
    await until("B's v6 route to go", () => gwRoutes6(a.ns).length === 1, 3000, 25);
    assert.deepEqual(gwRoutes6(a.ns), ['fd00:99::/64 via fd12:204::9']);
  });
});
