// Every command the code, the lab, the tests and the benchmarks spawn is installed by `make deps`: a fresh machine
// must not depend on a tool somebody once installed by hand.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { COMMAND_PACKAGES, ESSENTIAL_PACKAGES, missingToolMessage } from '../helpers/tools.ts';

const root = join(import.meta.dirname, '../..');

function aptPackages(makefile: string): Set<string> {
  const m = /^APT_PACKAGES\s*:?=\s*((?:.*\\\n)*.*)$/m.exec(makefile);
  assert.ok(m, 'the Makefile defines APT_PACKAGES');
  return new Set(m[1]!.replace(/\\\n/g, ' ').split(/\s+/).filter(Boolean));
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.(ts|mjs|cjs|js)$/.test(f) ? [p] : [];
  });
}

const NAME = String.raw`'([a-z][a-z0-9_.+-]*)'`;
// The shapes a spawned command takes here: the first argument of a process call or of the helpers that wrap one,
// and the command after `ip netns exec <ns>`.
const SPAWN_PATTERNS = [
  new RegExp(
    String.raw`(?<![\w.])(?:spawn|spawnSync|execFile|execFileSync|processExec|run|sh|shQuiet)\(\s*${NAME}`,
    'g',
  ),
  new RegExp(String.raw`\bnsRun\([^,()]+,\s*${NAME}`, 'g'),
  new RegExp(String.raw`'exec',\s*[^,\]()]+,\s*${NAME}`, 'g'),
  new RegExp(String.raw`\bexec\(\s*${NAME}`, 'g'),
];

/** The commands spawned in `text`, by the patterns above. */
export function spawnedCommands(text: string): Set<string> {
  const out = new Set<string>();
  for (const re of SPAWN_PATTERNS) for (const m of text.matchAll(re)) out.add(m[1]!);
  return out;
}

describe('make deps installs every command that is run', () => {
  const apt = aptPackages(readFileSync(join(root, 'Makefile'), 'utf8'));

  it('finds spawned commands in the shapes the code uses', () => {
    const text = [
      "execFileSync('ip', ['-json', 'link'])",
      "spawn('ip', ['netns', 'exec', a.ns, 'tcpdump', '-i', 'flannel0'])",
      "nsRun(ns, 'bridge', ['-json', 'fdb'])",
      "await exec('iptables-restore', ['--version'])",
      "log.push('w1'); gate.run(false, f)",
    ].join('\n');
    assert.deepEqual([...spawnedCommands(text)].sort(), ['bridge', 'ip', 'iptables-restore', 'tcpdump']);
  });

  it('knows the package of every command spawned under src/, test/, bench/ and scripts/', () => {
    const unknown: string[] = [];
    for (const dir of ['src', 'test', 'bench', 'scripts']) {
      for (const file of sources(join(root, dir))) {
        if (file.endsWith('deps.test.ts')) continue;
        for (const cmd of spawnedCommands(readFileSync(file, 'utf8'))) {
          if (!(cmd in COMMAND_PACKAGES)) unknown.push(`${cmd} (${file.slice(root.length + 1)})`);
        }
      }
    }
    assert.deepEqual(unknown, [], 'add these commands and their Debian packages to test/helpers/tools.ts');
  });

  it('lists the package of every known command in the Makefile', () => {
    const missing = Object.entries(COMMAND_PACKAGES).filter(([, pkg]) => !apt.has(pkg) && !ESSENTIAL_PACKAGES.has(pkg));
    assert.deepEqual(missing, [], 'add these packages to APT_PACKAGES in the Makefile');
  });

  it('lists the reference CNI plugins the plugin delegates to', () => {
    assert.ok(apt.has('containernetworking-plugins'));
  });

  it('names the tool and its package when one is missing', () => {
    assert.equal(
      missingToolMessage('tcpdump'),
      'tcpdump is not installed: run `make deps` (it installs the Debian package tcpdump)',
    );
    assert.match(missingToolMessage('frobnicate'), /frobnicate is not installed.*test\/helpers\/tools\.ts/);
  });
});
