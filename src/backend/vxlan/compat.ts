// Whether an existing flannel.<VNI> can be reused (the comparison of docs/COMPATIBILITY.md, "vxlan backend"); no I/O.
import type { LinkInfo, VxlanSpec } from '../../netlink/index.ts';

/** null when `existing` is compatible with `want`; otherwise what differs, for the "recreating device" log line. */
export function vxlanIncompatibility(existing: LinkInfo, want: VxlanSpec): string | null {
  if (existing.kind !== 'vxlan' || !existing.vxlan) return `it is a ${existing.kind ?? 'non-vxlan'} device, not vxlan`;
  const e = existing.vxlan;
  if (e.id !== want.id) return `VNI ${e.id} != ${want.id}`;
  // Device index, local address, group and port count only when both sides have one (as real flannel compares);
  // we never ask for a group, so it never counts.
  if (e.link && want.link && e.link !== want.link) return `vtep (external) interface index ${e.link} != ${want.link}`;
  if (e.local && want.local && e.local !== want.local) return `vtep (external) IP ${e.local} != ${want.local}`;
  if (e.port && want.port && e.port !== want.port) return `port ${e.port} != ${want.port}`;
  if (e.l2miss) return 'l2miss on != off';
  if (e.gbp !== want.gbp) return `GBP ${e.gbp} != ${want.gbp}`;
  return null;
}
