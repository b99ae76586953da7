// Dual-stack hosts for backend tests: an IPv6 address on each host's eth0 (besides the IPv4 one), a config with an
// IPv6Network, and backend nodes whose external interface carries the IPv6 address (ifaceAddrV6/extAddrV6).
import type { NetworkConfig } from '../../src/config/network-config.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';
import type { Backend, BackendContext } from '../../src/backend/backend.ts';
import { backendConfig, type Underlay } from './backend-node.ts';
import { MemoryCluster } from './memory-subnet-manager.ts';
import { run } from './netns.ts';
import { VxlanNode } from './vxlan-nodes.ts';
import { HostGwNode } from './hostgw-nodes.ts';

/** backendConfig plus IPv6Network fd00:10:244::/48 with /64 subnets. */
export function dualStackConfig(type: string, backend: Record<string, unknown> = {}): NetworkConfig {
  return {
    ...backendConfig(type, backend),
    enableIPv6: true,
    ipv6Network: IPv6Net.parse('fd00:10:244::/48'),
    ipv6SubnetLen: 64,
  };
}

/** A dual-stack cluster for `type` whose two hosts will hold 10.244.1.0/24 + fd00:10:244:1::/64 and …2. */
export function twoDualStackHosts(type: string): MemoryCluster {
  return new MemoryCluster(dualStackConfig(type))
    .dualStack('10.244.1.0/24', 'fd00:10:244:1::/64')
    .dualStack('10.244.2.0/24', 'fd00:10:244:2::/64');
}

/** A host on the underlay with `addr`/24 and `addr6`/64 (no DAD wait) on eth0. */
export function dualStackHost(u: Underlay, prefix: string, addr: string, addr6: string): string {
  const ns = u.host(prefix, addr);
  run('ip', ['-n', ns, 'addr', 'add', `${addr6}/64`, 'dev', 'eth0', 'nodad']);
  return ns;
}

/** Adds the IPv6 external address to whatever context the node builds. */
function withV6(ctx: BackendContext, addr6: string): BackendContext {
  return { ...ctx, extIface: { ...ctx.extIface, ifaceAddrV6: addr6, extAddrV6: addr6 } };
}

export class DualStackVxlanNode extends VxlanNode {
  constructor(
    ns: string,
    addr: string,
    readonly addr6: string,
    subnet: string,
    cluster: MemoryCluster,
  ) {
    super(ns, addr, subnet, cluster);
  }

  protected override createBackend(ctx: BackendContext): Backend {
    return super.createBackend(withV6(ctx, this.addr6));
  }
}

export class DualStackHostGwNode extends HostGwNode {
  constructor(
    ns: string,
    addr: string,
    readonly addr6: string,
    subnet: string,
    cluster: MemoryCluster,
    checkIntervalMs = 10_000,
  ) {
    super(ns, addr, subnet, cluster, checkIntervalMs);
  }

  protected override createBackend(ctx: BackendContext): Backend {
    return super.createBackend(withV6(ctx, this.addr6));
  }
}
