// Puts back what someone removed of a live peer's kernel state (a route, neighbour or FDB entry deleted by hand) and
// counts it: checked every 10 s, and soon after the kernel reports a deletion on a flannel device. Entries that
// belong to no peer are never touched. Each check tells the network how every peer came out (its `GET /peers`).
import { errorMessage, logger } from '../../log/log.ts';
import {
  RT_TABLE_MAIN,
  isNetlinkCode,
  type EntryWatchEvent,
  type LinkInfo,
  type Netlink,
} from '../../netlink/index.ts';
import type { Serial } from '../../util/tasks.ts';
import type { RepairCounts } from '../backend.ts';
import { Checker } from '../lease-loop.ts';
import { describe, refusal, type PeerProgrammer } from './peers.ts';
import { entryKey, indexKernel, missingIn, type Entry, type KernelIndex, type PeerPlan } from './plan.ts';

const log = logger('vxlan');

/** Like host-gw's route checker: every peer's entries are re-checked every 10 s. */
export const REPAIR_CHECK_INTERVAL_MS = 10_000;

export interface RepairTuning {
  /** Period of the repair check (tests shorten it); default REPAIR_CHECK_INTERVAL_MS. */
  checkIntervalMs?: number;
  /** A deletion on a device is checked this much later (default 100 ms), so a burst of events costs one check … */
  eventCheckDelayMs?: number;
  /** … and no sooner than this after the previous check (default 500 ms), so fighting another writer cannot spin. */
  eventCheckGapMs?: number;
}

/** What a check needs of one family's stack (network.ts): its device as last configured and its peers. */
export interface RepairTarget {
  family: 4 | 6;
  spec: { name: string };
  device: { index: number };
  peers: ReadonlyMap<string, PeerPlan>;
  programmer: PeerProgrammer;
}

export interface PeerRepairInit {
  nl: Netlink;
  /** The network's lease and device work: a check runs inside it, never beside it. */
  serial: Serial;
  /** The network's stacks, read at every check (devices get new indexes when recreated). */
  targets: readonly RepairTarget[];
  /** How a check left each peer it looked at: null when all its entries are in the kernel, else why one is not. */
  settled(family: 4 | 6, key: string, plan: PeerPlan, refusal: string | null): void;
  tuning?: RepairTuning;
}

const COUNTER: Record<Entry['kind'], keyof RepairCounts> = { route: 'route', neighbour: 'neigh', fdb: 'fdb' };

/** One family's kernel entries as read for a check (vx: the device index they were read for). */
type Reading = { vx: number; kernel: KernelIndex | null } | { vx: number; error: string };

export class PeerRepair {
  private readonly counts: RepairCounts = { route: 0, neigh: 0, fdb: 0 };
  /** Per family: the entries whose restore failed at the last check, with why (a failure is logged once per reason). */
  private readonly failures = new Map<4 | 6, Map<string, string>>();
  /** Per family: why the last check could not list the kernel's entries. */
  private readonly listFailures = new Map<4 | 6, string>();
  private readonly checker: Checker<Reading[]>;

  constructor(private readonly init: PeerRepairInit) {
    const t = init.tuning ?? {};
    this.checker = new Checker({
      what: 'vxlan repair check',
      periodMs: t.checkIntervalMs ?? REPAIR_CHECK_INTERVAL_MS,
      pokeDelayMs: t.eventCheckDelayMs ?? 100,
      minGapMs: t.eventCheckGapMs ?? 500,
      serial: init.serial,
      log,
      read: () => this.readAll(),
      check: (readings) => this.checkAll(readings),
    });
  }

  /** A copy of the counters. */
  repairs(): RepairCounts {
    return { ...this.counts };
  }

  /** The periodic check and the event watch that triggers early checks, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.all([this.checker.run(signal), this.watch(signal)]);
  }

  private async watch(signal: AbortSignal): Promise<void> {
    try {
      for await (const ev of this.init.nl.watchEntries(signal, { deletionsOnly: true })) {
        if (mayHaveRemoved(ev, this.init.targets)) this.checker.poke();
      }
    } catch (e) {
      if (!signal.aborted)
        log.error(`route/neighbour/FDB watch ended: ${errorMessage(e)}; repairs wait for the periodic check`);
    }
  }

  /** Each family's kernel entries, or why they could not be listed; null for a device that is gone or replaced. */
  private async readAll(): Promise<Reading[]> {
    const { nl } = this.init;
    let links: Promise<LinkInfo[]> | undefined;
    return Promise.all(
      this.init.targets.map(async (t): Promise<Reading> => {
        const vx = t.device.index;
        try {
          // Gone (or replaced under its name): the device watch recreates it and re-adds every peer.
          links ??= nl.links();
          if ((await links).find((l) => l.index === vx)?.name !== t.spec.name) return { vx, kernel: null };
          const kernel = {
            routes: await nl.routes(t.family, { table: RT_TABLE_MAIN }),
            neighbours: await nl.neighbours(vx, t.family),
            fdb: await nl.fdb(vx),
          };
          // Indexed here, outside the serial: the kernel's 15,000 entries at 5,000 peers take a while.
          return { vx, kernel: indexKernel(kernel, vx) };
        } catch (e) {
          return { vx, error: errorMessage(e) };
        }
      }),
    );
  }

  /** Every family in turn; one whose kernel state cannot be listed waits for the next check (logged once per reason). */
  private async checkAll(readings: Reading[]): Promise<void> {
    for (const [i, t] of this.init.targets.entries()) {
      const r = readings[i]!;
      try {
        if ('error' in r) throw new Error(r.error);
        // Read for a device that has been recreated since: the device watch re-adds every peer.
        if (r.kernel && r.vx === t.device.index) await this.check(t, r.kernel);
        this.listFailures.delete(t.family);
      } catch (e) {
        const reason = errorMessage(e);
        if (this.listFailures.get(t.family) !== reason)
          log.error(`repair check of ${t.spec.name} failed: ${reason}; retrying at the next check`);
        this.listFailures.set(t.family, reason);
      }
    }
  }

  /**
   * Restores every missing entry of every peer on the target's device, one attempt each, in the order they are added;
   * a peer's later entries wait for an earlier one that fails (a route is no use without its ARP and FDB entry).
   */
  private async check(t: RepairTarget, index: KernelIndex): Promise<void> {
    const before = this.failures.get(t.family) ?? new Map<string, string>();
    const failing = new Map<string, string>();
    try {
      for (const [peer, plan] of t.peers) {
        let refused: string | null = null;
        for (const e of missingIn(plan, index)) {
          const key = `${plan.subnet} ${entryKey(e)}`;
          try {
            await t.programmer.apply(e);
          } catch (err) {
            // The device went away meanwhile: its recreation re-adds everything.
            if (isNetlinkCode(err, 'ENODEV')) return;
            const reason = errorMessage(err);
            if (before.get(key) !== reason)
              log.error(
                `failed to restore missing ${describe(e)} for peer ${plan.subnet}: ${reason}; retrying at the next check`,
              );
            failing.set(key, reason);
            refused = refusal(e, err);
            break;
          }
          this.counts[COUNTER[e.kind]]++;
          log.info(`restored missing ${describe(e)} for peer ${plan.subnet}`);
        }
        this.init.settled(t.family, peer, plan, refused);
      }
    } finally {
      this.failures.set(t.family, failing);
    }
  }
}

/**
 * Whether a kernel event may have taken an entry of ours: a deletion on one of the flannel devices, a deleted route to
 * a peer's subnet (DirectRouting puts those on the external device), or lost events. Additions never call for a check
 * (most are our own writes); the periodic check finds entries that were changed rather than deleted.
 */
export function mayHaveRemoved(ev: EntryWatchEvent, targets: readonly RepairTarget[]): boolean {
  if (ev.type === 'overrun') return true;
  if (ev.type !== 'del') return false;
  const onDevice = (index: number | undefined) => targets.some((t) => t.device.index === index);
  switch (ev.kind) {
    case 'neighbour':
      return onDevice(ev.neighbour.index);
    case 'fdb':
      return onDevice(ev.fdb.index);
    case 'route': {
      const dst = ev.route.dst;
      return (
        onDevice(ev.route.oif) || targets.some((t) => [...t.peers.values()].some((p) => p.subnet.toString() === dst))
      );
    }
  }
}
