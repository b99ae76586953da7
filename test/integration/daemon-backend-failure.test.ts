// A backend that stops for good must take flanneld down with exit 1 and a log line (so a supervisor restarts it),
// not crash on an unhandled rejection or keep running without a data plane.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isRoot, nsRun } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { flanneldBuilt, readSubnetEnv, FlanneldHosts } from '../helpers/flanneld-hosts.ts';

describe('flanneld when its backend fails', {
  skip: !isRoot || !flanneldBuilt ? 'needs root and `npm run build`' : false,
}, () => {
  const u = new FlanneldHosts();
  before(() => u.start());
  after(() => u.cleanup());

  it('exits 1 with the reason when the udp device is deleted under it', async () => {
    const ns = u.addHost('fdbf', { eth0: '192.168.150.61' });
    const prefix = u.prefix(false);
    u.etcdctl(['put', `${prefix}/config`, '{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}']);
    const file = u.subnetFile();
    const d = u.flanneld(ns, u.etcdFlags(prefix, file));
    await until('subnet.env', () => readSubnetEnv(file), 20_000, 50);
    nsRun(ns, 'ip', ['link', 'del', 'flannel0']);
    const code = await d.exited(15_000);
    assert.equal(code, 1, d.log);
    assert.match(d.log, /Backend (failed: .+|stopped unexpectedly); shutting down/);
    assert.doesNotMatch(d.log, /UnhandledPromiseRejection|Exiting cleanly/);
  });
});
