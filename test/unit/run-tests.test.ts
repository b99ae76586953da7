// scripts/run-tests.mjs: a run that includes the integration tests is red when any test or suite skipped itself.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'run-tests-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fixture(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `import { describe, it } from 'node:test';\n${body}\n`);
  return p;
}

function runTests(mode: string, file: string) {
  // Without NODE_TEST_CONTEXT the inner runner runs its files instead of reporting to this one.
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync(process.execPath, ['scripts/run-tests.mjs', mode, file], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stderr: r.stderr };
}

describe('run-tests', () => {
  const skippedSuite = fixture(
    'skipped-suite.test.ts',
    "it('runs', () => {});\ndescribe('needs the kernel', { skip: 'needs root' }, () => { it('x', () => {}); });",
  );
  const skippedTest = fixture(
    'skipped-test.test.ts',
    "it('runs', () => {});\nit('later', { skip: 'etcd is not installed' }, () => {});",
  );
  const clean = fixture('clean.test.ts', "it('runs', () => {});");

  it('fails a full run when a suite skipped itself, and names it with its reason', () => {
    const r = runTests('all', skippedSuite);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /skipped themselves/);
    assert.match(r.stderr, /needs the kernel .* # needs root/);
  });

  it('fails a full run when a single test skipped itself', () => {
    const r = runTests('all', skippedTest);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /later .* # etcd is not installed/);
  });

  it('passes a full run in which every test ran', () => {
    assert.equal(runTests('all', clean).code, 0);
  });

  it('lets the unit run skip (it is meant to work without root)', () => {
    assert.equal(runTests('unit', skippedSuite).code, 0);
  });
});
