// The loop every kernel-programming backend runs: lease batches in, one at a time with its other kernel work,
// and a sweep of stale entries once the first batch (the complete current set) has been applied.
import { errorMessage, type Logger } from '../log/log.ts';
import { leaseName, type Lease, type LeaseEvent, type SubnetManager } from '../subnet/lease.ts';
import type { Serial } from '../util/serial.ts';

export interface LeaseHandler {
  added(lease: Lease, signal: AbortSignal): Promise<void>;
  removed(lease: Lease): Promise<void>;
  /** Runs once, after the first batch. */
  sweep(): Promise<void>;
}


export interface LeaseLoop {
  subnetManager: SubnetManager;
  own: Lease;
  handler: LeaseHandler;
  serial: Serial;
  log: Logger;
  /** Work that lives as long as the loop (a device watch, a route checker); stopped when the loop ends. */
  alongside?: (signal: AbortSignal) => Promise<void>;
}

export async function runLeaseLoop(l: LeaseLoop, signal: AbortSignal): Promise<void> {
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
        await l.serial.run(() => l.handler.sweep());
      }
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    stop.abort();
    await alongside;
  }
}

async function handleBatch(l: LeaseLoop, batch: LeaseEvent[], signal: AbortSignal): Promise<void> {
  for (const ev of batch) {
    if (signal.aborted) return;
    try {
      if (ev.type === 'added') await l.handler.added(ev.lease, signal);
      else await l.handler.removed(ev.lease);
    } catch (e) {
      l.log.error(`error handling ${ev.type} lease ${leaseName(ev.lease)}: ${errorMessage(e)}`);
    }
  }
}
