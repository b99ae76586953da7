// Ordering async work: one piece at a time in call order (Serial), and a callback once every participant reported
// (afterAll).

/** Runs async work one piece at a time, in call order; a failure does not block what comes after. */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/** One callback per participant; `done` runs once every one of them was called (each counts once, n = 0 → at once). */
export function afterAll(n: number, done: (() => void) | undefined): Array<() => void> {
  let left = n;
  if (n === 0) done?.();
  return Array.from({ length: n }, () => {
    let called = false;
    return () => {
      if (called) return;
      called = true;
      if (--left === 0) done?.();
    };
  });
}
