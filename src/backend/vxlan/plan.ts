// What the kernel should hold for each peer lease, what of it is missing, and which existing entries are stale; no I/O.
import { IPv4Net, formatIPv4, parseIPv4 } from '../../ip/ipv4.ts';
import { IPv6Net, formatIPv6, parseIPv6 } from '../../ip/ipv6.ts';
import { RT_TABLE_MAIN, type FdbEntry, type NeighbourInfo, type RouteInfo } from '../../netlink/index.ts';
import { leaseName, type Lease } from '../../subnet/lease.ts';
import { otherBackendReason } from '../backend.ts';
import { parsePeerBackendData } from './options.ts';

/** How one peer is reached: straight over the underlay, or through the vxlan device. */
export type PeerPlan =
  | { mode: 'direct'; subnet: IPv4Net | IPv6Net; publicIP: string }
  | { mode: 'overlay'; subnet: IPv4Net | IPv6Net; publicIP: string; vtepMac: string };

/** A subnet's network address as text (10.244.2.0, fd00:10:244:2::). */
export function networkIp(subnet: IPv4Net | IPv6Net): string {
  return subnet instanceof IPv6Net ? formatIPv6(subnet.ip) : formatIPv4(subnet.ip);
}

export type PlanResult = { ok: true; plan: PeerPlan } | { ok: false; reason: string };

/**
 * `direct`: DirectRouting is on and the kernel reaches the peer's PublicIP without a gateway. Null when the lease has
 * no IPv4 subnet (an IPv6-only peer: nothing to do on flannel.<VNI>).
 */
export function planPeer(lease: Lease, direct: boolean): PlanResult | null {
  const a = lease.attrs;
  const subnet = lease.subnet;
  if (a.backendType !== 'vxlan') return { ok: false, reason: otherBackendReason(lease, 'vxlan') };
  if (!subnet) return null;
  if (direct) return { ok: true, plan: { mode: 'direct', subnet, publicIP: a.publicIP } };
  const data = parsePeerBackendData(a.backendData);
  if (!data) {
    return {
      ok: false,
      reason: `error decoding subnet lease JSON of ${subnet}: no valid VtepMAC in BackendData ${JSON.stringify(a.backendData ?? null)}`,
    };
  }
  return { ok: true, plan: { mode: 'overlay', subnet, publicIP: a.publicIP, vtepMac: data.vtepMac } };
}

/**
 * The IPv6 side of a dual-stack or IPv6-only peer (on flannel-v6.<VNI>, docs/COMPATIBILITY.md, "vxlan backend"): null
 * when the lease has no IPv6 subnet (a v4-only peer, nothing to do on the v6 device); `direct` as for v4, decided for
 * its PublicIPv6.
 */
export function planPeerV6(lease: Lease, direct: boolean): PlanResult | null {
  const a = lease.attrs;
  if (!lease.ipv6Subnet) return null;
  if (a.backendType !== 'vxlan') return { ok: false, reason: otherBackendReason(lease, 'vxlan') };
  if (!a.publicIPv6)
    return { ok: false, reason: `lease ${leaseName(lease)} has IPv6 subnet ${lease.ipv6Subnet} but no PublicIPv6` };
  if (direct) return { ok: true, plan: { mode: 'direct', subnet: lease.ipv6Subnet, publicIP: a.publicIPv6 } };
  const data = parsePeerBackendData(a.backendV6Data);
  if (!data) {
    return {
      ok: false,
      reason: `error decoding subnet lease JSON of ${leaseName(lease)}: no valid VtepMAC in BackendV6Data ${JSON.stringify(a.backendV6Data ?? null)}`,
    };
  }
  return {
    ok: true,
    plan: { mode: 'overlay', subnet: lease.ipv6Subnet, publicIP: a.publicIPv6, vtepMac: data.vtepMac },
  };
}

/** One kernel entry we program; `key` is what the kernel replaces by (so two entries with one key cannot coexist). */
export type Entry =
  | { kind: 'neighbour'; ip: string; mac: string }
  | { kind: 'fdb'; mac: string; dst: string }
  | { kind: 'route'; dst: string; gateway: string; onVxlan: boolean };

export function entryKey(e: Entry): string {
  switch (e.kind) {
    case 'neighbour':
      return `neigh ${e.ip}`;
    case 'fdb':
      return `fdb ${e.mac}`;
    case 'route':
      return `route ${e.dst}`;
  }
}

/** In the order they are added: neighbour, FDB, route (a packet can use the route only once ARP/FDB are there). */
export function entriesOf(plan: PeerPlan): Entry[] {
  const dst = plan.subnet.toString();
  if (plan.mode === 'direct') return [{ kind: 'route', dst, gateway: plan.publicIP, onVxlan: false }];
  const ip = networkIp(plan.subnet);
  return [
    { kind: 'neighbour', ip, mac: plan.vtepMac },
    { kind: 'fdb', mac: plan.vtepMac, dst: plan.publicIP },
    { kind: 'route', dst, gateway: ip, onVxlan: true },
  ];
}

/** Entries of the old plan that the new one does not overwrite (e.g. the FDB entry of a peer's previous MAC). */
export function obsoleteEntries(old: PeerPlan, next: PeerPlan): Entry[] {
  const keep = new Set(entriesOf(next).map(entryKey));
  return entriesOf(old).filter((e) => !keep.has(entryKey(e)));
}

/** What the kernel holds for one vxlan device, as listed for a check: its family's main table, its neighbours and FDB. */
export interface KernelEntries {
  routes: RouteInfo[];
  neighbours: NeighbourInfo[];
  fdb: FdbEntry[];
}

/** The kernel's entries as our entries' keys, built once so that checking N peers costs N lookups, not N scans. */
export interface KernelIndex {
  neighbours: Set<string>;
  fdb: Set<string>;
  routes: Set<string>;
}

const routeSig = (dst: string, gateway: string, onVxlan: boolean) => `${dst} ${gateway} ${onVxlan ? 'vx' : 'ext'}`;

/**
 * An entry is there only as we make it: a PERMANENT neighbour with the peer's MAC on the vxlan device, an FDB entry
 * with the MAC and dst on it, a main-table unicast route with the destination and gateway (on the device, or off it
 * for a direct route). What else the lists hold (other MACs, other dsts for the MAC, other devices) plays no part.
 */
export function indexKernel(kernel: KernelEntries, vxlanIndex: number): KernelIndex {
  const neighbours = new Set<string>();
  for (const n of kernel.neighbours) if (n.index === vxlanIndex && n.permanent) neighbours.add(`${n.ip} ${n.mac}`);
  const fdb = new Set<string>();
  for (const f of kernel.fdb) if (f.index === vxlanIndex) fdb.add(`${f.mac} ${f.dst}`);
  const routes = new Set<string>();
  for (const r of kernel.routes) {
    if (r.table === RT_TABLE_MAIN && r.type === 'unicast' && r.dst && r.gateway)
      routes.add(routeSig(r.dst, r.gateway, r.oif === vxlanIndex));
  }
  return { neighbours, fdb, routes };
}

/** The entries of `plan` the kernel lacks (deleted by hand, overwritten …), in the order they are added. */
export function missingIn(plan: PeerPlan, k: KernelIndex): Entry[] {
  return entriesOf(plan).filter((e) => {
    switch (e.kind) {
      case 'neighbour':
        return !k.neighbours.has(`${e.ip} ${e.mac}`);
      case 'fdb':
        return !k.fdb.has(`${e.mac} ${e.dst}`);
      case 'route':
        return !k.routes.has(routeSig(e.dst, e.gateway, e.onVxlan));
    }
  });
}

/** missingIn for one plan against the kernel's lists (index them once with indexKernel when checking many). */
export function missingEntries(plan: PeerPlan, kernel: KernelEntries, vxlanIndex: number): Entry[] {
  return missingIn(plan, indexKernel(kernel, vxlanIndex));
}

export interface SweepInput {
  network: IPv4Net | IPv6Net;
  subnetLen: number;
  vxlanIndex: number;
  extIndex: number;
  directRouting: boolean;
  peers: PeerPlan[];
  routes: RouteInfo[];
  neighbours: NeighbourInfo[];
  fdb: FdbEntry[];
}

export interface Stale {
  routes: RouteInfo[];
  neighbours: NeighbourInfo[];
  fdb: FdbEntry[];
}

function inside(network: IPv4Net | IPv6Net, dst: string | null): IPv4Net | IPv6Net | null {
  if (!dst) return null;
  try {
    if (network instanceof IPv6Net) {
      const n = IPv6Net.parse(dst);
      return network.containsNet(n) ? n : null;
    }
    const n = IPv4Net.parse(dst);
    return network.containsNet(n) ? n : null;
  } catch {
    return null;
  }
}

/**
 * Flannel-owned entries that belong to no current lease (upstream #2554). Only entries we would have made are
 * candidates: on the vxlan device (ours) permanent neighbours, permanent FDB entries with a dst, and main-table
 * routes into Network; on the external device only gateway routes to a SubnetLen-sized piece of Network, and only
 * with DirectRouting. Kernel-made routes are never candidates.
 */
export function staleEntries(s: SweepInput): Stale {
  const want = new Set<string>();
  for (const p of s.peers) {
    for (const e of entriesOf(p)) {
      if (e.kind === 'neighbour') want.add(`n ${e.ip} ${e.mac}`);
      else if (e.kind === 'fdb') want.add(`f ${e.mac} ${e.dst}`);
      else want.add(`r ${e.onVxlan ? 'vx' : 'ext'} ${e.dst} ${e.gateway}`);
    }
  }
  const ownRoute = (r: RouteInfo) => r.table === RT_TABLE_MAIN && r.type === 'unicast' && r.protocol !== 'kernel';
  // The set lookup first: parsing each of 5,000 wanted routes' dst only to keep it was most of a sweep.
  const routes = s.routes.filter((r) => {
    if (!ownRoute(r)) return false;
    if (r.oif === s.vxlanIndex)
      return !want.has(`r vx ${r.dst} ${r.gateway ?? ''}`) && inside(s.network, r.dst) !== null;
    if (s.directRouting && r.oif === s.extIndex && r.gateway && !want.has(`r ext ${r.dst} ${r.gateway}`)) {
      return inside(s.network, r.dst)?.prefix === s.subnetLen;
    }
    return false;
  });
  const neighbours = s.neighbours.filter(
    (n) => n.index === s.vxlanIndex && n.permanent && !want.has(`n ${n.ip} ${n.mac ?? ''}`),
  );
  const fdb = s.fdb.filter(
    (f) => f.index === s.vxlanIndex && f.permanent && f.dst !== undefined && !want.has(`f ${f.mac} ${f.dst}`),
  );
  return { routes, neighbours, fdb };
}

/** The device address: the lease's network address as /32 (10.244.1.0/32), or /128 for IPv6. */
export function deviceAddress(subnet: IPv4Net | IPv6Net): string {
  return subnet instanceof IPv6Net ? `${formatIPv6(subnet.ip)}/128` : `${formatIPv4(subnet.ip)}/32`;
}

/** Addresses on the device inside Network other than ours: removed when configuring it. */
export function foreignAddresses(
  addresses: Array<{ address: string; prefixLen: number }>,
  network: IPv4Net,
  own: string,
): string[] {
  return addresses
    .filter((a) => network.contains(parseIPv4(a.address)) && `${a.address}/${a.prefixLen}` !== own)
    .map((a) => `${a.address}/${a.prefixLen}`);
}

/** IPv6: every address on the device other than ours and the link-local ones (fe80::/10) is removed. */
export function foreignAddressesV6(addresses: Array<{ address: string; prefixLen: number }>, own: string): string[] {
  const linkLocal = IPv6Net.parse('fe80::/10');
  return addresses
    .filter((a) => !linkLocal.contains(parseIPv6(a.address)) && `${a.address}/${a.prefixLen}` !== own)
    .map((a) => `${a.address}/${a.prefixLen}`);
}
