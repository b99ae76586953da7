// Keeps the own lease alive (spec §3.6): renew before it runs out, and notice when someone deletes it.
import { errorMessage, logger } from '../../log/log.ts';
import type { Lease } from '../lease.ts';
import { sleep } from '../../util/sleep.ts';
import { ListWatch } from './list-watch.ts';
import type { EtcdRegistry } from './registry.ts';
import type { ThrottledLog } from './throttle.ts';

const log = logger('etcd');

export interface MonitorOptions {
  registry: EtcdRegistry;
  lease: Lease;
  signal: AbortSignal;
  /** Renew this long before expiration. */
  renewMarginMs: number;
  /** After a failed renewal, try again this much later. */
  retryMs: number;
  throttle?: ThrottledLog;
}

/** Resolves 'revoked' when the own key disappears, 'aborted' when `signal` aborts. Never rejects. */
export async function monitorOwnLease(o: MonitorOptions): Promise<'revoked' | 'aborted'> {
  const { registry, lease } = o;
  const key = registry.subnetKey(lease);
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  o.signal.addEventListener('abort', onAbort);
  let outcome: 'revoked' | 'aborted' = 'aborted';
  let expiration = lease.expiration;
  // Wakes the renewal loop when the watch learned a new expiration.
  let reschedule = new AbortController();
  const setExpiration = (e: Date | null) => {
    // etcd reports whole seconds left, so re-reading our own renewal looks up to 1 s earlier: not a change.
    if (e && expiration && Math.abs(e.getTime() - expiration.getTime()) < 2000) return;
    if (e === null && expiration === null) return;
    expiration = e;
    reschedule.abort();
  };
  const revoked = () => {
    log.info('Lease has been revoked. Shutting down daemon.');
    outcome = 'revoked';
    stop.abort();
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
        const renewed = await registry.updateLease(lease, lease.attrs, false);
        if (stop.signal.aborted) return;
        expiration = renewed.expiration;
        log.info(`Lease renewed, new expiration: ${expiration!.toISOString()}`);
      } catch (e) {
        log.error(`Error renewing lease (trying again in ${Math.round(o.retryMs / 1000)}s): ${errorMessage(e)}`);
        await sleep(o.retryMs, wait);
      }
    }
  };

  const watchLoop = async () => {
    const stream = new ListWatch<{ expiration: Date | null } | null>({
      list: async () => {
        const res = await registry.client.get(key).exec();
        const kv = res.kvs[0];
        const snapshot = kv ? { expiration: await registry.expirationOf(String(kv.lease ?? '0')) } : null;
        return { revision: res.header.revision, snapshot };
      },
      watch: () => registry.client.watch().key(key),
      signal: stop.signal,
      what: `own lease ${key}`,
      throttle: o.throttle,
    });
    for await (const item of stream) {
      if (item.type === 'snapshot') {
        if (item.snapshot === null) return revoked();
        setExpiration(item.snapshot.expiration);
        continue;
      }
      for (const ch of item.changes) {
        if (ch.type === 'delete') return revoked();
        try {
          setExpiration(await registry.expirationOf(String(ch.kv.lease ?? '0')));
        } catch {
          stream.resync();
          break;
        }
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
