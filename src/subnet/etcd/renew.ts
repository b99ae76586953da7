// Keeps the own lease alive (docs/COMPATIBILITY.md, "etcd leases and renewal"): renew before it runs out, notice when
// someone deletes it, and heal the key when someone else overwrote it (garbage, a plain put that detached it from its
// etcd lease, another node's lease).
import { errorMessage, logger } from '../../log/log.ts';
import type { Lease, SubnetWatchObserver } from '../lease.ts';
import { sleep } from '../../util/time.ts';
import { Serial } from '../../util/tasks.ts';
import { ListWatch } from './list-watch.ts';
import { classifyOwnKey, duplicatePublicIPMessage, type HeldLease, type OwnKeyState } from './ownership.ts';
import { keyStateOf, type EtcdRegistry, type KeyMeta } from './registry.ts';
import type { ThrottledLog } from './throttle.ts';

const log = logger('etcd');

/** Foreign rewrites of the own key healed within FIGHT_WINDOW_MS before the node gives up and stops. */
const MAX_FOREIGN_REWRITES = 3;
const FIGHT_WINDOW_MS = 60_000;

export interface MonitorOptions {
  registry: EtcdRegistry;
  lease: Lease;
  /** What this node last wrote; kept current across renewals and repairs. */
  held: HeldLease;
  signal: AbortSignal;
  /** Renew this long before expiration. */
  renewMarginMs: number;
  /** After a failed renewal, try again this much later. */
  retryMs: number;
  throttle?: ThrottledLog;
  /** Told of each new expiration of the own lease (a renewal, a rewrite, one learned from etcd). */
  onExpiration?: (expiration: Date | null) => void;
  watchObserver?: SubnetWatchObserver;
}

/** 'conflict': another writer keeps rewriting the key (logged); the daemon stops rather than fight it. */
export type MonitorOutcome = 'revoked' | 'aborted' | 'conflict';

/**
 * Resolves 'revoked' when the own key disappears, 'conflict' when another writer keeps taking it, 'aborted' when
 * `signal` aborts. Never rejects.
 */
export async function monitorOwnLease(o: MonitorOptions): Promise<MonitorOutcome> {
  const { registry, lease, held } = o;
  const key = registry.subnetKey(lease);
  const reservation = lease.expiration === null;
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  o.signal.addEventListener('abort', onAbort);
  let outcome: MonitorOutcome = 'aborted';
  let expiration = lease.expiration;
  // Writes and the watch's reading of them take turns, so our own write is never mistaken for another writer's.
  const turns = new Serial();
  const foreignRewrites: number[] = [];
  // The revisions of our own recent writes: a late event of an earlier write of ours is still ours.
  const written = [held.revision];
  // Wakes the renewal loop when the watch learned a new expiration.
  let reschedule = new AbortController();
  const setExpiration = (e: Date | null) => {
    // etcd reports whole seconds left, so re-reading our own renewal looks up to 1 s earlier: not a change.
    if (e && expiration && Math.abs(e.getTime() - expiration.getTime()) < 2000) return;
    if (e === null && expiration === null) return;
    expiration = e;
    o.onExpiration?.(e);
    reschedule.abort();
  };
  const finish = (why: MonitorOutcome) => {
    outcome = why;
    stop.abort();
  };
  const revoked = () => {
    log.info('Lease has been revoked. Shutting down daemon.');
    finish('revoked');
  };

  /** Writes our lease again on a fresh etcd lease, revoking the one we held. */
  const write = async () => {
    const w = await registry.updateLease(lease, held.attrs, reservation, held.leaseId);
    held.leaseId = w.leaseId;
    held.revision = w.revision;
    written.push(w.revision);
    if (written.length > 8) written.shift();
    expiration = w.lease.expiration;
    o.onExpiration?.(expiration);
    return w;
  };

  const renewLoop = async () => {
    while (!stop.signal.aborted) {
      reschedule = new AbortController();
      const wait = AbortSignal.any([stop.signal, reschedule.signal]);
      if (expiration === null) {
        // A reservation never expires; wait until the watch says otherwise.
        await sleep(2 ** 31 - 1, wait);
        continue;
      }
      const due = expiration.getTime() - o.renewMarginMs - Date.now();
      if (due > 0) {
        await sleep(Math.min(due, 2 ** 31 - 1), wait);
        continue;
      }
      try {
        await turns.run(write);
        if (stop.signal.aborted) return;
        log.info(`Lease renewed, new expiration: ${expiration!.toISOString()}`);
      } catch (e) {
        log.error(`Error renewing lease (trying again in ${Math.round(o.retryMs / 1000)}s): ${errorMessage(e)}`);
        await sleep(o.retryMs, wait);
      }
    }
  };

  /** Acts on what the key holds now. */
  const check = async (kv: KeyMeta & { value: string }) => {
    // One of our own writes: write() already knows its expiration.
    if (written.includes(kv.modRevision)) return;
    const state: OwnKeyState = classifyOwnKey(key, kv, held);
    if (state.kind === 'ours') {
      setExpiration(await registry.expirationOf(kv.leaseId));
      return;
    }
    if (state.kind === 'malformed') {
      log.warn(
        `${key}: this node's own lease was overwritten with a value that is no lease (${state.error}); writing it again`,
      );
    } else if (state.kind === 'detached') {
      log.warn(
        `${key}: this node's own lease was detached from its etcd lease (written without one, it would never expire); writing it again`,
      );
    } else {
      const now = Date.now();
      foreignRewrites.push(now);
      while (foreignRewrites[0]! < now - FIGHT_WINDOW_MS) foreignRewrites.shift();
      const conflict = duplicatePublicIPMessage(key, held.attrs, state.attrs);
      if (foreignRewrites.length > MAX_FOREIGN_REWRITES) {
        log.error(
          `${conflict}. It was rewritten ${foreignRewrites.length} times within ${FIGHT_WINDOW_MS / 1000}s: stopping instead of fighting over it`,
        );
        finish('conflict');
        return;
      }
      log.error(`${conflict}. Writing this node's lease back`);
    }
    try {
      await write();
      log.info(`Rewrote own lease ${key}`);
    } catch (e) {
      // The next renewal or watch event tries again.
      log.error(`Error rewriting own lease ${key}: ${errorMessage(e)}`);
    }
  };

  const watchLoop = async () => {
    const stream = new ListWatch<(KeyMeta & { value: string }) | null>({
      list: async () => {
        const { revision, kv } = await registry.client.get(key);
        return { revision, snapshot: kv ? keyStateOf(kv) : null };
      },
      watch: (startRevision, handlers) => registry.client.watch({ key, startRevision }, handlers),
      signal: stop.signal,
      what: `own lease ${key}`,
      throttle: o.throttle,
      observer: o.watchObserver,
    });
    for await (const item of stream) {
      if (item.type === 'snapshot') {
        if (item.snapshot === null) return revoked();
        try {
          await turns.run(() => check(item.snapshot!));
        } catch {
          stream.resync();
        }
        continue;
      }
      for (const ch of item.changes) {
        if (ch.type === 'delete') return revoked();
        try {
          await turns.run(() => check(keyStateOf(ch.kv)));
        } catch {
          stream.resync();
          break;
        }
        if (stop.signal.aborted) return;
      }
    }
  };

  try {
    await Promise.all([renewLoop(), watchLoop().finally(() => stop.abort())]);
  } finally {
    o.signal.removeEventListener('abort', onAbort);
  }
  return outcome;
}
