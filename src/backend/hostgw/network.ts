// The running host-gw network: one route per peer via its PublicIP, a periodic checker that re-adds missing
// routes, and a startup sweep of routes whose leases are gone.
import type { IPv4Net } from '../../ip/ipv4.ts';
import type { IPv6Net } from '../../ip/ipv6.ts';
import { errorMessage, logger } from '../../log/log.ts';
import { RT_TABLE_MAIN, familyOf, isGone, isNetlinkCode, type Netlink, type RouteInfo } from '../../netlink/index.ts';
import { leaseName, type Lease, type SubnetManager } from '../../subnet/lease.ts';
import { otherBackendReason, type ExternalInterface, type Network, type PeerStatus } from '../backend.ts';
import { PeerStatusBook } from '../peer-status.ts';
import { Serial } from '../../util/tasks.ts';
import { Checker, runLeaseLoop } from '../lease-loop.ts';
import {
  HOSTGW_TYPE,
  adjacencyReason,
  describeRoute,
  missingRoutes,
  routeAction,
  routeForLease,
  routeForLeaseV6,
  staleRoutes,
  type DesiredRoute,
} from './plan.ts';

const log = logger('hostgw');

/** Upstream checks the routes every 10 s. */
export const ROUTE_CHECK_INTERVAL_MS = 10_000;

export interface HostGwTuning {
  /** Period of the route checker (tests shorten it). */
  checkIntervalMs?: number;
}

export interface HostGwNetworkInit {
  nl: Netlink;
  subnetManager: SubnetManager;
  lease: Lease;
  extIface: ExternalInterface;
  /** The IPv4 Network and subnet length; absent on an IPv6-only network. */
  v4?: { network: IPv4Net; subnetLen: number };
  /** Dual stack and IPv6-only: the IPv6 Network and subnet length; peers with an IPv6 subnet get a v6 route. */
  v6?: { network: IPv6Net; subnetLen: number };
  tuning?: HostGwTuning;
}

const KERNEL_TEXT: Record<string, string> = { ENETUNREACH: 'network is unreachable', EINVAL: 'invalid argument' };

export class HostGwNetwork implements Network {
  readonly lease: Lease;
  readonly mtu: number;
  /** Routes flannel wants, by destination subnet; a route the kernel refused stays here (the checker retries). */
  private readonly desired = new Map<string, DesiredRoute>();
  /** One record per desired route, by its destination. */
  private readonly status = new PeerStatusBook();
  /** A lease's name (leaseName: v4 subnet, else v6) → the v6 destination we route for it (also a key of `desired`). */
  private readonly v6Keys = new Map<string, string>();
  /** Lease handling and the other kernel work here touch the same entries: one at a time. */
  private readonly serial = new Serial();

  constructor(private readonly init: HostGwNetworkInit) {
    this.lease = init.lease;
    this.mtu = init.extIface.mtu;
  }

  /** Every current host-gw peer and whether its route is in the kernel, sorted by subnet (flanneld's `GET /peers`). */
  peers(): PeerStatus[] {
    return this.status.list();
  }

  async run(signal: AbortSignal): Promise<void> {
    await runLeaseLoop(
      {
        subnetManager: this.init.subnetManager,
        own: this.lease,
        serial: this.serial,
        log,
        handler: {
          added: (l) => this.added(l),
          removed: (l) => this.removed(l),
          readForSweep: () => this.readRoutes(),
          sweep: (kernel) => this.sweep(kernel),
        },
        alongside: (s) => this.checkLoop(s),
      },
      signal,
    );
  }

  private async added(lease: Lease): Promise<void> {
    const key = leaseName(lease);
    const res = routeForLease(lease, this.init.extIface.index);
    const key6 = this.v6Keys.get(key);
    const v6 = this.init.v6 ? routeForLeaseV6(lease, this.init.extIface.index) : null;
    // The v6 route it had before (another subnet, or none now) goes.
    if (key6 && key6 !== v6?.dst) {
      const old6 = this.desired.get(key6);
      this.v6Keys.delete(key);
      if (old6) await this.forget(key6, old6);
    }
    if (!res.ok) {
      log.info(res.reason);
      // A subnet that switched to another backend loses the route we made for it.
      const old = this.desired.get(key);
      if (old) await this.forget(key, old);
      return;
    }
    // An IPv6-only peer (or an IPv6-only network here) has no v4 route.
    if (res.route && this.init.v4) {
      log.info(`Subnet added: ${key} via ${res.route.gateway}`);
      this.desired.set(key, res.route);
      await this.ensure(res.route, 'lease');
    }
    if (v6) {
      log.info(`Subnet added: ${v6.dst} via ${v6.gateway}`);
      this.v6Keys.set(key, v6.dst);
      this.desired.set(v6.dst, v6);
      await this.ensure(v6, 'lease');
    }
  }

  private async removed(lease: Lease): Promise<void> {
    const key = leaseName(lease);
    const known = this.desired.get(key);
    if (!known && lease.attrs.backendType !== HOSTGW_TYPE) {
      log.info(otherBackendReason(lease, HOSTGW_TYPE));
      return;
    }
    log.info(`Subnet removed: ${key}`);
    // For a lease we never saw (removed before our first list), undo what its attrs would have made.
    const guess =
      lease.subnet && this.init.v4
        ? { dst: key, gateway: lease.attrs.publicIP, oif: this.init.extIface.index }
        : undefined;
    const route4 = known ?? guess;
    if (route4) await this.forget(key, route4);
    const key6 = this.v6Keys.get(key);
    this.v6Keys.delete(key);
    const v6 =
      (key6 && this.desired.get(key6)) || (this.init.v6 ? routeForLeaseV6(lease, this.init.extIface.index) : null);
    if (v6) await this.forget(v6.dst, v6);
  }

  private async forget(key: string, route: DesiredRoute): Promise<void> {
    this.desired.delete(key);
    this.status.delete(key);
    await this.deleteRoute(route);
  }

  /**
   * Makes the kernel hold `d`; `why` picks the log lines (a lease event, or the checker finding it missing).
   * `kernel`: the main table as just listed (the checker passes its list instead of listing again per route).
   */
  private async ensure(d: DesiredRoute, why: 'lease' | 'check', kernel?: RouteInfo[]): Promise<void> {
    const { nl, extIface } = this.init;
    const act = routeAction(d, kernel ?? (await nl.routes(familyOf(d.dst), { table: RT_TABLE_MAIN, dst: d.dst })));
    if (act.kind === 'present') {
      if (why === 'lease') log.info(`Route to ${describeRoute(d, extIface.name)} already exists, skipping.`);
      this.setStatus(d, 'programmed');
      return;
    }
    for (const r of act.replacing) {
      log.info(
        `Replacing existing route to ${describeRoute(r, this.devName(r))} with ${describeRoute(d, extIface.name)}`,
      );
      await this.deleteRoute(r);
    }
    try {
      await nl.replaceRoute({ dst: d.dst, gateway: d.gateway, oif: d.oif });
    } catch (e) {
      const reason = await this.refusal(d, e);
      const prev = this.status.get(d.dst);
      // The checker retries every period: log a refusal once per reason, not every 10 s.
      if (why === 'lease' || prev?.reason !== reason)
        log.error(`Error adding route to ${describeRoute(d, extIface.name)}: ${reason}`);
      this.setStatus(d, 'failed', reason);
      return;
    }
    if (why === 'check') log.info(`Route recovered ${describeRoute(d, extIface.name)}`);
    else log.info(`Added route to ${describeRoute(d, extIface.name)}`);
    this.setStatus(d, 'programmed');
  }

  /** The kernel's refusal in words, plus what `ip route get <peer>` says about adjacency. */
  private async refusal(d: DesiredRoute, err: unknown): Promise<string> {
    const { nl, extIface } = this.init;
    const code = (err as { code?: string }).code ?? '';
    const kernel = KERNEL_TEXT[code] ? `${KERNEL_TEXT[code]} (${code})` : errorMessage(err);
    const lookup = await nl.routeGet(d.gateway).catch(() => undefined);
    const why =
      adjacencyReason(d.gateway, extIface.name, extIface.index, lookup) ??
      (isNetlinkCode(err, 'ENETUNREACH', 'EINVAL')
        ? `peer ${d.gateway} is not directly reachable on ${extIface.name}; host-gw needs all hosts on one L2 network`
        : null);
    return `the kernel refused the route: ${kernel}${why ? `; ${why}` : ''}`;
  }

  private setStatus(d: DesiredRoute, state: PeerStatus['state'], reason?: string): void {
    this.status.set(d.dst, { subnet: d.dst, publicIP: d.gateway, state, reason });
  }

  private async deleteRoute(r: {
    dst: string | null;
    gateway?: string;
    oif?: number;
    priority?: number;
  }): Promise<void> {
    if (!r.dst) return;
    try {
      await this.init.nl.deleteRoute({ dst: r.dst, gateway: r.gateway, oif: r.oif, priority: r.priority });
    } catch (e) {
      if (!isGone(e)) log.error(`failed to delete route ${describeRoute(r)}: ${errorMessage(e)}`);
    }
  }

  private devName(r: RouteInfo): string | undefined {
    return r.oif === this.init.extIface.index
      ? this.init.extIface.name
      : r.oif !== undefined
        ? `index ${r.oif}`
        : undefined;
  }

  /** Every period: re-add desired routes that are not in the kernel (deleted by hand, a link flap …). */
  private checkLoop(signal: AbortSignal): Promise<void> {
    const periodMs = this.init.tuning?.checkIntervalMs ?? ROUTE_CHECK_INTERVAL_MS;
    return new Checker({
      what: 'route check',
      periodMs,
      serial: this.serial,
      log,
      read: () => this.readRoutes(),
      check: (kernel) => this.check(kernel),
    }).run(signal);
  }

  /** The main table's routes of each family in use: what the check and the sweep compare with. */
  private async readRoutes(): Promise<{ v4: RouteInfo[]; v6: RouteInfo[] }> {
    return {
      v4: this.init.v4 ? await this.init.nl.routes(4, { table: RT_TABLE_MAIN }) : [],
      v6: this.init.v6 ? await this.init.nl.routes(6, { table: RT_TABLE_MAIN }) : [],
    };
  }

  private async check(routes: { v4: RouteInfo[]; v6: RouteInfo[] }): Promise<void> {
    const kernel = [...routes.v4, ...routes.v6];
    for (const d of missingRoutes([...this.desired.values()], kernel)) {
      // A lease removed while we waited for the lock is no longer desired.
      if (this.desired.get(d.dst) === d) await this.ensure(d, 'check', kernel);
    }
  }

  /** After the first (complete) batch: delete host-gw routes that belong to no current lease (#2554). */
  private async sweep(kernel: { v4: RouteInfo[]; v6: RouteInfo[] }): Promise<void> {
    const { extIface } = this.init;
    const stale = this.init.v4
      ? staleRoutes({
          ...this.init.v4,
          extIndex: extIface.index,
          desired: [...this.desired.values()],
          routes: kernel.v4,
        })
      : [];
    if (this.init.v6) {
      stale.push(
        ...staleRoutes({
          ...this.init.v6,
          extIndex: extIface.index,
          desired: [...this.desired.values()],
          routes: kernel.v6,
        }),
      );
    }
    for (const r of stale) {
      log.info(`removing stale route ${describeRoute(r, extIface.name)} (no lease for it)`);
      await this.deleteRoute(r);
    }
  }
}
