// This node's subnet from spec.podCIDR(s) (spec §4.2) with flannel's checks and messages; pure.
import { IPv4Net } from '../../ip/ipv4.ts';
import type { NetworkConfig } from '../../config/network-config.ts';
import { podCIDRsOf } from './node-lease.ts';
import type { KubeNode } from './node.ts';

export class PodCIDRError extends Error {
  readonly code = 'EPODCIDR';
}

export interface OwnSubnets {
  v4?: IPv4Net;
  /** The IPv6 pod CIDR as given (flannel-ts has no IPv6 networks yet). */
  v6?: string;
}

export function ownSubnets(node: KubeNode, config: NetworkConfig): OwnSubnets {
  const name = node.metadata.name;
  const list = node.spec?.podCIDRs ?? [];
  if (list.length > 2) throw new PodCIDRError(`pod cidrs should be IPv4/IPv6 only or dualstack (node "${name}" has ${JSON.stringify(list)})`);
  const cidrs = podCIDRsOf(node);
  if (cidrs.length === 0) {
    throw new PodCIDRError(`node "${name}" pod cidr not assigned (give the node a spec.podCIDR, e.g. kube-controller-manager --allocate-node-cidrs)`);
  }
  const out: OwnSubnets = {};
  for (const c of cidrs) {
    if (c.includes(':')) {
      out.v6 ??= c;
      continue;
    }
    if (out.v4) continue;
    try {
      out.v4 = IPv4Net.parse(c);
    } catch {
      throw new PodCIDRError(`node "${name}" has an invalid pod CIDR "${c}"`);
    }
  }
  if (config.enableIPv4) {
    if (!out.v4) throw new PodCIDRError(`node "${name}" pod cidr not assigned (no IPv4 entry in ${JSON.stringify(cidrs)})`);
    const net = config.network;
    if (!net) throw new PodCIDRError('the network config has no Network: set "Network" (e.g. "10.244.0.0/16") in net-conf.json');
    if (!net.containsNet(out.v4)) {
      throw new PodCIDRError(
        `subnet "${net.toString()}" specified in the flannel net config doesn't contain "${out.v4.toString()}" PodCIDR of the "${name}" node`,
      );
    }
  }
  return out;
}
