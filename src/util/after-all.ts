// One callback per participant; `done` runs once every one of them was called (each counts once, n = 0 → at once).
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
