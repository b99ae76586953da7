import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Serial, afterAll } from '../../src/util/tasks.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('Serial', () => {
  it('runs work one piece at a time in call order, past failures', async () => {
    const s = new Serial();
    const log: string[] = [];
    const job = (name: string, fail = false) =>
      s.run(async () => {
        log.push(`${name} start`);
        await tick();
        log.push(`${name} end`);
        if (fail) throw new Error(name);
        return name;
      });
    const results = await Promise.allSettled([job('a'), job('b', true), job('c')]);
    assert.deepEqual(log, ['a start', 'a end', 'b start', 'b end', 'c start', 'c end']);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
  });

  it('uses a reading taken outside the queue when nothing ran or was running meanwhile', async () => {
    const s = new Serial();
    let reads = 0;
    const used = await s.readThenRun(
      async () => ++reads,
      async (r) => r,
    );
    assert.deepEqual([used, reads], [1, 1]);
  });

  it('reads again in its turn when other work ran between the reading and the turn', async () => {
    const s = new Serial();
    let state = 'old';
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const reading = s.readThenRun(
      async () => {
        // While this reads, lease handling queues a change and makes it.
        void s.run(async () => {
          state = 'new';
        });
        const seen = state;
        await held;
        return seen;
      },
      async (r) => r,
    );
    release();
    assert.equal(await reading, 'new');
  });

  it('reads again in its turn when work was already running as the reading started', async () => {
    const s = new Serial();
    let state = 'old';
    let finish!: () => void;
    const running = s.run(
      () =>
        new Promise<void>((r) => {
          finish = () => {
            state = 'new';
            r();
          };
        }),
    );
    await tick();
    let reads = 0;
    const reading = s.readThenRun(
      async () => {
        reads++;
        return state;
      },
      async (r) => r,
    );
    await tick();
    finish();
    await running;
    assert.deepEqual([await reading, reads], ['new', 2]);
  });
});

describe('afterAll', () => {
  it('calls done once every participant reported, each counting once', () => {
    let done = 0;
    const [a, b] = afterAll(2, () => done++);
    a!();
    a!();
    assert.equal(done, 0);
    b!();
    assert.equal(done, 1);
    afterAll(0, () => done++);
    assert.equal(done, 2);
  });
});
