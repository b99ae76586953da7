#!/usr/bin/env node
// Runs node's test runner over test/unit (and test/integration for "all") and fails when no test ran:
// node 20 has no globbing, and `node --test` with zero files exits 0.
import { readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const which = process.argv[2] ?? 'all';
const dirs = which === 'unit' ? ['test/unit'] : which === 'integration' ? ['test/integration'] : ['test/unit', 'test/integration'];
const only = process.argv.slice(3);
const files = dirs
  .flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.test.ts')).sort().map((f) => join(d, f)))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)));
if (files.length === 0) {
  console.error(`run-tests: no test files found in ${dirs.join(', ')}`);
  process.exit(1);
}
// Integration tests share the kernel and xtables lock: one file at a time.
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let out = '';
child.stdout.on('data', (b) => {
  process.stdout.write(b);
  out += b.toString();
  if (out.length > 1e6) out = out.slice(-1e5);
});
child.on('close', (code) => {
  const m = /ℹ tests (\d+)/.exec(out) ?? /# tests (\d+)/.exec(out);
  const count = m ? Number(m[1]) : 0;
  if (count === 0) {
    console.error('run-tests: zero tests ran');
    process.exit(1);
  }
  process.exit(code ?? 1);
});
