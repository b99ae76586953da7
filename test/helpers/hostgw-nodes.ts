// Hosts running our host-gw backend inside this test process (see backend-node.ts).
import type { NetworkConfig } from '../../src/config/network-config.ts';
import { HostGwBackend } from '../../src/backend/hostgw/backend.ts';
import type { HostGwNetwork } from '../../src/backend/hostgw/network.ts';
import type { Backend, BackendContext } from '../../src/backend/backend.ts';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { MemoryCluster } from './memory-subnet-manager.ts';
import { BackendNode, backendConfig } from './backend-node.ts';
import { ipJson, pings6, run } from './netns.ts';
import { until } from './wait.ts';

export function hostGwConfig(): NetworkConfig {
  return backendConfig('host-gw');
}

export class HostGwNode extends BackendNode<HostGwNetwork> {
  constructor(
    ns: string,
    addr: string,
    subnet: string,
    cluster: MemoryCluster,
    readonly checkIntervalMs = 10_000,
    /** The address peers are told to use; differs from `addr` only to provoke the NAT refusal. */
    readonly publicIP = addr,
  ) {
    super(ns, addr, subnet, cluster);
  }

  protected override get extAddr(): string {
    return this.publicIP;
  }

  protected createBackend(ctx: BackendContext): Backend {
    return new HostGwBackend(ctx, { checkIntervalMs: this.checkIntervalMs });
  }
}

/** The IPv6 routes with a gateway on eth0, as `<dst> via <gateway>`. */
export const gwRoutes6 = (ns: string): string[] =>
  ipJson(ns, ['-6', 'route', 'show', 'dev', 'eth0'])
    .filter((r: any) => r.gateway)
    .map((r: any) => `${r.dst} via ${r.gateway}`);

/**
 * The IPv6 behaviour of two host-gw hosts that hold fd00:10:244:1::/64 (A) and fd00:10:244:2::/64 (B), their eth0
 * addresses `${underlay6}1` and `${underlay6}2`: traffic, the checker re-adding a deleted route, the startup sweep
 * of a stale route that keeps a route that is not a SubnetLen piece of the Network. The sweep leaves fd00:99::/64.
 */
export function itRoutesV6(nodes: () => { a: HostGwNode; b: HostGwNode }, underlay6: string): void {
  const peerRoute = `fd00:10:244:2::/64 via ${underlay6}2`;

  it('carries v6 traffic to an address inside the peer subnet', async () => {
    const { a, b } = nodes();
    run('ip', ['-n', b.ns, 'addr', 'add', 'fd00:10:244:2::5/128', 'dev', 'lo']);
    run('ip', ['-n', a.ns, 'addr', 'add', 'fd00:10:244:1::5/128', 'dev', 'lo']);
    // The first packets may wait for neighbour discovery of the peer's underlay address.
    await until('a v6 ping from A to B', () => pings6(a.ns, 'fd00:10:244:1::5', 'fd00:10:244:2::5', 2), 8000, 300);
  });

  it('re-adds a deleted v6 route through the checker', async () => {
    const { a } = nodes();
    run('ip', ['-n', a.ns, '-6', 'route', 'del', 'fd00:10:244:2::/64']);
    await until('the checker to restore the v6 route', () => gwRoutes6(a.ns).length === 1, 3000, 25);
    assert.deepEqual(gwRoutes6(a.ns), [peerRoute]);
  });

  it('sweeps a stale v6 route of the Network at startup, keeping routes that are not SubnetLen pieces of it', async () => {
    const { a } = nodes();
    await a.stop();
    const stale = `fd00:10:244:9::/64 via ${underlay6}9`;
    const foreign = `fd00:99::/64 via ${underlay6}9`;
    run('ip', ['-n', a.ns, '-6', 'route', 'add', 'fd00:10:244:9::/64', 'via', `${underlay6}9`, 'dev', 'eth0']);
    run('ip', ['-n', a.ns, '-6', 'route', 'add', 'fd00:99::/64', 'via', `${underlay6}9`, 'dev', 'eth0']);
    await a.start();
    await until('the stale v6 route to go', () => !gwRoutes6(a.ns).includes(stale), 3000, 25);
    assert.deepEqual(gwRoutes6(a.ns).sort(), [peerRoute, foreign]);
  });
}
