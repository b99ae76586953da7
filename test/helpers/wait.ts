// Bounded waits for tests: a promise with a deadline, polling until a check holds, and polling until a value settles.
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';

/** `p`, or an error naming `what` when it takes longer than `ms`. */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>(
    (_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)),
  );
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

export { until } from '../../src/util/time.ts';

/** Polls until `get()` deep-equals `want` (bounded), then asserts it so a failure shows the difference. */
export async function eventually<T>(get: () => T, want: T, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let got = get();
  while (Date.now() < deadline && JSON.stringify(got) !== JSON.stringify(want)) {
    await delay(100);
    got = get();
  }
  assert.deepEqual(got, want);
}
