import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import type { RouteInfo } from '../../src/netlink/index.ts';
import type { Lease, LeaseAttrs } from '../../src/subnet/lease.ts';
import {
  adjacencyReason,
  missingRoutes,
  routeAction,
  routeForLease,
  staleRoutes,
  type DesiredRoute,
} from '../../src/backend/hostgw/plan.ts';
import { HostGwBackend } from '../../src/backend/hostgw/backend.ts';
import { createBackend } from '../../src/backend/registry.ts';
import type { BackendContext } from '../../src/backend/backend.ts';

const ETH0 = 2;
const lease = (subnet: string, attrs: Partial<LeaseAttrs>): Lease => ({
  subnet: IPv4Net.parse(subnet),
  attrs: { publicIP: '192.168.1.12', publicIPv6: null, backendType: 'host-gw', ...attrs },
  expiration: null,
});
const route = (dst: string | null, over: Partial<RouteInfo> = {}): RouteInfo => ({
  dst,
  scope: 'universe',
  protocol: 'boot',
  onlink: false,
  table: 254,
  type: 'unicast',
  ...over,
});
const want: DesiredRoute = { dst: '10.244.2.0/24', gateway: '192.168.1.12', oif: ETH0 };

describe('host-gw planning', () => {
  it("routes a host-gw peer's subnet via its PublicIP on the external interface (docs/COMPATIBILITY.md, 'Kernel state per backend')", () => {
    assert.deepEqual(routeForLease(lease('10.244.2.0/24', {}), ETH0), { ok: true, route: want });
  });

  it('ignores leases of other backends, naming the subnet and type', () => {
    const r = routeForLease(lease('10.244.3.0/24', { backendType: 'vxlan' }), ETH0);
    assert.deepEqual(r, {
      ok: false,
      reason: 'ignoring non-host-gw v4Subnet(10.244.3.0/24) v6Subnet(<nil>): type=vxlan',
    });
    assert.equal(routeForLease(lease('10.244.3.0/24', { backendType: '' }), ETH0).ok, false);
  });

  it('skips an identical route and replaces routes with the same dst but another gateway or device', () => {
    assert.deepEqual(routeAction(want, [route('10.244.2.0/24', { gateway: '192.168.1.12', oif: ETH0 })]), {
      kind: 'present',
    });
    const otherGw = route('10.244.2.0/24', { gateway: '192.168.1.99', oif: ETH0 });
    const otherDev = route('10.244.2.0/24', { gateway: '192.168.1.12', oif: 7 });
    const elsewhere = route('10.244.5.0/24', { gateway: '192.168.1.99', oif: ETH0 });
    const otherTable = route('10.244.2.0/24', { gateway: '192.168.1.99', oif: ETH0, table: 100 });
    assert.deepEqual(routeAction(want, [otherGw, otherDev, elsewhere, otherTable]), {
      kind: 'add',
      replacing: [otherGw, otherDev],
    });
    assert.deepEqual(routeAction(want, []), { kind: 'add', replacing: [] });
    // A blackhole to the same dst is not a route the kernel would use in place of ours, but it is not ours either.
    assert.deepEqual(routeAction(want, [route('10.244.2.0/24', { type: 'blackhole', priority: 4096 })]), {
      kind: 'add',
      replacing: [],
    });
  });

  it('reports the desired routes the kernel lacks', () => {
    const other: DesiredRoute = { dst: '10.244.3.0/24', gateway: '192.168.1.13', oif: ETH0 };
    const kernel = [
      route('10.244.2.0/24', { gateway: '192.168.1.12', oif: ETH0 }),
      route('10.244.3.0/24', { gateway: '192.168.1.66', oif: ETH0 }),
    ];
    assert.deepEqual(missingRoutes([want, other], kernel), [other]);
    assert.deepEqual(missingRoutes([want], kernel), []);
  });

  it('sweeps only gateway routes on the external interface to SubnetLen pieces of Network that no lease wants', () => {
    const stale = route('10.244.9.0/24', { gateway: '192.168.1.19', oif: ETH0 });
    const wrongGw = route('10.244.2.0/24', { gateway: '192.168.1.66', oif: ETH0 });
    const routes = [
      route('10.244.2.0/24', { gateway: '192.168.1.12', oif: ETH0 }), // wanted
      stale,
      wrongGw,
      route('10.244.16.0/20', { gateway: '192.168.1.19', oif: ETH0 }), // other prefix
      route('172.16.0.0/24', { gateway: '192.168.1.19', oif: ETH0 }), // outside Network
      route('10.244.10.0/24', { oif: ETH0, scope: 'link' }), // no gateway
      route('10.244.11.0/24', { gateway: '10.0.0.1', oif: 5 }), // other device
      route('10.244.12.0/24', { gateway: '192.168.1.19', oif: ETH0, table: 100 }), // other table
      route('10.244.13.0/24', { gateway: '192.168.1.19', oif: ETH0, protocol: 'kernel' }),
      route(null, { gateway: '192.168.1.1', oif: ETH0 }), // default route
    ];
    const got = staleRoutes({
      network: IPv4Net.parse('10.244.0.0/16'),
      subnetLen: 24,
      extIndex: ETH0,
      desired: [want],
      routes,
    });
    assert.deepEqual(got, [stale, wrongGw]);
  });

  it('explains a non-adjacent peer from `ip route get`', () => {
    assert.match(
      adjacencyReason('10.99.0.3', 'eth0', ETH0, { type: 'unicast', gateway: '192.168.1.254', oif: ETH0 })!,
      /peer 10\.99\.0\.3 is reached through gateway 192\.168\.1\.254, not directly on eth0/,
    );
    assert.match(
      adjacencyReason('10.99.0.3', 'eth0', ETH0, { type: 'unicast', oif: 9 })!,
      /another interface \(index 9\)/,
    );
    assert.match(
      adjacencyReason('10.99.0.3', 'eth0', ETH0, { type: 'unreachable' })!,
      /no unicast route \(unreachable\)/,
    );
    assert.equal(adjacencyReason('192.168.1.12', 'eth0', ETH0, { type: 'unicast', oif: ETH0 }), null);
    assert.equal(adjacencyReason('192.168.1.12', 'eth0', ETH0, undefined), null);
  });
});

describe('host-gw backend', () => {
  const ctx = (over: Partial<BackendContext['extIface']>, acquired: LeaseAttrs[]): BackendContext => ({
    subnetManager: {
      name: 'test',
      async acquireLease(attrs: LeaseAttrs) {
        acquired.push(attrs);
        return lease('10.244.1.0/24', attrs);
      },
    } as unknown as BackendContext['subnetManager'],
    extIface: { name: 'eth0', index: ETH0, mtu: 9001, ifaceAddr: '192.168.1.11', extAddr: '192.168.1.11', ...over },
    config: {
      enableIPv4: true,
      enableIPv6: false,
      enableNFTables: false,
      network: IPv4Net.parse('10.244.0.0/16'),
      subnetLen: 24,
      backendType: 'host-gw',
      backend: { Type: 'host-gw' },
    },
    netlink: {} as BackendContext['netlink'],
  });

  it('is registered as host-gw (case-insensitively)', () => {
    assert.ok(createBackend(ctx({}, [])) instanceof HostGwBackend);
    assert.ok(
      createBackend({ ...ctx({}, []), config: { ...ctx({}, []).config, backendType: 'Host-GW' } }) instanceof
        HostGwBackend,
    );
  });

  it('publishes {PublicIP, PublicIPv6: null, BackendType: host-gw} with no BackendData and uses the external MTU', async () => {
    const acquired: LeaseAttrs[] = [];
    const net = await new HostGwBackend(ctx({}, acquired)).registerNetwork(new AbortController().signal);
    assert.deepEqual(acquired, [{ publicIP: '192.168.1.11', publicIPv6: null, backendType: 'host-gw' }]);
    assert.equal(JSON.stringify(acquired[0]), '{"publicIP":"192.168.1.11","publicIPv6":null,"backendType":"host-gw"}');
    assert.equal(net.mtu, 9001);
    assert.deepEqual(net.peers(), []);
  });

  it("refuses a PublicIP that differs from the interface IP with upstream's message, before taking a lease", async () => {
    const acquired: LeaseAttrs[] = [];
    await assert.rejects(
      new HostGwBackend(ctx({ extAddr: '203.0.113.7' }, acquired)).registerNetwork(new AbortController().signal),
      {
        message:
          "your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is not supported by host-gw backend",
      },
    );
    assert.deepEqual(acquired, []);
  });
});
