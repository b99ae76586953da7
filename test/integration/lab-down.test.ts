// `lab down` after an `up` that died half-way: namespaces with processes inside, a veth still in the root
// namespace, and the state directory — all must go.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertLabGone, labPids, processGone } from '../helpers/lab.ts';
import { isRoot } from '../helpers/netns.ts';

const ctl = join(import.meta.dirname, '../../dist/flannelctl.cjs');

describe('lab down after a failed up', {
  skip: !isRoot || !existsSync(ctl) ? 'needs root and `npm run build`' : false,
}, () => {
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
    while (!execFileSync('ip', ['netns', 'pids', 'flab-h1'], { encoding: 'utf8' }).trim() && Date.now() < deadline)
      execFileSync('sleep', ['0.05']);

    // A flanneld that is not the lab's (a real node's, another lab's): lab down leaves it, and the check ignores it.
    const foreign = spawn('bash', ['-c', 'exec -a /opt/flannel-ts/dist/flanneld.cjs sleep 60'], {
      detached: true,
      stdio: 'ignore',
    });
    foreign.unref();
    try {
      const pids = labPids();
      assert.ok(pids.includes(pid), `the sleeper ${pid} is among the lab's processes ${pids}`);

      execFileSync(process.execPath, [ctl, 'lab', 'down'], { encoding: 'utf8' });

      assert.equal(existsSync('/sys/class/net/flab2a'), false, 'stray veth removed');
      assertLabGone({ pids });
      assert.equal(processGone(foreign.pid!, 0), false, 'the foreign flanneld is still running');
    } finally {
      foreign.kill('SIGKILL');
    }
  });
});
