// List, then watch from the listing's revision + 1; on any watcher error or disconnect (compaction included)
// list again and watch from the new revision.
// Never throws: etcd outages are retried with backoff 100 ms → 5 s until the signal aborts.
import type { EtcdWatch, WatchHandlers } from './client.ts';
import type { WatchEvent } from './proto.ts';
import { errorMessage, logger } from '../../log/log.ts';
import { ThrottledLog } from './throttle.ts';
import { sleep } from '../../util/time.ts';
import type { SubnetWatchObserver } from '../lease.ts';

const log = logger('etcd');

export type WatchChange = WatchEvent;

export type ListWatchItem<S> = { type: 'snapshot'; snapshot: S } | { type: 'changes'; changes: WatchChange[] };

export interface ListWatchOptions<S> {
  /** Reads the current state and the store revision it was read at. */
  list(): Promise<{ revision: string; snapshot: S }>;
  /** Starts a watch of the same keys from `startRevision` (EtcdClient.watch). */
  watch(startRevision: string, handlers: WatchHandlers): EtcdWatch;
  signal: AbortSignal;
  /** For log lines, e.g. "subnet leases". */
  what: string;
  throttle?: ThrottledLog;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Told of failed lists and watches, and of each listing after the first (flanneld's /metrics). */
  observer?: SubnetWatchObserver;
}

export class ListWatch<S> implements AsyncIterable<ListWatchItem<S>> {
  private resyncRequested = false;
  private wake: () => void = () => {};

  constructor(private readonly opts: ListWatchOptions<S>) {}

  /** Makes the stream list again (e.g. after a change could not be processed). */
  resync(): void {
    this.resyncRequested = true;
    this.wake();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ListWatchItem<S>> {
    const { signal, what } = this.opts;
    const throttle = this.opts.throttle ?? new ThrottledLog(log);
    const initial = this.opts.initialBackoffMs ?? 100;
    const max = this.opts.maxBackoffMs ?? 5000;
    let backoff = initial;
    let listings = 0;
    const fail = async (op: 'list' | 'watch', msg: string) => {
      this.opts.observer?.failed(op);
      throttle.error(`watch ${what}`, msg);
      await sleep(backoff, signal);
      backoff = Math.min(max, backoff * 2);
    };

    while (!signal.aborted) {
      this.resyncRequested = false;
      let listed: { revision: string; snapshot: S };
      try {
        listed = await this.opts.list();
      } catch (e) {
        await fail('list', `failed to list ${what}: ${errorMessage(e)}; retrying`);
        continue;
      }
      if (listings++ > 0) this.opts.observer?.relisted();
      if (signal.aborted) return;

      const queue: WatchChange[] = [];
      let failure: string | undefined;
      const wakeUp = new Set<() => void>();
      this.wake = () => wakeUp.forEach((f) => f());
      const onAbort = () => this.wake();
      signal.addEventListener('abort', onAbort);
      const start = (BigInt(listed.revision) + 1n).toString();
      // Never resumed in place: a fresh listing after any failure cannot miss anything.
      const watch = this.opts.watch(start, {
        connected: () => {
          backoff = initial;
          throttle.clear(`watch ${what}`);
        },
        events: (events) => {
          for (const ev of events) queue.push(ev);
          this.wake();
        },
        failed: (f) => {
          failure ??=
            f.kind === 'disconnected'
              ? `watch of ${what} disconnected (${f.reason}); listing again`
              : `watch of ${what} failed (${f.reason}); listing again`;
          this.wake();
        },
      });
      try {
        // The watch is already running while the consumer handles the snapshot (5,000 peers take a second): changes
        // meanwhile wait in the queue, and etcd catches the watch up from the listing's revision in that time.
        yield { type: 'snapshot', snapshot: listed.snapshot };
        while (!signal.aborted && failure === undefined && !this.resyncRequested) {
          if (queue.length > 0) {
            yield { type: 'changes', changes: queue.splice(0) };
            continue;
          }
          await new Promise<void>((resolve) => {
            wakeUp.clear();
            wakeUp.add(resolve);
          });
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
        this.wake = () => {};
        watch.cancel();
      }
      if (failure !== undefined) await fail('watch', failure);
    }
  }
}
