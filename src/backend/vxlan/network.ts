// The running vxlan network: turns lease events into kernel entries, sweeps stale ones, recreates a deleted device and
// restores peer entries someone deleted (every 10 s, and soon after the kernel reports a deletion on the device).
// Dual stack: the same work once per family, v4 on flannel.<VNI> and v6 on flannel-v6.<VNI>; `GET /peers` lists a
// peer once, programmed only when both families' entries are in.
import type { IPv4Net } from '../../ip/ipv4.ts';
import type { IPv6Net } from '../../ip/ipv6.ts';
import { errorMessage, logger } from '../../log/log.ts';
import { RT_TABLE_MAIN, type LinkInfo, type Netlink, type VxlanSpec } from '../../netlink/index.ts';
import { leaseName, type Lease, type SubnetManager } from '../../subnet/lease.ts';
import {
  otherBackendReason,
  type ExternalInterface,
  type Network,
  type PeerStatus,
  type RepairCounts,
} from '../backend.ts';
import { configureDevice, configureDeviceV6, ensureVxlanDevice } from './device.ts';
import type { VxlanOptions } from './options.ts';
import { DEFAULT_RETRY, PeerProgrammer, describe, type RetryPolicy } from './peers.ts';
import {
  obsoleteEntries,
  planPeer,
  planPeerV6,
  staleEntries,
  type PeerPlan,
  type PlanResult,
  type Stale,
} from './plan.ts';
import { PeerRepair, type RepairTuning } from './repair.ts';
import { VxlanPeerStatus, outcomeOf } from './status.ts';
import { Serial } from '../../util/tasks.ts';
import { sleep } from '../../util/time.ts';
import { runLeaseLoop } from '../lease-loop.ts';

const log = logger('vxlan');

/** Knobs tests turn: the repair check's timing (RepairTuning), peer retries, device recreation. */
export interface VxlanTuning extends RepairTuning {
  retry?: RetryPolicy;
  /** Waits between attempts to recreate a deleted device: doubling from `initialMs` up to `maxMs`. */
  recreateBackoff?: { initialMs: number; maxMs: number };
}

/** One family's half of the network: its device and the numbers it is configured from. */
export interface VxlanFamilyInit<N extends IPv4Net | IPv6Net> {
  network: N;
  subnetLen: number;
  device: LinkInfo;
  spec: VxlanSpec;
}

export interface VxlanNetworkInit {
  nl: Netlink;
  subnetManager: SubnetManager;
  lease: Lease;
  options: VxlanOptions;
  extIface: ExternalInterface;
  /** flannel.<VNI>; present unless the network is IPv6-only (the lease then has `subnet`). */
  v4?: VxlanFamilyInit<IPv4Net>;
  /** flannel-v6.<VNI>; present in dual-stack and IPv6-only mode (the lease then has `ipv6Subnet`). */
  v6?: VxlanFamilyInit<IPv6Net>;
  tuning?: VxlanTuning;
}

/** One family's device, peers and how a lease maps onto it. */
interface Stack {
  family: 4 | 6;
  spec: VxlanSpec;
  device: LinkInfo;
  network: IPv4Net | IPv6Net;
  subnetLen: number;
  /** Every current peer lease of this family and how it is (meant to be) programmed, by the lease's v4 subnet. */
  peers: Map<string, PeerPlan>;
  programmer: PeerProgrammer;
  /** null: the lease has nothing for this family (a v4-only peer seen by the v6 stack). */
  plan(lease: Lease, direct: boolean): PlanResult | null;
  publicIP(lease: Lease): string | null;
  configure(): Promise<void>;
}

export class VxlanNetwork implements Network {
  readonly lease: Lease;
  readonly mtu: number;
  private readonly stacks: Stack[] = [];
  /** Lease handling and the other kernel work here touch the same entries: one at a time. */
  private readonly serial = new Serial();
  private readonly repair: PeerRepair;
  /** Per peer lease, by its name: how its entries came out; set once the stacks are known. */
  private readonly status: VxlanPeerStatus;

  constructor(private readonly init: VxlanNetworkInit) {
    this.lease = init.lease;
    this.repair = new PeerRepair({
      nl: init.nl,
      serial: this.serial,
      targets: this.stacks,
      tuning: init.tuning,
      settled: (family, key, plan, refusal) => {
        this.status.record(family, key, outcomeOf(plan, refusal));
        this.status.publish(key);
      },
    });
    const retry = init.tuning?.retry ?? DEFAULT_RETRY;
    const own4 = init.lease.subnet;
    if (init.v4 && own4) {
      const v4 = init.v4;
      const s4: Stack = {
        family: 4,
        spec: v4.spec,
        device: v4.device,
        network: v4.network,
        subnetLen: v4.subnetLen,
        peers: new Map(),
        programmer: new PeerProgrammer(init.nl, () => s4.device.index, retry),
        plan: (l, direct) => planPeer(l, direct),
        publicIP: (l) => l.attrs.publicIP,
        configure: () => configureDevice(init.nl, s4.device.index, own4, v4.network),
      };
      this.stacks.push(s4);
    }
    const v6 = init.v6;
    const own6 = init.lease.ipv6Subnet;
    if (v6 && own6) {
      const s6: Stack = {
        family: 6,
        spec: v6.spec,
        device: v6.device,
        network: v6.network,
        subnetLen: v6.subnetLen,
        peers: new Map(),
        programmer: new PeerProgrammer(init.nl, () => s6.device.index, retry),
        plan: (l, direct) => planPeerV6(l, direct),
        publicIP: (l) => l.attrs.publicIPv6,
        configure: () => configureDeviceV6(init.nl, s6.device.index, own6),
      };
      this.stacks.push(s6);
    }
    if (this.stacks.length === 0)
      throw new Error(`the lease ${leaseName(init.lease)} has no subnet of a family this vxlan network runs`);
    this.status = new VxlanPeerStatus(this.stacks.map((s) => s.family));
    // subnet.env's MTU: flannel.<VNI>'s, or flannel-v6.<VNI>'s on an IPv6-only network.
    this.mtu = this.stacks[0]!.spec.mtu!;
  }

  /** flannel.<VNI> as last configured (its index changes when it is recreated); undefined on IPv6-only networks. */
  get deviceIndex(): number | undefined {
    return this.stacks.find((s) => s.family === 4)?.device.index;
  }

  /** flannel-v6.<VNI>'s index in dual-stack and IPv6-only mode. */
  get deviceIndexV6(): number | undefined {
    return this.stacks.find((s) => s.family === 6)?.device.index;
  }

  /** Peer entries restored after someone removed them, by kind (the same counters for both families). */
  repairs(): RepairCounts {
    return this.repair.repairs();
  }

  /**
   * Every current vxlan peer, sorted by subnet (flanneld's `GET /peers`): listed once by its first family's subnet
   * and public IP (IPv4, or IPv6 for an IPv6-only peer or network), programmed when every family's route, neighbour
   * and FDB entry (or direct route) is in the kernel, failed with why not.
   */
  peers(): PeerStatus[] {
    return this.status.list();
  }

  /** Lease-level log lines come once per lease, from the first family's stack. */
  private isFirst(st: Stack): boolean {
    return st === this.stacks[0];
  }

  async run(signal: AbortSignal): Promise<void> {
    await runLeaseLoop(
      {
        subnetManager: this.init.subnetManager,
        own: this.lease,
        serial: this.serial,
        log,
        handler: {
          added: async (l, s) => {
            for (const st of this.stacks) await this.added(st, l, s);
            // Once every family had its go: not programmed while the second one is still being tried.
            this.status.publish(leaseName(l));
          },
          removed: async (l) => {
            for (const st of this.stacks) await this.removed(st, l);
            this.status.publish(leaseName(l));
          },
          readForSweep: () => Promise.all(this.stacks.map((st) => this.findStale(st))),
          sweep: async (stale) => {
            for (const [i, st] of this.stacks.entries()) await this.sweep(st, stale[i]!);
          },
        },
        alongside: async (s) => {
          await Promise.all([this.watchDevices(s), this.repair.run(s)]);
        },
      },
      signal,
    );
  }

  /** DirectRouting applies when the kernel reaches the peer's PublicIP (of this family) with no gateway. */
  private async isDirect(st: Stack, lease: Lease): Promise<boolean> {
    const ip = st.publicIP(lease);
    if (!this.init.options.directRouting || lease.attrs.backendType !== 'vxlan' || !ip) return false;
    try {
      const r = await this.init.nl.routeGet(ip);
      return r.gateway === undefined && r.type === 'unicast';
    } catch (e) {
      log.warn(`route lookup for ${ip} failed, using the vxlan device: ${errorMessage(e)}`);
      return false;
    }
  }

  private async added(st: Stack, lease: Lease, signal: AbortSignal): Promise<void> {
    const key = leaseName(lease);
    const old = st.peers.get(key);
    const res = st.plan(lease, await this.isDirect(st, lease));
    if (!res?.ok) {
      if (res && lease.attrs.backendType !== 'vxlan') {
        if (this.isFirst(st)) log.info(res.reason);
      } else if (res) log.error(res.reason);
      // A subnet that stopped being a usable vxlan peer loses what we had programmed for it.
      if (old) {
        await st.programmer.remove(old);
        st.peers.delete(key);
      }
      // A vxlan lease we cannot use is a failed peer; another backend's lease (or one without this family) is none.
      const subnet = st.family === 4 ? lease.subnet : lease.ipv6Subnet;
      const unusable = res && subnet && lease.attrs.backendType === 'vxlan';
      this.status.record(
        st.family,
        key,
        unusable ? { subnet: subnet.toString(), publicIP: st.publicIP(lease) ?? '', refusal: res.reason } : undefined,
      );
      return;
    }
    st.peers.set(key, res.plan);
    const refusal = await st.programmer.add(res.plan, signal);
    this.status.record(st.family, key, outcomeOf(res.plan, refusal));
    // A changed VtepMAC or a switch to/from direct routing leaves entries the new plan does not overwrite.
    if (old) {
      const inUse = new Set([...st.peers.values()].flatMap((p) => (p.mode === 'overlay' ? [p.vtepMac] : [])));
      for (const e of obsoleteEntries(old, res.plan)) {
        if (e.kind === 'fdb' && inUse.has(e.mac)) continue;
        await st.programmer.delete(e);
      }
    }
  }

  private async removed(st: Stack, lease: Lease): Promise<void> {
    const key = leaseName(lease);
    const known = st.peers.get(key);
    st.peers.delete(key);
    this.status.record(st.family, key, undefined);
    if (!known && lease.attrs.backendType !== 'vxlan') {
      if (this.isFirst(st)) log.info(otherBackendReason(lease, 'vxlan'));
      return;
    }
    if (this.isFirst(st)) log.info(`Subnet removed: ${[lease.subnet, lease.ipv6Subnet].filter(Boolean).join(' ')}`);
    // Undo what we programmed; for a lease we never saw, decide like real flannel from the removed attrs.
    const plan =
      known ??
      (() => {
        const r = st.plan(lease, false);
        return r?.ok ? r.plan : undefined;
      })();
    if (plan) await st.programmer.remove(plan);
    const subnet = st.family === 4 ? lease.subnet : lease.ipv6Subnet;
    const publicIP = st.publicIP(lease);
    if (!known && this.init.options.directRouting && subnet && publicIP) {
      await st.programmer.remove({ mode: 'direct', subnet, publicIP });
    }
  }

  /**
   * After the first (complete) batch: the flannel-made entries that belong to no current lease (#2554), from the
   * family's main-table routes and the device's neighbours and FDB entries. Runs outside the serial, computation
   * included: peers change only in its turns, and Serial.readThenRun redoes it in the turn when one ran meanwhile.
   */
  private async findStale(st: Stack): Promise<Stale> {
    const nl = this.init.nl;
    const vx = st.device.index;
    const routes = await nl.routes(st.family, { table: RT_TABLE_MAIN });
    const neighbours = await nl.neighbours(vx, st.family);
    const fdb = await nl.fdb(vx);
    return staleEntries({
      network: st.network,
      subnetLen: st.subnetLen,
      vxlanIndex: vx,
      extIndex: this.init.extIface.index,
      directRouting: this.init.options.directRouting,
      peers: [...st.peers.values()],
      routes,
      neighbours,
      fdb,
    });
  }

  /** Removes what findStale found. */
  private async sweep(st: Stack, stale: Stale): Promise<void> {
    const vx = st.device.index;
    for (const r of stale.routes) {
      log.info(`removing stale route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} (no lease for it)`);
      await st.programmer
        .delete({ kind: 'route', dst: r.dst!, gateway: r.gateway ?? '', onVxlan: r.oif === vx })
        .catch(() => undefined);
    }
    for (const n of stale.neighbours) {
      const e = { kind: 'neighbour' as const, ip: n.ip, mac: n.mac ?? '' };
      log.info(`removing stale ${describe(e)} (no lease for it)`);
      await st.programmer.delete(e);
    }
    for (const f of stale.fdb) {
      const e = { kind: 'fdb' as const, mac: f.mac, dst: f.dst! };
      log.info(`removing stale ${describe(e)} (no lease for it)`);
      await st.programmer.delete(e);
    }
  }

  /** Recreates a device when someone deletes it (v0.27.4+ behaviour). */
  private async watchDevices(signal: AbortSignal): Promise<void> {
    const names = this.stacks.map((s) => s.spec.name).join(', ');
    try {
      for await (const ev of this.init.nl.watchLinks(signal)) {
        for (const st of this.stacks) {
          const gone =
            ev.type === 'del'
              ? ev.link.index === st.device.index
              : ev.type === 'overrun' && !(await this.init.nl.linkByName(st.spec.name));
          if (gone) await this.recreate(st, signal);
        }
      }
    } catch (e) {
      if (!signal.aborted) log.error(`link watch for ${names} ended: ${errorMessage(e)}`);
    }
  }

  private async recreate(st: Stack, signal: AbortSignal): Promise<void> {
    const { nl } = this.init;
    const spec = st.spec;
    const backoff = this.init.tuning?.recreateBackoff ?? { initialMs: 1000, maxMs: 30_000 };
    log.warn(`${spec.name} was deleted; recreating it`);
    // Its peers' entries went with it until the recreation puts them back.
    for (const [key, plan] of st.peers) {
      this.status.record(st.family, key, outcomeOf(plan, `${spec.name} was deleted; recreating it`));
      this.status.publish(key);
    }
    let delay = backoff.initialMs;
    while (!signal.aborted) {
      try {
        await this.serial.run(async () => {
          st.device = await ensureVxlanDevice(nl, { ...spec, mac: st.device.mac ?? spec.mac });
          await st.configure();
          for (const [key, plan] of st.peers) {
            const refusal = await st.programmer.add(plan, signal);
            this.status.record(st.family, key, outcomeOf(plan, refusal));
            this.status.publish(key);
          }
        });
        log.info(`recreated ${spec.name} (index ${st.device.index}) with ${st.peers.size} peers`);
        return;
      } catch (e) {
        log.error(`failed to recreate ${spec.name}: ${errorMessage(e)}; retrying in ${delay} ms`);
        await sleep(delay, signal);
        delay = Math.min(delay * 2, backoff.maxMs);
      }
    }
  }
}
