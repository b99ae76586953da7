#!/usr/bin/env node
// Runs node's test runner over test/unit (and test/integration for "all") and fails when no test ran:
// node 20 has no globbing, and `node --test` with zero files exits 0. A run that includes the integration tests also
// fails when any test skipped itself (not root, not built, a tool missing): green must mean every test ran.
import { existsSync, readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const which = process.argv[2] ?? 'all';
const dirs =
  which === 'unit' ? ['test/unit'] : which === 'integration' ? ['test/integration'] : ['test/unit', 'test/integration'];
// Further arguments filter by file name; paths of existing test files run just those (the runner's own test).
const only = process.argv.slice(3);
const paths = only.filter((o) => o.endsWith('.test.ts') && existsSync(o));
const files =
  paths.length > 0
    ? paths
    : dirs
        .flatMap((d) =>
          readdirSync(d)
            .filter((f) => f.endsWith('.test.ts'))
            .sort()
            .map((f) => join(d, f)),
        )
        .filter((f) => only.length === 0 || only.some((o) => f.includes(o)));
if (files.length === 0) {
  console.error(`run-tests: no test files found in ${dirs.join(', ')}`);
  process.exit(1);
}
// Integration tests share the kernel and xtables lock: one file at a time.
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
let tail = '';
let partial = '';
// The spec reporter marks a skipped test or suite with "﹣" and ends its line with "# <reason>".
const skippedLines = [];
child.stdout.on('data', (b) => {
  process.stdout.write(b);
  const text = partial + b.toString();
  const lines = text.split('\n');
  partial = lines.pop() ?? '';
  for (const l of lines) if (/^\s*﹣ .* # /.test(l)) skippedLines.push(l.trim());
  tail = (tail + text).slice(-1e5);
});
child.on('close', (code) => {
  const count = Number((/ℹ tests (\d+)/.exec(tail) ?? /# tests (\d+)/.exec(tail))?.[1] ?? 0);
  // A skipped suite counts neither as a test nor as a skip in the summary: count the marked lines too.
  const skipped = Math.max(Number(/ℹ skipped (\d+)/.exec(tail)?.[1] ?? 0), new Set(skippedLines).size);
  if (count === 0) {
    console.error('run-tests: zero tests ran');
    process.exit(1);
  }
  if (which !== 'unit' && skipped > 0) {
    const shown = [...new Set(skippedLines)]
      .slice(0, 20)
      .map((l) => `  ${l}`)
      .join('\n');
    console.error(
      `run-tests: ${skipped} test(s) or suite(s) skipped themselves, so this run does not cover the suite:\n${shown}\n` +
        'run it as root after `make build` (`make test` does both), or run `node scripts/run-tests.mjs unit` for the unit tests alone',
    );
    process.exit(1);
  }
  process.exit(code ?? 1);
});
