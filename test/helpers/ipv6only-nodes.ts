// IPv6-only hosts for backend tests: a config with EnableIPv4 false and an IPv6Network, and backend nodes whose
// external interface has no IPv4 address (ifaceAddr/extAddr "", as interface selection gives on such a network).
import { parseNetworkConfig } from '../../src/config/parse.ts';
import type { NetworkConfig } from '../../src/config/network-config.ts';
import type { Backend, BackendContext } from '../../src/backend/backend.ts';
import type { MemoryCluster } from './memory-subnet-manager.ts';
import { VxlanNode } from './vxlan-nodes.ts';
import { HostGwNode } from './hostgw-nodes.ts';

/** EnableIPv4 false, IPv6Network fd00:10:244::/48 (so /64 subnets), parsed and defaulted as in etcd mode. */
export function ipv6OnlyConfig(type: string, backend: Record<string, unknown> = {}): NetworkConfig {
  const json = { EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fd00:10:244::/48', Backend: { Type: type, ...backend } };
  return parseNetworkConfig(JSON.stringify(json), { validate: true });
}

/** The context's external interface as an IPv6-only host's: no IPv4 address, `addr6` for both v6 fields. */
export function v6Only(ctx: BackendContext, addr6: string): BackendContext {
  return { ...ctx, extIface: { ...ctx.extIface, ifaceAddr: '', extAddr: '', ifaceAddrV6: addr6, extAddrV6: addr6 } };
}

/** A vxlan host on an IPv6-only network; `subnet6` is the IPv6 lease it gets from the cluster. */
export class IPv6OnlyVxlanNode extends VxlanNode {
  constructor(ns: string, readonly addr6: string, subnet6: string, cluster: MemoryCluster) {
    super(ns, '', subnet6, cluster);
  }

  protected override createBackend(ctx: BackendContext): Backend {
    return super.createBackend(v6Only(ctx, this.addr6));
  }
}

/** A host-gw host on an IPv6-only network. */
export class IPv6OnlyHostGwNode extends HostGwNode {
  constructor(ns: string, readonly addr6: string, subnet6: string, cluster: MemoryCluster, checkIntervalMs = 10_000) {
    super(ns, '', subnet6, cluster, checkIntervalMs);
  }

  protected override createBackend(ctx: BackendContext): Backend {
    return super.createBackend(v6Only(ctx, this.addr6));
  }
}
