import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RequestGate } from '../../src/netlink/gate.ts';

function deferred() {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('netlink request gate', () => {
  it('keeps at most `window` writes in flight and starts the rest in order', async () => {
    const gate = new RequestGate(3);
    const started: number[] = [];
    const ds = Array.from({ length: 7 }, () => deferred());
    const all = ds.map((d, i) => gate.run(false, () => (started.push(i), d.promise)));
    await tick();
    assert.deepEqual(started, [0, 1, 2]);
    ds[1]!.resolve();
    await tick();
    assert.deepEqual(started, [0, 1, 2, 3]);
    for (const d of ds) d.resolve();
    await Promise.all(all);
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(gate.pending, 0);
  });

  it('runs a dump alone: after earlier writes finish and before later ones start', async () => {
    const gate = new RequestGate(10);
    const log: string[] = [];
    const w1 = deferred();
    const dump = deferred();
    const p1 = gate.run(false, () => (log.push('w1'), w1.promise));
    const p2 = gate.run(true, () => (log.push('dump'), dump.promise));
    const p3 = gate.run(false, async () => void log.push('w2'));
    await tick();
    assert.deepEqual(log, ['w1']);
    w1.resolve();
    await tick();
    assert.deepEqual(log, ['w1', 'dump']);
    dump.resolve();
    await Promise.all([p1, p2, p3]);
    assert.deepEqual(log, ['w1', 'dump', 'w2']);
  });

  it('passes failures (thrown or rejected) to the caller and keeps going', async () => {
    const gate = new RequestGate(1);
    await assert.rejects(
      gate.run(false, () => Promise.reject(new Error('EEXIST'))),
      /EEXIST/,
    );
    await assert.rejects(
      gate.run(true, () => {
        throw new Error('sync');
      }),
      /sync/,
    );
    assert.equal(await gate.run(false, async () => 42), 42);
  });

  it('refuses a window that is not a positive integer', () => {
    assert.throws(() => new RequestGate(0), /window 0 must be a positive integer/);
  });
});
