import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installFile, parseInstallArgs } from '../../src/cli/install.ts';

const FLANNELCTL = join(import.meta.dirname, '../../src/cli/flannelctl.ts');

describe('flannelctl install', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fl-install-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('parses --mode in both forms and defaults to 0644', () => {
    assert.deepEqual(parseInstallArgs(['a', 'b']), { source: 'a', destination: 'b', mode: 0o644 });
    assert.deepEqual(parseInstallArgs(['--mode=0755', 'a', 'b']), { source: 'a', destination: 'b', mode: 0o755 });
    assert.deepEqual(parseInstallArgs(['a', '--mode', '600', 'b']), { source: 'a', destination: 'b', mode: 0o600 });
  });

  it('refuses bad arguments with a message naming them', () => {
    assert.throws(() => parseInstallArgs(['--mode=0999', 'a', 'b']), {
      message: 'install: --mode 0999: not an octal permission like 0755 or 0644',
    });
    assert.throws(() => parseInstallArgs(['--mode']), { message: 'install: --mode needs a value' });
    assert.throws(() => parseInstallArgs(['a']), { message: 'install: missing <destination>' });
    assert.throws(() => parseInstallArgs([]), { message: 'install: missing <source> <destination>' });
    assert.throws(() => parseInstallArgs(['a', 'b', 'c']), { message: 'install: unexpected argument c' });
    assert.throws(() => parseInstallArgs(['-f', 'a', 'b']), { message: 'install: unknown option -f' });
  });

  it('installs with the requested mode, replaces the old file by rename and leaves no temp file', () => {
    const src = join(dir, 'plugin-src');
    const dstDir = join(dir, 'bin');
    mkdirSync(dstDir);
    const dst = join(dstDir, 'flannel');
    writeFileSync(dst, 'old contents');
    chmodSync(dst, 0o600);
    const oldInode = statSync(dst).ino;
    // An open reader of the old file keeps seeing the old bytes: the file was replaced, not rewritten in place.
    const oldFd = openSync(dst, 'r');
    writeFileSync(src, '#!/usr/bin/env node\nconsole.log(1)\n');
    chmodSync(src, 0o600);
    try {
      installFile({ source: src, destination: dst, mode: 0o755 });
      const buf = Buffer.alloc(64);
      const n = readSync(oldFd, buf, 0, 64, 0);
      assert.equal(buf.subarray(0, n).toString(), 'old contents');
    } finally {
      closeSync(oldFd);
    }
    assert.equal(readFileSync(dst, 'utf8'), '#!/usr/bin/env node\nconsole.log(1)\n');
    assert.equal(statSync(dst).mode & 0o7777, 0o755);
    assert.notEqual(statSync(dst).ino, oldInode);
    assert.deepEqual(readdirSync(dstDir), ['flannel']);
  });

  it('names the missing source, the missing directory and a directory destination', () => {
    assert.throws(
      () => installFile({ source: join(dir, 'nope'), destination: join(dir, 'x'), mode: 0o644 }),
      /cannot read source .*nope/,
    );
    const src = join(dir, 'conf');
    writeFileSync(src, '{}');
    assert.throws(
      () => installFile({ source: src, destination: join(dir, 'no-dir', 'x'), mode: 0o644 }),
      /destination directory .*no-dir does not exist; mount/,
    );
    mkdirSync(join(dir, 'adir'));
    assert.throws(
      () => installFile({ source: src, destination: join(dir, 'adir'), mode: 0o644 }),
      /is a directory; give the full file name/,
    );
    assert.deepEqual(readdirSync(join(dir, 'adir')), []);
  });

  it('runs as a flannelctl subcommand; exits 2 with the message and the usage on bad usage', () => {
    const src = join(dir, 'cni-conf.json');
    writeFileSync(src, '{"name":"cbr0"}');
    const netd = join(dir, 'net.d');
    mkdirSync(netd);
    const ok = spawnSync(
      process.execPath,
      ['--import', 'tsx', FLANNELCTL, 'install', src, join(netd, '10-flannel.conflist')],
      { encoding: 'utf8', timeout: 30_000 },
    );
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(readFileSync(join(netd, '10-flannel.conflist'), 'utf8'), '{"name":"cbr0"}');
    assert.equal(statSync(join(netd, '10-flannel.conflist')).mode & 0o7777, 0o644);
    const bad = spawnSync(process.execPath, ['--import', 'tsx', FLANNELCTL, 'install', src], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(bad.status, 2);
    assert.match(
      bad.stderr,
      /^flannelctl: install: missing <destination>\nUsage: flannelctl install \[--mode MODE\] <source> <destination>\n/,
    );
    assert.equal(bad.stdout, '');
  });

  it('a concurrent reader sees either the old or the new file whole, never a partial one', async () => {
    const size = 256 * 1024;
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    writeFileSync(a, Buffer.alloc(size, 'a'));
    writeFileSync(b, Buffer.alloc(size, 'b'));
    const target = join(dir, 'race');
    installFile({ source: a, destination: target, mode: 0o644 });
    // A separate process alternates installs while this one reads; bounded by its iteration count.
    const script = `import { installFile } from ${JSON.stringify(join(import.meta.dirname, '../../src/cli/install.ts'))};
      for (let i = 0; i < 40; i++) installFile({ source: i % 2 ? ${JSON.stringify(a)} : ${JSON.stringify(b)}, destination: ${JSON.stringify(target)}, mode: 0o644 });`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const done = new Promise<number | null>((res) => child.on('close', res));
    let exited = false;
    void done.then(() => (exited = true));
    let reads = 0;
    const seen = new Set<string>();
    const deadline = Date.now() + 60_000;
    while (!exited && Date.now() < deadline) {
      const buf = readFileSync(target);
      assert.equal(buf.length, size, 'a reader saw a partial file');
      const first = String.fromCharCode(buf[0]!);
      assert.ok(
        buf.every((c) => c === buf[0]),
        'a reader saw mixed contents',
      );
      seen.add(first);
      reads++;
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(await done, 0, stderr);
    assert.ok(reads > 0);
    assert.equal(readFileSync(target, 'utf8')[0], 'a', 'the last of 40 installs (i = 39) copies a');
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith('.race')),
      [],
    );
  });
});
