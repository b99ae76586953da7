// `lab down` after an `up` that died half-way: namespaces with processes inside, a veth still in the root
// namespace, and the state directory — all must go.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot } from '../helpers/netns.ts';

const ctl = join(import.meta.dirname, '../../dist/flannelctl.cjs');

describe('lab down after a failed up', { skip: !isRoot || !existsSync(ctl) ? 'needs root and `npm run build`' : false }, () => {
  it('removes half-built namespaces, their processes, stray veths and the state dir', () => {
    execFileSync('ip', ['netns', 'add', 'flab-sw']);
    execFileSync('ip', ['netns', 'add', 'flab-h1']);
    execFileSync('ip', ['netns', 'add', 'flab-h1-p1']);
    execFileSync('ip', ['link', 'add', 'flab2a', 'type', 'veth', 'peer', 'name', 'flab2b']);
    mkdirSync('/run/flannel-lab/h1', { recursive: true });
    writeFileSync('/run/flannel-lab/h1/flanneld.log', 'partial\n');
    // A long sleep stands in for a daemon left running inside a host namespace.
    const child = spawn('ip', ['netns', 'exec', 'flab-h1', 'sleep', '300'], { detached: true, stdio: 'ignore' });
    child.unref();
    const pid = child.pid!;
    const deadline = Date.now() + 5000;
    while (!execFileSync('ip', ['netns', 'pids', 'flab-h1'], { encoding: 'utf8' }).trim() && Date.now() < deadline) execFileSync('sleep', ['0.05']);

    execFileSync(process.execPath, [ctl, 'lab', 'down'], { encoding: 'utf8' });

    assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), /flab-/);
    assert.equal(existsSync('/sys/class/net/flab2a'), false, 'stray veth removed');
    assert.equal(existsSync('/run/flannel-lab'), false);
    let alive = true;
    for (let i = 0; i < 50 && alive; i++) {
      try {
        process.kill(pid, 0);
        execFileSync('sleep', ['0.05']);
      } catch {
        alive = false;
      }
    }
    // `ip netns exec` execs into sleep, so the pid is the sleeper itself (a zombie until reaped counts as gone).
    const state = alive ? execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).trim() : '';
    assert.ok(!alive || state.startsWith('Z'), `process ${pid} still running (${state})`);
  });
});
