// The C addon: setns per thread through withNetns (always switching back), TUN creation, and the loader.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readlinkSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { loadNative, nativeCandidates, netnsPath, tunOpen, withNetns } from '../../src/native/index.ts';
import { ipJson, isRoot, Netns } from '../helpers/netns.ts';

const ownNs = () => readlinkSync('/proc/thread-self/ns/net');

describe('native addon', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  let ns: string;

  before(() => {
    ns = netns.add('fl-nat');
  });
  after(() => netns.cleanup());

  it('runs a function inside the namespace and comes back', () => {
    const home = ownNs();
    const inside = withNetns(netnsPath(ns), () => ownNs());
    assert.notEqual(inside, home);
    // The thread's namespace while inside is the one bound at /var/run/netns/NAME (same inode).
    assert.equal(inside, `net:[${statSync(`/var/run/netns/${ns}`).ino}]`);
    assert.equal(ownNs(), home);
    // Processes spawned synchronously inside see the namespace's devices (only lo here).
    const links = withNetns(netnsPath(ns), () => execFileSync('ip', ['-json', 'link'], { encoding: 'utf8' }));
    assert.deepEqual(
      JSON.parse(links).map((l: any) => l.ifname),
      ['lo'],
    );
  });

  it('switches back even when the function throws', () => {
    const home = ownNs();
    assert.throws(
      () =>
        withNetns(netnsPath(ns), () => {
          throw new Error('boom');
        }),
      /boom/,
    );
    assert.equal(ownNs(), home);
  });

  it('names a missing namespace and how to create it', () => {
    assert.throws(
      () => withNetns('/var/run/netns/fl-does-not-exist', () => 1),
      /network namespace \/var\/run\/netns\/fl-does-not-exist: .*ENOENT.*ip netns add NAME/,
    );
    assert.equal(netnsPath('abc'), '/var/run/netns/abc');
    assert.equal(netnsPath('/proc/1/ns/net'), '/proc/1/ns/net');
    assert.throws(() => netnsPath(''), /empty name/);
  });

  it('reports setns errors with the errno name', () => {
    // A regular file is not a namespace: the kernel says EINVAL.
    const fd = openSync('/proc/self/stat', 'r');
    try {
      assert.throws(
        () => loadNative().setns(fd, 0x40000000),
        (e: any) => e.code === 'EINVAL' && /setns: EINVAL/.test(e.message),
      );
    } finally {
      closeSync(fd);
    }
  });

  it('opens a TUN device in the namespace it was asked in, without packet info', () => {
    const tun = withNetns(netnsPath(ns), () => tunOpen('fltun0'));
    try {
      assert.equal(tun.name, 'fltun0');
      assert.ok(tun.fd > 2);
      const [link] = ipJson(ns, ['-d', 'link', 'show', 'fltun0']);
      assert.equal(link.linkinfo.info_kind, 'tun');
      assert.equal(link.linkinfo.info_data.type, 'tun');
      assert.equal(link.linkinfo.info_data.pi, false);
    } finally {
      closeSync(tun.fd);
    }
    assert.throws(() => tunOpen('x'.repeat(16)), /longer than 15 characters/);
  });

  it('looks for the addon in FLANNEL_NATIVE_PATH first, then next to the script, then build/Release', () => {
    const saved = process.env.FLANNEL_NATIVE_PATH;
    process.env.FLANNEL_NATIVE_PATH = '/opt/x/flannel_native.node';
    try {
      const c = nativeCandidates();
      assert.equal(c[0], '/opt/x/flannel_native.node');
      assert.ok(c.some((p) => p.endsWith('/build/Release/flannel_native.node')));
    } finally {
      if (saved === undefined) delete process.env.FLANNEL_NATIVE_PATH;
      else process.env.FLANNEL_NATIVE_PATH = saved;
    }
  });
});
