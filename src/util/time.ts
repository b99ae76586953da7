// Waiting, bounded: a sleep that an abort ends early, and polling until a condition holds or the time is up (the
// lab waits on processes and files, the tests on kernel and etcd state; one loop for both).

/** A sleep that ends early (and quietly) when `signal` aborts: loops check `signal.aborted` right after. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Resolves once `signal` aborts (at once when it already has). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/**
 * Polls `check` every `everyMs` until it returns something other than undefined or false (a thrown error counts as
 * not yet), and returns that; throws after `timeoutMs`, naming `what` and the last error.
 */
export async function until<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  everyMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const why = last ? ` (last error: ${(last as Error).message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(everyMs);
  }
}

/** Resolves once `check()` is true; throws `failMessage` (built at that moment when a function) after `ms`. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  ms: number,
  failMessage: string | (() => string),
  intervalMs = 200,
): Promise<void> {
  try {
    await until('', check, ms, intervalMs);
  } catch {
    throw new Error(typeof failMessage === 'string' ? failMessage : failMessage());
  }
}
