// IPv6-only hosts for backend tests: a config with EnableIPv4 false and an IPv6Network, and backend nodes whose
// external interface has no IPv4 address (ifaceAddr/extAddr "", as interface selection gives on such a network):
// dual-stack nodes with an empty IPv4 address.
import { parseNetworkConfig } from '../../src/config/parse.ts';
import type { NetworkConfig } from '../../src/config/network-config.ts';
import type { MemoryCluster } from './memory-subnet-manager.ts';
import { DualStackHostGwNode, DualStackVxlanNode } from './dualstack-nodes.ts';

/** EnableIPv4 false, IPv6Network fd00:10:244::/48 (so /64 subnets), parsed and defaulted as in etcd mode. */
export function ipv6OnlyConfig(type: string, backend: Record<string, unknown> = {}): NetworkConfig {
  const json = {
    EnableIPv4: false,
    EnableIPv6: true,
    IPv6Network: 'fd00:10:244::/48',
    Backend: { Type: type, ...backend },
  };
  return parseNetworkConfig(JSON.stringify(json), { validate: true });
}

/** A vxlan host on an IPv6-only network (no IPv4 address); `subnet6` is the IPv6 lease it gets from the cluster. */
export class IPv6OnlyVxlanNode extends DualStackVxlanNode {
  constructor(ns: string, addr6: string, subnet6: string, cluster: MemoryCluster) {
    super(ns, '', addr6, subnet6, cluster);
  }
}

/** A host-gw host on an IPv6-only network (no IPv4 address). */
export class IPv6OnlyHostGwNode extends DualStackHostGwNode {
  constructor(ns: string, addr6: string, subnet6: string, cluster: MemoryCluster, checkIntervalMs = 10_000) {
    super(ns, '', addr6, subnet6, cluster, checkIntervalMs);
  }
}
