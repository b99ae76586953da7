// The running vxlan network: turns lease events into kernel entries, sweeps stale ones, recreates a deleted device.
import { setTimeout as sleep } from 'node:timers/promises';
import type { IPv4Net } from '../../ip/ipv4.ts';
import { errorMessage, logger } from '../../log/log.ts';
import type { LinkInfo, Netlink, VxlanSpec } from '../../netlink/index.ts';
import type { Lease, SubnetManager } from '../../subnet/lease.ts';
import type { ExternalInterface, Network } from '../backend.ts';
import { configureDevice, ensureVxlanDevice } from './device.ts';
import type { VxlanOptions } from './options.ts';
import { DEFAULT_RETRY, PeerProgrammer, describe, type RetryPolicy } from './peers.ts';
import { obsoleteEntries, planPeer, staleEntries, type PeerPlan } from './plan.ts';
import { Serial } from '../../util/serial.ts';
import { runLeaseLoop } from '../lease-loop.ts';

const log = logger('vxlan');

export interface VxlanTuning {
  retry?: RetryPolicy;
  /** Waits between attempts to recreate a deleted device: doubling from `initialMs` up to `maxMs`. */
  recreateBackoff?: { initialMs: number; maxMs: number };
}

export interface VxlanNetworkInit {
  nl: Netlink;
  subnetManager: SubnetManager;
  lease: Lease;
  options: VxlanOptions;
  extIface: ExternalInterface;
  network: IPv4Net;
  subnetLen: number;
  device: LinkInfo;
  spec: VxlanSpec;
  tuning?: VxlanTuning;
}

export class VxlanNetwork implements Network {
  readonly lease: Lease;
  readonly mtu: number;
  private device: LinkInfo;
  /** Every current vxlan peer lease and how it is (meant to be) programmed, by subnet. */
  private readonly peers = new Map<string, PeerPlan>();
  private readonly programmer: PeerProgrammer;
  /** Lease handling and the other kernel work here touch the same entries: one at a time. */
  private readonly serial = new Serial();

  constructor(private readonly init: VxlanNetworkInit) {
    this.lease = init.lease;
    this.mtu = init.options.mtu - 50;
    this.device = init.device;
    this.programmer = new PeerProgrammer(init.nl, () => this.device.index, init.tuning?.retry ?? DEFAULT_RETRY);
  }

  /** The vxlan device as last configured (its index changes when it is recreated). */
  get deviceIndex(): number {
    return this.device.index;
  }

  async run(signal: AbortSignal): Promise<void> {
    await runLeaseLoop(
      {
        subnetManager: this.init.subnetManager,
        own: this.lease,
        serial: this.serial,
        log,
        handler: { added: (l, s) => this.added(l, s), removed: (l) => this.removed(l), sweep: () => this.sweep() },
        alongside: (s) => this.watchDevice(s),
      },
      signal,
    );
  }

  /** DirectRouting applies when the kernel reaches the peer's PublicIP with no gateway. */
  private async isDirect(lease: Lease): Promise<boolean> {
    if (!this.init.options.directRouting || lease.attrs.backendType !== 'vxlan') return false;
    try {
      const r = await this.init.nl.routeGet(lease.attrs.publicIP);
      return r.gateway === undefined && r.type === 'unicast';
    } catch (e) {
      log.warn(`route lookup for ${lease.attrs.publicIP} failed, using the vxlan device: ${errorMessage(e)}`);
      return false;
    }
  }

  private async added(lease: Lease, signal: AbortSignal): Promise<void> {
    const key = lease.subnet.toString();
    const old = this.peers.get(key);
    const res = planPeer(lease, await this.isDirect(lease));
    if (!res.ok) {
      if (lease.attrs.backendType !== 'vxlan') log.info(res.reason);
      else log.error(res.reason);
      // A subnet that stopped being a usable vxlan peer loses what we had programmed for it.
      if (old) {
        await this.programmer.remove(old);
        this.peers.delete(key);
      }
      return;
    }
    this.peers.set(key, res.plan);
    await this.programmer.add(res.plan, signal);
    // A changed VtepMAC or a switch to/from direct routing leaves entries the new plan does not overwrite.
    if (old) {
      const inUse = new Set([...this.peers.values()].flatMap((p) => (p.mode === 'overlay' ? [p.vtepMac] : [])));
      for (const e of obsoleteEntries(old, res.plan)) {
        if (e.kind === 'fdb' && inUse.has(e.mac)) continue;
        await this.programmer.delete(e);
      }
    }
  }

  private async removed(lease: Lease): Promise<void> {
    const key = lease.subnet.toString();
    const known = this.peers.get(key);
    this.peers.delete(key);
    if (!known && lease.attrs.backendType !== 'vxlan') {
      log.info(`ignoring non-vxlan v4Subnet(${lease.subnet}) v6Subnet(<nil>): type=${lease.attrs.backendType}`);
      return;
    }
    log.info(`Subnet removed: ${lease.subnet}`);
    // Undo what we programmed; for a lease we never saw, decide like real flannel from the removed attrs.
    const plan = known ?? (() => {
      const r = planPeer(lease, false);
      return r.ok ? r.plan : undefined;
    })();
    if (plan) await this.programmer.remove(plan);
    if (!known && this.init.options.directRouting) {
      await this.programmer.remove({ mode: 'direct', subnet: lease.subnet, publicIP: lease.attrs.publicIP });
    }
  }

  /** After the first (complete) batch: remove flannel-made entries that belong to no current lease (#2554). */
  private async sweep(): Promise<void> {
    const nl = this.init.nl;
    const vx = this.device.index;
    const [routes, neighbours, fdb] = [await nl.routes(4, { table: 254 }), await nl.neighbours(vx), await nl.fdb(vx)];
    const stale = staleEntries({
      network: this.init.network,
      subnetLen: this.init.subnetLen,
      vxlanIndex: vx,
      extIndex: this.init.extIface.index,
      directRouting: this.init.options.directRouting,
      peers: [...this.peers.values()],
      routes,
      neighbours,
      fdb,
    });
    for (const r of stale.routes) {
      log.info(`removing stale route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} (no lease for it)`);
      await this.programmer.delete({ kind: 'route', dst: r.dst!, gateway: r.gateway ?? '', onVxlan: r.oif === vx }).catch(() => undefined);
    }
    for (const n of stale.neighbours) {
      const e = { kind: 'neighbour' as const, ip: n.ip, mac: n.mac ?? '' };
      log.info(`removing stale ${describe(e)} (no lease for it)`);
      await this.programmer.delete(e);
    }
    for (const f of stale.fdb) {
      const e = { kind: 'fdb' as const, mac: f.mac, dst: f.dst! };
      log.info(`removing stale ${describe(e)} (no lease for it)`);
      await this.programmer.delete(e);
    }
  }

  /** Recreates the device when someone deletes it (v0.27.4+ behaviour). */
  private async watchDevice(signal: AbortSignal): Promise<void> {
    const name = this.init.spec.name;
    try {
      for await (const ev of this.init.nl.watchLinks(signal)) {
        const gone =
          ev.type === 'del' ? ev.link.index === this.device.index : ev.type === 'overrun' && !(await this.init.nl.linkByName(name));
        if (gone) await this.recreate(signal);
      }
    } catch (e) {
      if (!signal.aborted) log.error(`link watch for ${name} ended: ${errorMessage(e)}`);
    }
  }

  private async recreate(signal: AbortSignal): Promise<void> {
    const { nl, spec, network, lease } = this.init;
    const backoff = this.init.tuning?.recreateBackoff ?? { initialMs: 1000, maxMs: 30_000 };
    log.warn(`${spec.name} was deleted; recreating it`);
    let delay = backoff.initialMs;
    while (!signal.aborted) {
      try {
        await this.serial.run(async () => {
          this.device = await ensureVxlanDevice(nl, { ...spec, mac: this.device.mac ?? spec.mac });
          await configureDevice(nl, this.device.index, lease.subnet, network);
          for (const plan of this.peers.values()) await this.programmer.add(plan, signal);
        });
        log.info(`recreated ${spec.name} (index ${this.device.index}) with ${this.peers.size} peers`);
        return;
      } catch (e) {
        log.error(`failed to recreate ${spec.name}: ${errorMessage(e)}; retrying in ${delay} ms`);
        await sleep(delay, undefined, { signal }).catch(() => undefined);
        delay = Math.min(delay * 2, backoff.maxMs);
      }
    }
  }
}
