// Two IPv6-only hosts running our host-gw backend (EnableIPv4 false): `<v6 subnet> via <PublicIPv6> dev eth0`, no IPv4
// route at all, traffic, the checker, and removal with the lease.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ipJson, isRoot, Netns, run } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { Underlay } from '../helpers/backend-node.ts';
import { MemoryCluster } from '../helpers/memory-subnet-manager.ts';
import { IPv6OnlyHostGwNode, ipv6OnlyConfig } from '../helpers/ipv6only-nodes.ts';
import { gwRoutes6, itRoutesV6 } from '../helpers/hostgw-nodes.ts';

const routes4 = (ns: string) => ipJson(ns, ['-4', 'route', 'show', 'table', 'main']);

describe('host-gw backend, IPv6-only network', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  const cluster = new MemoryCluster(ipv6OnlyConfig('host-gw'));
  let a: IPv6OnlyHostGwNode;
  let b: IPv6OnlyHostGwNode;

  before(async () => {
    const u = new Underlay(netns, 'f6t-sw');
    const nsA = u.hostV6('f6t-ga', 'fd12:206::1');
    const nsB = u.hostV6('f6t-gb', 'fd12:206::2');
    a = await new IPv6OnlyHostGwNode(nsA, 'fd12:206::1', 'fd00:10:244:1::/64', cluster, 200).start();
    b = await new IPv6OnlyHostGwNode(nsB, 'fd12:206::2', 'fd00:10:244:2::/64', cluster, 200).start();
  });

  after(async () => {
    await a?.stop().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    netns.cleanup();
  });

  it('publishes PublicIP 0.0.0.0, PublicIPv6 and no backend data; the lease has only the v6 subnet', () => {
    assert.deepEqual(a.sm.published.at(-1), { publicIP: '0.0.0.0', publicIPv6: 'fd12:206::1', backendType: 'host-gw' });
    const lease = cluster.leases.get('fd00:10:244:1::/64')!;
    assert.equal(`${lease.subnet ?? '-'} ${lease.ipv6Subnet}`, '- fd00:10:244:1::/64');
  });

  it('routes the peer v6 subnet via its PublicIPv6 on eth0, and adds no IPv4 route', async () => {
    await until('A to route B over v6', () => gwRoutes6(a.ns).length > 0, 3000, 25);
    assert.deepEqual(gwRoutes6(a.ns), ['fd00:10:244:2::/64 via fd12:206::2']);
    assert.deepEqual(gwRoutes6(b.ns), ['fd00:10:244:1::/64 via fd12:206::1']);
    assert.deepEqual(routes4(a.ns), []);
    assert.deepEqual(routes4(b.ns), []);
  });

  itRoutesV6(() => ({ a, b }), 'fd12:206::');

  it("routes a third host's v6-only lease and removes the route with the lease", async () => {
    run('ip', ['-n', a.ns, '-6', 'route', 'del', 'fd00:99::/64']);
    cluster.put('fd00:10:244:3::/64', { publicIP: '0.0.0.0', publicIPv6: 'fd12:206::3', backendType: 'host-gw' });
    await until('the route to the third host', () => gwRoutes6(a.ns).length === 2, 3000, 25);
    assert.deepEqual(gwRoutes6(a.ns).sort(), [
      'fd00:10:244:2::/64 via fd12:206::2',
      'fd00:10:244:3::/64 via fd12:206::3',
    ]);
    cluster.remove('fd00:10:244:3::/64');
    await until("the third host's route to go", () => gwRoutes6(a.ns).length === 1, 3000, 25);
    assert.deepEqual(gwRoutes6(a.ns), ['fd00:10:244:2::/64 via fd12:206::2']);
    assert.deepEqual(routes4(a.ns), []);
  });
});
