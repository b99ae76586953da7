// This node's subnets from spec.podCIDR(s) (docs/COMPATIBILITY.md, "Kubernetes subnet manager") with flannel's checks
// and messages; pure.
import { IPv4Net } from '../../ip/ipv4.ts';
import { IPv6Net } from '../../ip/ipv6.ts';
import type { NetworkConfig } from '../../config/network-config.ts';
import { podCIDRsOf } from './node-lease.ts';
import type { KubeNode } from './node.ts';

export class PodCIDRError extends Error {
  readonly code = 'EPODCIDR';
}

export interface OwnSubnets {
  v4?: IPv4Net;
  v6?: IPv6Net;
}

function outsideNetwork(net: { toString(): string }, cidr: { toString(): string }, name: string): PodCIDRError {
  return new PodCIDRError(
    `subnet "${net.toString()}" specified in the flannel net config doesn't contain "${cidr.toString()}" PodCIDR of the "${name}" node`,
  );
}

/** Splits the node's pod CIDRs into one IPv4 and one IPv6 network; two of a family is not dual stack. */
function splitPodCIDRs(name: string, cidrs: string[]): OwnSubnets {
  const out: OwnSubnets = {};
  const dualOnly = `pod cidrs should be IPv4/IPv6 only or dualstack (node "${name}" has ${JSON.stringify(cidrs)})`;
  for (const c of cidrs) {
    if (c.includes(':')) {
      if (out.v6) throw new PodCIDRError(dualOnly);
      try {
        out.v6 = IPv6Net.parse(c);
      } catch {
        throw new PodCIDRError(`node "${name}" has an invalid IPv6 pod CIDR "${c}"`);
      }
      continue;
    }
    if (out.v4) throw new PodCIDRError(dualOnly);
    try {
      out.v4 = IPv4Net.parse(c);
    } catch {
      throw new PodCIDRError(`node "${name}" has an invalid pod CIDR "${c}"`);
    }
  }
  return out;
}

/**
 * The node's v4 subnet (when EnableIPv4) and v6 subnet (when EnableIPv6), each checked against Network /
 * IPv6Network. A family the config does not enable is left out even if the node has a pod CIDR of it.
 */
export function ownSubnets(node: KubeNode, config: NetworkConfig): OwnSubnets {
  const name = node.metadata.name;
  const list = node.spec?.podCIDRs ?? [];
  if (list.length > 2)
    throw new PodCIDRError(
      `pod cidrs should be IPv4/IPv6 only or dualstack (node "${name}" has ${JSON.stringify(list)})`,
    );
  const cidrs = podCIDRsOf(node);
  if (cidrs.length === 0) {
    throw new PodCIDRError(
      `node "${name}" pod cidr not assigned (give the node a spec.podCIDR, e.g. kube-controller-manager --allocate-node-cidrs)`,
    );
  }
  const found = splitPodCIDRs(name, cidrs);
  const out: OwnSubnets = {};
  if (config.enableIPv4) {
    if (!found.v4)
      throw new PodCIDRError(`node "${name}" pod cidr not assigned (no IPv4 entry in ${JSON.stringify(cidrs)})`);
    const net = config.network;
    if (!net)
      throw new PodCIDRError(
        'the network config has no Network: set "Network" (e.g. "10.244.0.0/16") in net-conf.json',
      );
    if (!net.containsNet(found.v4)) throw outsideNetwork(net, found.v4, name);
    out.v4 = found.v4;
  }
  if (config.enableIPv6) {
    if (!found.v6) {
      // The fix differs: an IPv6-only network needs an IPv6 (single-stack or dual-stack) cluster CIDR, not a v4 one.
      const hint = config.enableIPv4
        ? 'EnableIPv6 needs a dual-stack cluster whose controller manager gives nodes an IPv6 pod CIDR, e.g. --cluster-cidr=10.244.0.0/16,fd00:10:244::/56'
        : 'an IPv6-only network needs a controller manager that gives nodes an IPv6 pod CIDR, e.g. --cluster-cidr=fd00:10:244::/56';
      throw new PodCIDRError(
        `node "${name}" ipv6 pod cidr not assigned (no IPv6 entry in ${JSON.stringify(cidrs)}; ${hint})`,
      );
    }
    const net6 = config.ipv6Network;
    if (!net6)
      throw new PodCIDRError(
        'the network config has EnableIPv6 but no IPv6Network: set "IPv6Network" (e.g. "fd00:10:244::/56") in net-conf.json',
      );
    if (!net6.containsNet(found.v6)) throw outsideNetwork(net6, found.v6, name);
    out.v6 = found.v6;
  }
  return out;
}
