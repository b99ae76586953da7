// Two dual-stack hosts running our host-gw backend: `<v6 subnet> via <PublicIPv6> dev eth0` (docs/COMPATIBILITY.md,
// "host-gw backend"), traffic, the checker re-adding a deleted v6 route, the startup sweep and removal.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ipJson, isRoot, Netns } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { Underlay } from '../helpers/backend-node.ts';
import { DualStackHostGwNode, dualStackHost, twoDualStackHosts } from '../helpers/dualstack-nodes.ts';
import { gwRoutes6, itRoutesV6 } from '../helpers/hostgw-nodes.ts';

describe('host-gw backend, dual stack', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  const cluster = twoDualStackHosts('host-gw');
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

  itRoutesV6(() => ({ a, b }), 'fd12:204::');

  it('removes the v6 route with the lease', async () => {
    cluster.remove('10.244.2.0/24');
    await until("B's v6 route to go", () => gwRoutes6(a.ns).length === 1, 3000, 25);
    assert.deepEqual(gwRoutes6(a.ns), ['fd00:99::/64 via fd12:204::9']);
  });
});
