// The client's fault handling, telling: the per-endpoint circuit breaker keeps the failure that opened it, and the
// call retry notices when etcd stops answering (a frozen etcd accepts connections but never replies, calls run into
// their deadline) and says so every interval.
import { EtcdDeadlineError, EtcdEndpointDownError, isRecoverable } from './errors.ts';

/** Runs a call under a policy (a breaker, a retry). */
export interface Policy {
  execute<T>(fn: () => PromiseLike<T> | T): Promise<T>;
}

export interface BreakerOptions {
  endpoint: string;
  /** The failure in words (describeEtcdError with the client's flags). */
  describe: (e: unknown) => string;
  /** Consecutive recoverable failures that make the endpoint rest (3). */
  failures?: number;
  /** How long it rests before one trial call (5 s). */
  restMs?: number;
  now?: () => number;
}

/**
 * Rests an endpoint for 5 s after 3 consecutive recoverable failures, then lets one trial call through; throws
 * EtcdEndpointDownError with the last real failure while it rests.
 */
export function endpointBreaker(o: BreakerOptions): Policy & { readonly resting: boolean } {
  const now = o.now ?? Date.now;
  const max = o.failures ?? 3;
  const restMs = o.restMs ?? 5000;
  let failures = 0;
  let restUntil: number | undefined;
  let trialRunning = false;
  let last: unknown;
  return {
    /** Whether a call now would be refused: the client tries another endpoint first. */
    get resting() {
      return restUntil !== undefined && (now() < restUntil || trialRunning);
    },
    execute: async <T>(fn: () => PromiseLike<T> | T): Promise<T> => {
      let trial = false;
      if (restUntil !== undefined) {
        if (now() < restUntil || trialRunning) throw new EtcdEndpointDownError(o.endpoint, last, o.describe(last));
        trial = trialRunning = true;
      }
      try {
        const result = await fn();
        failures = 0;
        restUntil = undefined;
        return result;
      } catch (e) {
        if (isRecoverable(e)) {
          last = e;
          failures++;
          if (trial || failures >= max) restUntil = now() + restMs;
        } else {
          // etcd answered (e.g. permission denied): the endpoint works.
          failures = 0;
          restUntil = undefined;
        }
        throw e;
      } finally {
        if (trial) trialRunning = false;
      }
    },
  };
}

export interface SilenceWatchOptions {
  /** Report at this interval while calls wait without any answer. */
  intervalMs: number;
  onSilence: (silentMs: number) => void;
  now?: () => number;
}

/**
 * Tracks the calls to etcd; reports while etcd has answered none for an interval or more and calls still wait or
 * keep being made (retries that fail at once while an endpoint rests keep the reports coming).
 */
export class SilenceWatch {
  private pending = 0;
  /** Since when calls have gone without any answer; undefined right after an answer. */
  private silentSince: number | undefined;
  private lastBegin = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly o: SilenceWatchOptions) {
    this.now = o.now ?? Date.now;
  }

  begin(): void {
    this.pending++;
    this.lastBegin = this.now();
    this.silentSince ??= this.lastBegin;
    this.timer ??= setInterval(() => this.check(), this.o.intervalMs).unref();
  }

  /** `answered`: the call got a reply or failed at once, as opposed to running into its deadline. */
  end(answered: boolean): void {
    this.pending--;
    if (answered) this.silentSince = this.pending > 0 ? this.now() : undefined;
    if (this.pending === 0 && this.silentSince === undefined) this.stop();
  }

  /** Called by the timer; reports the silence when it is long enough and someone still waits for etcd. */
  check(): void {
    const now = this.now();
    const waiting = this.pending > 0 || now - this.lastBegin < this.o.intervalMs;
    if (this.silentSince === undefined || !waiting) return this.stop();
    const silent = now - this.silentSince;
    if (silent >= this.o.intervalMs) this.o.onSilence(silent);
  }

  /** Stops the timer until the next call (the client closes). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * Whether a failed call got no answer in time: etcd accepted the connection (or the packets vanish) but did not reply.
 * A refused connection or a TLS failure is an answer of sorts: it fails at once, and the caller logs the cause.
 */
function unanswered(e: unknown): boolean {
  if (e instanceof EtcdEndpointDownError) return unanswered(e.cause);
  return e instanceof EtcdDeadlineError;
}

/** Retries a recoverable failure up to 3 times at once (the client moves to the next endpoint), reporting silences to `watch`. */
export function retryPolicy(watch: SilenceWatch, retries = 3): Policy {
  return {
    execute: async <T>(fn: () => PromiseLike<T> | T): Promise<T> => {
      watch.begin();
      let answered = false;
      try {
        for (let attempt = 0; ; attempt++) {
          try {
            const result = await fn();
            answered = true;
            return result;
          } catch (e) {
            answered = !unanswered(e);
            if (!isRecoverable(e) || attempt >= retries) throw e;
          }
        }
      } finally {
        watch.end(answered);
      }
    },
  };
}
