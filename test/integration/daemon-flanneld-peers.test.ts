// flanneld processes with peers: convergence time, malformed leases, revocation, SIGTERM and restart, an etcd outage.
// Every daemon runs in its own namespace; etcd runs on the switch namespace of the test underlay.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  all,
  ETCD_ENDPOINT,
  type Flanneld,
  flanneldSkip,
  leaseOf,
  none,
  peerState,
  readSubnetEnv,
  FlanneldHosts,
} from '../helpers/flanneld-hosts.ts';
import { ipJson, nsRun } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';

describe('flanneld daemon: peers, revocation, shutdown, etcd outage', { skip: flanneldSkip }, () => {
  const u = new FlanneldHosts();
  const watchers: ChildProcess[] = [];
  before(async () => {
    await u.start();
  });
  after(async () => {
    for (const w of watchers) w.kill('SIGKILL');
    await u.cleanup();
  });

  interface Host {
    ns: string;
    ip: string;
    file: string;
    d: Flanneld;
  }
  /** A new host running flanneld; resolves once it wrote subnet.env. */
  async function host(prefix: string, ip: string, extra: string[] = []): Promise<Host> {
    const ns = u.addHost('fdpeer', { eth0: ip });
    const file = u.subnetFile();
    const d = u.flanneld(ns, [...u.etcdFlags(prefix, file), ...extra]);
    await d.ready();
    return { ns, ip, file, d };
  }
  function lease(prefix: string, ip: string) {
    const l = leaseOf(u.leases(prefix), ip);
    assert.ok(l, `lease of ${ip} under ${prefix}`);
    return l;
  }
  const stateFor = (on: Host, prefix: string, peer: string) => {
    const l = lease(prefix, peer);
    return peerState(on.ns, l.subnet, l.mac, peer);
  };

  /** `etcdctl watch` on the subnets: the local time each key was first put, as etcd delivers it. */
  async function watchPuts(prefix: string): Promise<Map<string, number>> {
    const seen = new Map<string, number>();
    const w = spawn(
      'ip',
      ['netns', 'exec', u.sw, 'etcdctl', `--endpoints=${ETCD_ENDPOINT}`, 'watch', '--prefix', `${prefix}/subnets/`],
      { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    watchers.push(w);
    let buf = '';
    w.stdout!.on('data', (b) => {
      const now = Date.now();
      buf += b;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) if (l.startsWith(`${prefix}/subnets/`) && !seen.has(l)) seen.set(l, now);
    });
    // etcdctl prints nothing once the watch is set up; give it time before anything is put.
    await new Promise((r) => setTimeout(r, 1000));
    return seen;
  }

  it('a peer joining and leaving converges on the other host within 1 s', async (t) => {
    const prefix = u.prefix();
    const a = await host(prefix, '192.168.150.51');
    const puts = await watchPuts(prefix);
    const b = await host(prefix, '192.168.150.52');
    const bl = lease(prefix, b.ip);
    const appeared = await until("the watch to see B's lease", () => puts.get(bl.key), 5_000, 50);
    await until('A to program B', () => all(peerState(a.ns, bl.subnet, bl.mac, b.ip)), 5_000, 20);
    const addMs = Date.now() - appeared;
    assert.ok(addMs <= 1000, `A programmed B ${addMs} ms after B's lease appeared`);
    // The reverse direction too: B knows A from its first listing.
    assert.ok(all(stateFor(b, prefix, a.ip)));

    // B goes away for good: stopped, and its lease deleted (as an operator or expiry would).
    b.d.signal('SIGTERM');
    assert.equal(await b.d.exited(10_000), 0);
    assert.ok(all(peerState(a.ns, bl.subnet, bl.mac, b.ip)), 'a stopped peer keeps its lease and A keeps its state');
    const deleted = Date.now();
    u.etcdctl(['del', bl.key]);
    await until('A to remove B', () => none(peerState(a.ns, bl.subnet, bl.mac, b.ip)), 5_000, 20);
    const delMs = Date.now() - deleted;
    assert.ok(delMs <= 1000, `A removed B ${delMs} ms after the delete`);
    t.diagnostic(`added in ${addMs} ms, removed in ${delMs} ms`);
    assert.ok(a.d.running);
  });

  it('logs a malformed lease, keeps running and still converges on a later valid peer', async () => {
    const prefix = u.prefix();
    const a = await host(prefix, '192.168.150.53');
    // Not A's own (randomly chosen) subnet: the put would overwrite A's lease instead of adding a peer.
    const bad = lease(prefix, a.ip).subnet === '10.244.77.0/24' ? 78 : 77;
    const badKey = `${prefix}/subnets/10.244.${bad}.0-24`;
    u.etcdctl(['put', badKey, '{"PublicIP":"192.168.150.99","BackendType":"vxlan","BackendData":']);
    await a.d.waitLog(new RegExp(`10\\.244\\.${bad}\\.0-24`), 5_000);
    assert.match(a.d.log, /malformed lease/);
    const b = await host(prefix, '192.168.150.54');
    await until('A to program B', () => all(stateFor(a, prefix, b.ip)), 5_000, 50);
    assert.ok(a.d.running && b.d.running, 'neither daemon stopped');
    assert.deepEqual(
      ipJson(a.ns, ['route', 'show', `10.244.${bad}.0/24`]),
      [],
      'nothing programmed for the malformed lease',
    );
    assert.ok(u.leases(prefix).has(badKey), 'the malformed key is left alone');
  });

  it('exits 0 when its own lease is deleted, leaving the kernel state in place', async () => {
    const prefix = u.prefix();
    const a = await host(prefix, '192.168.150.55');
    const b = await host(prefix, '192.168.150.56');
    await until('A to program B', () => all(stateFor(a, prefix, b.ip)), 5_000, 50);
    const bl = lease(prefix, b.ip);
    u.etcdctl(['del', lease(prefix, a.ip).key]);
    assert.equal(await a.d.exited(10_000), 0, a.d.log);
    assert.match(a.d.log, /Lease has been revoked\. Shutting down daemon\./);
    assert.match(a.d.log, /Exiting cleanly\.\.\./);
    assert.equal(ipJson(a.ns, ['link', 'show', 'flannel.1']).length, 1, 'flannel.1 stays');
    assert.ok(all(peerState(a.ns, bl.subnet, bl.mac, b.ip)), 'the route, neighbour and fdb entry to B stay');
    assert.ok(b.d.running, 'the peer keeps running');
  });

  it('SIGTERM exits 0 and removes nothing; a restart reuses the subnet without a new key', async () => {
    const prefix = u.prefix();
    const a = await host(prefix, '192.168.150.57');
    const b = await host(prefix, '192.168.150.58');
    await until('A to program B', () => all(stateFor(a, prefix, b.ip)), 5_000, 50);
    const before = readSubnetEnv(a.file)!;
    const al = lease(prefix, a.ip);
    const bl = lease(prefix, b.ip);
    a.d.signal('SIGTERM');
    assert.equal(await a.d.exited(10_000), 0, a.d.log);
    assert.match(a.d.log, /Exiting cleanly\.\.\./);
    assert.equal(ipJson(a.ns, ['link', 'show', 'flannel.1']).length, 1, 'flannel.1 stays');
    assert.ok(all(peerState(a.ns, bl.subnet, bl.mac, b.ip)), 'state for B stays');
    assert.match(nsRun(a.ns, 'iptables', ['-S']), /-A FLANNEL-FWD /, 'forward rules stay');
    assert.equal(u.leases(prefix).size, 2, 'the lease is not deleted on shutdown');

    const again = u.flanneld(a.ns, u.etcdFlags(prefix, a.file));
    await again.ready();
    assert.match(again.log, /Etcd Local Manager with Previous Subnet: 10\.244\.\d+\.0\/24/);
    assert.match(
      again.log,
      new RegExp(
        `Found lease \\(ip: ${al.subnet.replace(/\./g, '\\.')} .*\\) for current IP \\(192\\.168\\.150\\.57\\), reusing`,
      ),
    );
    assert.equal(readSubnetEnv(a.file)!.FLANNEL_SUBNET, before.FLANNEL_SUBNET);
    const leases = u.leases(prefix);
    assert.equal(leases.size, 2, `no new key: ${[...leases.keys()]}`);
    assert.equal(lease(prefix, a.ip).key, al.key);
    await until('A to program B again', () => all(stateFor(a, prefix, b.ip)), 5_000, 50);

    // Lease gone while the daemon was down (expired, deleted): the subnet file brings the same subnet back.
    again.signal('SIGTERM');
    assert.equal(await again.exited(10_000), 0, again.log);
    u.etcdctl(['del', al.key]);
    const third = u.flanneld(a.ns, u.etcdFlags(prefix, a.file));
    await third.ready();
    assert.match(
      third.log,
      new RegExp(`Found previously leased subnet \\(${al.subnet.replace(/\./g, '\\.')}\\), reusing`),
    );
    assert.equal(readSubnetEnv(a.file)!.FLANNEL_SUBNET, before.FLANNEL_SUBNET);
    assert.equal(lease(prefix, a.ip).key, al.key);
    assert.equal(u.leases(prefix).size, 2);
  });

  it('exits 1 on an unknown backend type without taking a lease', async () => {
    const prefix = u.prefix(false);
    u.etcdctl(['put', `${prefix}/config`, '{"Network":"10.244.0.0/16","Backend":{"Type":"nosuch"}}']);
    const ns = u.addHost('fdpeer', { eth0: '192.168.150.59' });
    const d = u.flanneld(ns, u.etcdFlags(prefix));
    assert.equal(await d.exited(20_000), 1, d.log);
    assert.match(d.log, /Error registering network: unknown backend type: nosuch/);
    assert.equal(u.leases(prefix).size, 0);
  });

  it('refuses to start a second node with the same public IP instead of sharing its subnet', async () => {
    const prefix = u.prefix();
    const a = await host(prefix, '192.168.150.64');
    const before = lease(prefix, a.ip);
    // Vagrant's NAT address on every VM: B's flannel interface has another address, its public IP is A's.
    const ns = u.addHost('fdpeer', { eth0: '192.168.150.65' });
    const file = u.subnetFile();
    const b = u.flanneld(ns, [...u.etcdFlags(prefix, file), `--public-ip=${a.ip}`]);
    assert.equal(await b.exited(20_000), 1, b.log);
    const mac = (ipJson(ns, ['link', 'show', 'flannel.1'])[0] as { address: string }).address;
    assert.match(
      b.log,
      new RegExp(`same public IP 192\\.168\\.150\\.64: its VtepMAC is ${before.mac}, this node's is ${mac}`),
    );
    assert.match(b.log, /--iface, --iface-regex, --iface-can-reach or --public-ip/);
    assert.equal(readSubnetEnv(file), undefined, 'B wrote no subnet.env');
    assert.match(a.d.log, /same public IP 192\.168\.150\.64.*Writing this node's lease back/);
    await until("A's lease back with its VtepMAC", () => lease(prefix, a.ip).mac === before.mac, 5_000, 50);
    assert.equal(u.leases(prefix).size, 1, 'one subnet, held by A');
    assert.ok(a.d.running);
  });

  // Last: it stops the shared etcd.
  it('keeps running and keeps the data plane while etcd is down; converges on a new peer once it is back', async () => {
    const prefix = u.prefix();
    const a = await host(prefix, '192.168.150.61');
    const b = await host(prefix, '192.168.150.62');
    await until('A to program B', () => all(stateFor(a, prefix, b.ip)), 5_000, 50);
    const bl = lease(prefix, b.ip);
    await u.etcd!.stop();
    // About 4 s of outage: long enough for several failed reconnects (backoff 100 ms → 5 s).
    const end = Date.now() + 4000;
    while (Date.now() < end) {
      assert.ok(a.d.running && b.d.running, `a daemon died during the outage:\n${a.d.log}\n${b.d.log}`);
      assert.ok(all(peerState(a.ns, bl.subnet, bl.mac, b.ip)), 'A lost its state for B during the outage');
      await new Promise((r) => setTimeout(r, 250));
    }
    // A daemon stopped while etcd is unreachable still exits promptly and cleanly.
    b.d.signal('SIGTERM');
    assert.equal(await b.d.exited(10_000), 0, b.d.log);
    assert.match(b.d.log, /Exiting cleanly\.\.\./);
    await u.etcd!.restart();
    const c = await host(prefix, '192.168.150.63');
    await until('A to program C after the outage', () => all(stateFor(a, prefix, c.ip)), 15_000, 100);
    assert.ok(all(peerState(a.ns, bl.subnet, bl.mac, b.ip)), 'B (stopped, lease kept) is still programmed');
    assert.ok(a.d.running);
    assert.doesNotMatch(a.d.log, /Lease has been revoked/);
  });
});
