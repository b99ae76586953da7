// A cache of all nodes kept by list + watch (resourceVersion, bookmarks); lists again after 410 Gone, an ERROR event,
// a failure or the end of a watch, and reports every difference as a node change.
import { errorMessage, logger } from '../../log/log.ts';
import { sleep } from '../../util/time.ts';
import { plainNode, type NodeApi, type WatchEvent } from './client.ts';
import type { KubeNode } from './node.ts';
import type { SubnetWatchObserver } from '../lease.ts';

const log = logger('kube');

export interface NodeChange {
  old?: KubeNode;
  node?: KubeNode;
}

export interface NodeInformerOptions {
  /** The server ends each watch after this long (jittered); we then list again (upstream resyncs every 5 min). */
  watchTimeoutSeconds?: number;
  retryMs?: number;
  /** Told of failed lists and watches, and of each list after the first (flanneld's /metrics). */
  observer?: SubnetWatchObserver;
}

export class NodeInformer {
  readonly cache = new Map<string, KubeNode>();
  private listeners = new Set<(changes: NodeChange[]) => void>();
  private syncedWaiters: Array<() => void> = [];
  private _synced = false;
  /** Lists done so far (tests and logs). */
  lists = 0;
  private stopWatch: AbortController | null = null;

  constructor(
    private readonly api: NodeApi,
    private readonly opts: NodeInformerOptions = {},
  ) {}

  get synced(): boolean {
    return this._synced;
  }

  /** Calls `fn` with every batch of changes from now on; returns the unsubscribe function. */
  subscribe(fn: (changes: NodeChange[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Resolves once the first list is in the cache (or when `signal` aborts). */
  waitSynced(signal: AbortSignal): Promise<void> {
    if (this._synced || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.syncedWaiters.push(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Drops the current watch so that the loop lists again (after a suspected gap). */
  relist(): void {
    this.stopWatch?.abort();
  }

  private emit(changes: NodeChange[]): void {
    if (changes.length === 0) return;
    for (const fn of this.listeners) fn(changes);
  }

  private replace(items: KubeNode[]): void {
    const changes: NodeChange[] = [];
    const seen = new Set<string>();
    for (const node of items) {
      const name = node.metadata.name;
      seen.add(name);
      const old = this.cache.get(name);
      this.cache.set(name, node);
      if (!old || old.metadata.resourceVersion !== node.metadata.resourceVersion) changes.push({ old, node });
    }
    for (const [name, old] of this.cache) {
      if (!seen.has(name)) {
        this.cache.delete(name);
        changes.push({ old });
      }
    }
    this.emit(changes);
  }

  /** Applies one watch event; returns the resourceVersion to resume from, or null when a fresh list is needed. */
  private apply(ev: WatchEvent, rv: string): string | null {
    if (ev.type === 'ERROR') {
      const code = ev.object?.code;
      log.info(
        `node watch ended by the server (${code ?? '?'} ${ev.object?.reason ?? ''}: ${ev.object?.message ?? ''}); listing again`,
      );
      return null;
    }
    const nextRv: string = ev.object?.metadata?.resourceVersion ?? rv;
    if (ev.type === 'BOOKMARK') return nextRv;
    const node = plainNode(ev.object);
    const name = node.metadata.name;
    const old = this.cache.get(name);
    if (ev.type === 'DELETED') {
      this.cache.delete(name);
      this.emit([{ old: old ?? node }]);
    } else {
      this.cache.set(name, node);
      this.emit([{ old, node }]);
    }
    return nextRv;
  }

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    let delay = this.opts.retryMs ?? 1000;
    while (!signal.aborted) {
      let rv: string;
      try {
        const listed = await this.api.listNodes();
        if (this.lists++ > 0) this.opts.observer?.relisted();
        rv = listed.resourceVersion;
        this.replace(listed.items);
        delay = this.opts.retryMs ?? 1000;
        if (!this._synced) {
          this._synced = true;
          for (const w of this.syncedWaiters.splice(0)) w();
        }
      } catch (e) {
        if (signal.aborted) return;
        this.opts.observer?.failed('list');
        log.error(`failed to list nodes: ${errorMessage(e)}; retrying in ${delay} ms`);
        await sleep(delay, signal);
        delay = Math.min(delay * 2, 30_000);
        continue;
      }
      // Resume from the last resourceVersion while watches end cleanly (server timeout); list again after an
      // ERROR event (410 Gone: history compacted) or a broken connection, since events may have been missed.
      while (!signal.aborted) {
        const started = Date.now();
        const outcome = await this.watchOnce(rv, signal, (next) => (rv = next));
        if (outcome === 'relist') break;
        if (outcome === 'failed') {
          await sleep(200, signal);
          break;
        }
        // A server that keeps closing watches at once must not make us spin.
        if (Date.now() - started < 1000) await sleep(200, signal);
      }
    }
  }

  private async watchOnce(
    rv: string,
    signal: AbortSignal,
    setRv: (rv: string) => void,
  ): Promise<'ended' | 'relist' | 'failed'> {
    const stop = new AbortController();
    this.stopWatch = stop;
    const onAbort = () => stop.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const base = this.opts.watchTimeoutSeconds ?? 300;
    const timeout = Math.max(1, Math.round(base * (1 + Math.random())));
    let relist = false;
    try {
      await this.api.watchNodes(
        rv,
        (ev) => {
          if (stop.signal.aborted) return;
          const next = this.apply(ev, rv);
          if (next === null) {
            relist = true;
            stop.abort();
          } else setRv((rv = next));
        },
        stop.signal,
        timeout,
      );
      // relist() aborts the watch too: a suspected gap.
      return relist || (stop.signal.aborted && !signal.aborted) ? 'relist' : 'ended';
    } catch (e) {
      if (signal.aborted) return 'ended';
      this.opts.observer?.failed('watch');
      log.warn(`node watch failed: ${errorMessage(e)}; listing again`);
      return 'failed';
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.stopWatch = null;
    }
  }
}
