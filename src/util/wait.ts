// Bounded polling: until a condition holds, or an error once the time is up (the lab waits on processes and files,
// the tests on kernel and etcd state). One loop for both.
import { sleep } from './sleep.ts';

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
