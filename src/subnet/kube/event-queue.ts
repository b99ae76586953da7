// The bounded lease-event queue of kube mode (EVENT_QUEUE_DEPTH): never blocks the node watch, never drops
// (docs/COMPATIBILITY.md, "Kubernetes subnet manager").

export const DEFAULT_EVENT_QUEUE_DEPTH = 5000;
const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 5000;

/** EVENT_QUEUE_DEPTH as a positive integer (default 5000); anything else is an error naming the variable. */
export function parseEventQueueDepth(raw: string | undefined): number {
  if (raw === undefined || raw === '') return DEFAULT_EVENT_QUEUE_DEPTH;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1) {
    throw new Error(
      `EVENT_QUEUE_DEPTH "${raw}" is invalid: use a positive whole number (default ${DEFAULT_EVENT_QUEUE_DEPTH})`,
    );
  }
  return Number(raw);
}

/**
 * Holds up to `depth` items for the consumer. Pushes beyond that wait in arrival order and are moved in as room
 * appears: when the consumer takes a batch, or by a retry timer backing off 100 ms → 5 s (flannel's behaviour).
 */
export class EventQueue<T> {
  private buffer: T[] = [];
  private overflow: T[] = [];
  private wake: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private backoff = BACKOFF_START_MS;

  constructor(readonly depth: number) {
    if (!Number.isInteger(depth) || depth < 1) throw new Error(`event queue depth ${depth} must be a positive integer`);
  }

  get size(): number {
    return this.buffer.length;
  }

  get waiting(): number {
    return this.overflow.length;
  }

  push(item: T): void {
    if (this.overflow.length === 0 && this.buffer.length < this.depth) {
      this.buffer.push(item);
      this.notify();
      return;
    }
    this.overflow.push(item);
    this.schedule();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private refill(): void {
    const room = this.depth - this.buffer.length;
    if (room > 0 && this.overflow.length > 0) {
      this.buffer.push(...this.overflow.splice(0, room));
      this.notify();
    }
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refill();
      if (this.overflow.length === 0) {
        this.backoff = BACKOFF_START_MS;
        return;
      }
      this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
      this.schedule();
    }, this.backoff);
    this.timer.unref();
  }

  /** Everything buffered (at most `depth` items) once there is something; rejects when `signal` aborts. */
  async take(signal: AbortSignal): Promise<T[]> {
    while (this.buffer.length === 0) {
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
    const batch = this.buffer;
    this.buffer = [];
    this.refill();
    return batch;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
