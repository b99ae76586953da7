// The loop every kernel-programming backend runs: lease batches in, one at a time with its other kernel work,
// and a sweep of stale entries once the first batch (the complete current set) has been applied; and the periodic
// check that puts back what someone removed from the kernel.
import { errorMessage, type Logger } from '../log/log.ts';
import { leaseName, type Lease, type LeaseEvent, type SubnetManager } from '../subnet/lease.ts';
import type { Serial } from '../util/tasks.ts';
import { sleep } from '../util/time.ts';

export interface LeaseHandler<K = unknown> {
  added(lease: Lease, signal: AbortSignal): Promise<void>;
  removed(lease: Lease): Promise<void>;
  /** Reads the kernel entries the sweep looks at; outside the serial, so lease handling does not wait for the dumps. */
  readForSweep(): Promise<K>;
  /** Runs once, after the first batch, in the serial, with a reading of the kernel taken since that batch. */
  sweep(kernel: K): Promise<void>;
}

export interface LeaseLoop<K = unknown> {
  subnetManager: SubnetManager;
  own: Lease;
  handler: LeaseHandler<K>;
  serial: Serial;
  log: Logger;
  /** Work that lives as long as the loop (a device watch, a route checker); stopped when the loop ends. */
  alongside?: (signal: AbortSignal) => Promise<void>;
}

export async function runLeaseLoop<K>(l: LeaseLoop<K>, signal: AbortSignal): Promise<void> {
  // Our own controller, so the work alongside stops when the lease watch ends for any reason.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal.addEventListener('abort', onAbort);
  const alongside = l.alongside?.(stop.signal) ?? Promise.resolve();
  try {
    l.log.info('watching for new subnet leases');
    let first = true;
    for await (const batch of l.subnetManager.watchLeases(l.own, stop.signal)) {
      await l.serial.run(() => handleBatch(l, batch, stop.signal));
      if (first) {
        first = false;
        await l.serial.readThenRun(
          () => l.handler.readForSweep(),
          (kernel) => l.handler.sweep(kernel),
        );
      }
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    stop.abort();
    await alongside;
  }
}

/** Leases programmed at once: their netlink requests overlap instead of each waiting for the last one's answer. */
export const LEASE_CONCURRENCY = 512;

/**
 * Runs of events that name each lease at most once, in batch order: a lease's events stay in order (an add before
 * its removal), while different leases' events may run side by side.
 */
export function distinctRuns(batch: readonly LeaseEvent[]): LeaseEvent[][] {
  const runs: LeaseEvent[][] = [];
  let run: LeaseEvent[] = [];
  let names = new Set<string>();
  for (const ev of batch) {
    const name = leaseName(ev.lease);
    if (names.has(name)) {
      runs.push(run);
      run = [];
      names = new Set();
    }
    names.add(name);
    run.push(ev);
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

async function handleBatch<K>(l: LeaseLoop<K>, batch: LeaseEvent[], signal: AbortSignal): Promise<void> {
  const one = async (ev: LeaseEvent) => {
    if (signal.aborted) return;
    try {
      if (ev.type === 'added') await l.handler.added(ev.lease, signal);
      else await l.handler.removed(ev.lease);
    } catch (e) {
      l.log.error(`error handling ${ev.type} lease ${leaseName(ev.lease)}: ${errorMessage(e)}`);
    }
  };
  for (const run of distinctRuns(batch)) {
    let next = 0;
    const worker = async () => {
      while (next < run.length) await one(run[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(LEASE_CONCURRENCY, run.length) }, worker));
  }
}

export interface CheckerOptions<R> {
  /** Names the check in its error log ('route check'). */
  what: string;
  periodMs: number;
  /** The check runs inside it, so it never overlaps lease handling. */
  serial: Serial;
  log: Logger;
  /** Reads the kernel state the check compares with (the dumps), outside the serial (Serial.readThenRun). */
  read: () => Promise<R>;
  check: (reading: R) => Promise<void>;
  /** After poke(): the check runs this much later (so a burst of events is one check) … */
  pokeDelayMs?: number;
  /** … but no sooner than this after the previous check ended, so a fight with another writer cannot spin. */
  minGapMs?: number;
}

/** Runs a check every `periodMs` (counted from the end of the last one), and soon after each poke(). */
export class Checker<R> {
  private pokedAt: number | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly o: CheckerOptions<R>) {}

  /** Asks for a check soon (an event says the kernel changed). */
  poke(): void {
    this.pokedAt ??= Date.now();
    this.wake?.();
  }

  async run(signal: AbortSignal): Promise<void> {
    const { periodMs, pokeDelayMs = 0, minGapMs = 0 } = this.o;
    let last = Date.now();
    while (!signal.aborted) {
      const periodic = last + periodMs;
      const due =
        this.pokedAt === undefined
          ? periodic
          : Math.min(periodic, Math.max(this.pokedAt + pokeDelayMs, last + minGapMs));
      const now = Date.now();
      if (now < due) {
        await this.nap(due - now, signal);
        continue;
      }
      // A poke from here on asks for another check: this one may have read the kernel before that change.
      this.pokedAt = undefined;
      await this.o.serial
        .readThenRun(this.o.read, this.o.check)
        .catch((e) => this.o.log.error(`${this.o.what} failed: ${errorMessage(e)}`));
      last = Date.now();
    }
  }

  /** Sleeps `ms`, or less when poked or aborted. */
  private async nap(ms: number, signal: AbortSignal): Promise<void> {
    const poked = new AbortController();
    this.wake = () => poked.abort();
    await sleep(ms, AbortSignal.any([signal, poked.signal]));
    this.wake = undefined;
  }
}
