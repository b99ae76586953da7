// Ordering async work: one piece at a time in call order (Serial, with reads taken outside it when nothing moved
// meanwhile), and a callback once every participant reported (afterAll).

/** Runs async work one piece at a time, in call order; a failure does not block what comes after. */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  private started = 0;
  private running = false;

  run<T>(fn: () => Promise<T>): Promise<T> {
    const turn = async () => {
      this.started++;
      this.running = true;
      try {
        return await fn();
      } finally {
        this.running = false;
      }
    };
    const next = this.tail.then(turn, turn);
    this.tail = next.catch(() => undefined);
    return next;
  }

  /**
   * Reads outside the queue (a kernel dump that would otherwise hold up lease handling), then runs `use` in its turn
   * with that reading, or with a new one taken in the turn when the reading may be stale: some other work ran or was
   * running between the start of the read and the turn.
   */
  async readThenRun<R, T>(read: () => Promise<R>, use: (reading: R) => Promise<T>): Promise<T> {
    const quiet = !this.running;
    const before = this.started;
    const early = await read();
    return this.run(async () => use(quiet && this.started === before + 1 ? early : await read()));
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
