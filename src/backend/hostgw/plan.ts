// host-gw's desired routes and how they compare with the kernel's main table; no I/O.
import { IPv4Net } from '../../ip/ipv4.ts';
import { IPv6Net } from '../../ip/ipv6.ts';
import { RT_TABLE_MAIN, type RouteInfo, type RouteLookup } from '../../netlink/index.ts';
import type { Lease } from '../../subnet/lease.ts';
import { otherBackendReason } from '../backend.ts';

export const HOSTGW_TYPE = 'host-gw';

/** `<subnet> via <gateway> dev <oif>`: one peer's route on the external interface. */
export interface DesiredRoute {
  dst: string;
  gateway: string;
  oif: number;
}

/** `route` is null for an IPv6-only lease (it has no IPv4 subnet to route). */
export type RouteResult = { ok: true; route: DesiredRoute | null } | { ok: false; reason: string };

/**
 * The IPv4 route a peer lease asks for; leases of other backends are not ours (docs/COMPATIBILITY.md, "Lease JSON").
 */
export function routeForLease(lease: Lease, extIndex: number): RouteResult {
  const a = lease.attrs;
  if (a.backendType !== HOSTGW_TYPE) return { ok: false, reason: otherBackendReason(lease, HOSTGW_TYPE) };
  if (!lease.subnet) return { ok: true, route: null };
  return { ok: true, route: { dst: lease.subnet.toString(), gateway: a.publicIP, oif: extIndex } };
}

/** Dual stack and IPv6-only: `<v6 subnet> via <PublicIPv6> dev <ext>`; null when the lease has no IPv6 side (or is not host-gw). */
export function routeForLeaseV6(lease: Lease, extIndex: number): DesiredRoute | null {
  const a = lease.attrs;
  if (a.backendType !== HOSTGW_TYPE || !lease.ipv6Subnet || !a.publicIPv6) return null;
  return { dst: lease.ipv6Subnet.toString(), gateway: a.publicIPv6, oif: extIndex };
}

const isMainUnicast = (r: RouteInfo) => r.table === RT_TABLE_MAIN && r.type === 'unicast';

export function sameRoute(r: RouteInfo, d: DesiredRoute): boolean {
  return r.dst === d.dst && r.gateway === d.gateway && r.oif === d.oif;
}

export function describeRoute(r: { dst: string | null; gateway?: string }, dev?: string): string {
  return `${r.dst ?? 'default'}${r.gateway ? ` via ${r.gateway}` : ''}${dev ? ` dev ${dev}` : ''}`;
}

/**
 * What to do so the kernel holds `d`: nothing when an identical route is there; otherwise delete every other
 * main-table unicast route to the same destination (they would shadow or conflict with ours) and add ours.
 */
export type RouteAction = { kind: 'present' } | { kind: 'add'; replacing: RouteInfo[] };

export function routeAction(d: DesiredRoute, kernel: RouteInfo[]): RouteAction {
  const sameDst = kernel.filter((r) => isMainUnicast(r) && r.dst === d.dst);
  if (sameDst.some((r) => sameRoute(r, d))) return { kind: 'present' };
  return { kind: 'add', replacing: sameDst };
}

/** Desired routes with no identical route in the kernel (what the periodic checker re-adds). */
export function missingRoutes(desired: DesiredRoute[], kernel: RouteInfo[]): DesiredRoute[] {
  return desired.filter((d) => routeAction(d, kernel).kind === 'add');
}

export interface SweepInput {
  network: IPv4Net | IPv6Net;
  subnetLen: number;
  extIndex: number;
  desired: DesiredRoute[];
  routes: RouteInfo[];
}

/**
 * Routes host-gw would have made that match no current lease (upstream #2554): main-table unicast routes on the
 * external interface, with a gateway, to a SubnetLen-sized piece of Network, not made by the kernel.
 * Anything else (other devices, other prefixes, routes without a gateway) is not ours and stays.
 */
export function staleRoutes(s: SweepInput): RouteInfo[] {
  const want = new Set(s.desired.map((d) => `${d.dst} ${d.gateway}`));
  return s.routes.filter((r) => {
    if (!isMainUnicast(r) || r.protocol === 'kernel' || r.oif !== s.extIndex || !r.gateway || !r.dst) return false;
    const net = s.network;
    try {
      if (net instanceof IPv6Net) {
        const dst = IPv6Net.parse(r.dst);
        if (dst.prefix !== s.subnetLen || !net.containsNet(dst)) return false;
      } else {
        const dst = IPv4Net.parse(r.dst);
        if (dst.prefix !== s.subnetLen || !net.containsNet(dst)) return false;
      }
    } catch {
      return false;
    }
    return !want.has(`${r.dst} ${r.gateway}`);
  });
}

/**
 * Why the kernel refused `<subnet> via <peer> dev <ext>`, from `ip route get <peer>`: host-gw needs every host on
 * one L2 segment, so a peer behind a gateway or on another interface cannot be a next hop (issue #598).
 */
export function adjacencyReason(
  peer: string,
  extName: string,
  extIndex: number,
  lookup: RouteLookup | undefined,
): string | null {
  if (!lookup) return null;
  if (lookup.gateway) {
    return `peer ${peer} is reached through gateway ${lookup.gateway}, not directly on ${extName}; host-gw needs all hosts on one L2 network (use vxlan otherwise)`;
  }
  if (lookup.oif !== undefined && lookup.oif !== extIndex) {
    return `peer ${peer} is reached through another interface (index ${lookup.oif}), not ${extName}; host-gw needs all hosts on one L2 network with ${extName}`;
  }
  if (lookup.type !== 'unicast') return `peer ${peer} has no unicast route (${lookup.type})`;
  return null;
}
