// Polls until a condition holds, or fails with a message once the time is up (the lab waits on processes and files).
import { sleep } from './sleep.ts';

/** Resolves once `check()` is true; throws `failMessage` (built at that moment when a function) after `ms`. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  ms: number,
  failMessage: string | (() => string),
  intervalMs = 200,
): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(typeof failMessage === 'string' ? failMessage : failMessage());
    await sleep(intervalMs);
  }
}
