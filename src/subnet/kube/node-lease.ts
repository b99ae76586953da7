// Nodes as leases (docs/COMPATIBILITY.md, "Kubernetes subnet manager"): which nodes are peers, their lease, and which
// updates peers must hear about; pure.
import { IPv4Net, isIPv4 } from '../../ip/ipv4.ts';
import { IPv6Net, isIPv6 } from '../../ip/ipv6.ts';
import { makeLease, type Lease, type LeaseAttrs, type LeaseEvent } from '../lease.ts';
import type { AnnotationNames } from './annotations.ts';
import { annotationsOf, type KubeNode } from './node.ts';

export type NodeLease = { lease: Lease } | { skip: string };

/** The node's pod CIDRs in order: spec.podCIDRs when set, else spec.podCIDR. */
export function podCIDRsOf(node: KubeNode): string[] {
  const list = node.spec?.podCIDRs;
  if (list && list.length > 0) return list;
  return node.spec?.podCIDR ? [node.spec.podCIDR] : [];
}

/** The first IPv4 pod CIDR, or null. */
function firstIPv4PodCIDR(node: KubeNode): IPv4Net | null {
  for (const c of podCIDRsOf(node)) {
    if (c.includes(':')) continue;
    try {
      return IPv4Net.parse(c);
    } catch {
      return null;
    }
  }
  return null;
}

/** The first IPv6 pod CIDR: absent, a network, or the text that does not parse. */
function firstIPv6PodCIDR(node: KubeNode): { net?: IPv6Net } | { bad: string } {
  const c = podCIDRsOf(node).find((x) => x.includes(':'));
  if (c === undefined) return {};
  try {
    return { net: IPv6Net.parse(c) };
  } catch {
    return { bad: c };
  }
}

function parseJsonAnnotation(text: string | undefined, name: string): { value: unknown } | { error: string } {
  if (text === undefined) return { value: undefined };
  try {
    return { value: JSON.parse(text) };
  } catch {
    return { error: `annotation ${name} is not JSON: ${JSON.stringify(text.slice(0, 100))}` };
  }
}

/**
 * A peer node's lease: v4 subnet = first IPv4 pod CIDR, v6 subnet = first IPv6 pod CIDR (dual stack and IPv6-only;
 * backends without IPv6 ignore it), attrs from the annotations (backend data raw JSON). An IPv6-only node (no IPv4
 * pod CIDR) needs a public-ipv6; its public-ip is "0.0.0.0" or absent.
 * Nodes flannel does not manage, or whose annotations do not parse, are skipped with the reason.
 */
export function nodeToLease(node: KubeNode, names: AnnotationNames): NodeLease {
  const a = annotationsOf(node);
  if (a[names.subnetKubeManaged] !== 'true') return { skip: `no ${names.subnetKubeManaged}: "true" annotation` };
  const subnet = firstIPv4PodCIDR(node);
  const v6subnet = firstIPv6PodCIDR(node);
  if ('bad' in v6subnet) return { skip: `invalid IPv6 pod CIDR ${JSON.stringify(v6subnet.bad)}` };
  if (!subnet && !v6subnet.net) return { skip: `no pod CIDR (podCIDRs ${JSON.stringify(podCIDRsOf(node))})` };
  const publicIP = a[names.publicIP] ?? (subnet ? undefined : '0.0.0.0');
  if (publicIP === undefined || !isIPv4(publicIP))
    return { skip: `bad ${names.publicIP} ${JSON.stringify(publicIP ?? null)}` };
  const v6 = a[names.publicIPv6];
  if (v6 !== undefined && !isIPv6(v6)) return { skip: `bad ${names.publicIPv6} ${JSON.stringify(v6)}` };
  if (!subnet && v6 === undefined) return { skip: `IPv6-only node without ${names.publicIPv6}` };
  const attrs: LeaseAttrs = { publicIP, publicIPv6: v6 ?? null, backendType: a[names.backendType] ?? '' };
  const data = parseJsonAnnotation(a[names.backendData], names.backendData);
  if ('error' in data) return { skip: data.error };
  if (data.value !== undefined) attrs.backendData = data.value;
  const v6data = parseJsonAnnotation(a[names.backendV6Data], names.backendV6Data);
  if ('error' in v6data) return { skip: v6data.error };
  if (v6data.value !== undefined) attrs.backendV6Data = v6data.value;
  return { lease: makeLease({ subnet: subnet ?? undefined, ipv6Subnet: v6subnet.net }, attrs, null) };
}

/**
 * Whether peers must reprogram a node: its v4 annotations (backend-data, backend-type, public-ip) or its v6 ones
 * (backend-v6-data, backend-type, public-ipv6) changed. Either suffices: upstream lets an unchanged v6 set hide a
 * v4 change in dual-stack mode, which leaves peers with a stale MAC or address.
 */
export function peerAnnotationsChanged(old: KubeNode, next: KubeNode, names: AnnotationNames): boolean {
  const a = annotationsOf(old);
  const b = annotationsOf(next);
  const differ = (k: string) => a[k] !== b[k];
  const v4 = differ(names.backendData) || differ(names.backendType) || differ(names.publicIP);
  const v6 = differ(names.backendV6Data) || differ(names.backendType) || differ(names.publicIPv6);
  return v4 || v6;
}

/**
 * The lease events for a node going from `old` to `next` (either may be absent: added / deleted). A node that stops
 * being a valid peer is removed; a new pod CIDR (v4 or v6) removes the old subnet before adding the new one.
 */
export function nodeChangeEvents(
  old: KubeNode | undefined,
  next: KubeNode | undefined,
  names: AnnotationNames,
): LeaseEvent[] {
  const before = old ? nodeToLease(old, names) : null;
  const after = next ? nodeToLease(next, names) : null;
  const oldLease = before && 'lease' in before ? before.lease : null;
  const newLease = after && 'lease' in after ? after.lease : null;
  if (!oldLease) return newLease ? [{ type: 'added', lease: newLease }] : [];
  if (!newLease) return [{ type: 'removed', lease: oldLease }];
  const same = (a?: { toString(): string }, b?: { toString(): string }) => a?.toString() === b?.toString();
  if (!same(oldLease.subnet, newLease.subnet) || !same(oldLease.ipv6Subnet, newLease.ipv6Subnet)) {
    return [
      { type: 'removed', lease: oldLease },
      { type: 'added', lease: newLease },
    ];
  }
  return peerAnnotationsChanged(old!, next!, names) ? [{ type: 'added', lease: newLease }] : [];
}
