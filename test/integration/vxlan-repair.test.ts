// Two dual-stack hosts running our vxlan backend: a live peer's route, neighbour or FDB entry deleted (or changed) by
// hand comes back, on flannel.1 and flannel-v6.1, and is counted; entries that belong to no peer stay as they are.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ipJson, ipn, isRoot, linkMac, Netns, nsRun, pings } from '../helpers/netns.ts';
import { eventually, until } from '../helpers/wait.ts';
import { LogRecorder } from '../helpers/log.ts';
import { Underlay, underlayPerSuite } from '../helpers/backend-node.ts';
import { MemoryCluster } from '../helpers/memory-subnet-manager.ts';
import {
  fdb4,
  fdb6,
  neigh4,
  neigh6,
  routes4,
  routes6,
  VxlanNode,
  vxlanConfig,
  VXLAN_V4 as V4,
  VXLAN_V6 as V6,
} from '../helpers/vxlan-nodes.ts';
import { DualStackVxlanNode, dualStackHost, twoDualStackHosts } from '../helpers/dualstack-nodes.ts';
import type { RepairCounts } from '../../src/backend/backend.ts';

const bridge = (ns: string, ...args: string[]) => nsRun(ns, 'bridge', args);
/** The counters moved by exactly `delta` since `before`. */
const moved = (before: RepairCounts, delta: Partial<RepairCounts>): RepairCounts => ({
  route: before.route + (delta.route ?? 0),
  neigh: before.neigh + (delta.neigh ?? 0),
  fdb: before.fdb + (delta.fdb ?? 0),
});
/** With the default 10 s period only the event on the device can bring an entry back this fast. */
const SOON_MS = 2000;
/** The counters as `want`: the kernel shows a restored entry a moment before its ACK reaches us and it is counted. */
const counted = (n: VxlanNode, want: RepairCounts) => eventually(() => n.vxlan.repairs(), want, 1000);

describe('vxlan backend repairs its own kernel state', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  const cluster = twoDualStackHosts('vxlan');
  let a: DualStackVxlanNode;
  let b: DualStackVxlanNode;
  let logs: LogRecorder;
  let macB: string;
  let macB6: string;

  before(async () => {
    logs = new LogRecorder();
    const u = new Underlay(netns);
    const nsA = dualStackHost(u, 'fl-ra', '192.168.204.1', 'fd12:204::1');
    const nsB = dualStackHost(u, 'fl-rb', '192.168.204.2', 'fd12:204::2');
    // A checks every 10 s (the default), so quick repairs there come from the kernel's events; B checks often.
    a = await new DualStackVxlanNode(nsA, '192.168.204.1', 'fd12:204::1', '10.244.1.0/24', cluster).start();
    b = await new DualStackVxlanNode(nsB, '192.168.204.2', 'fd12:204::2', '10.244.2.0/24', cluster)
      .tune({ checkIntervalMs: 300 })
      .start();
    macB = linkMac(b.ns, V4);
    macB6 = linkMac(b.ns, V6);
    await until(
      'A to program B on both devices',
      () =>
        routes4(a.ns).length === 1 && fdb4(a.ns).length === 1 && routes6(a.ns).length === 1 && fdb6(a.ns).length === 1,
      3000,
      25,
    );
    await until('B to program A', () => routes4(b.ns).length === 1 && fdb4(b.ns).length === 1, 3000, 25);
  });

  after(async () => {
    logs?.stop();
    await a?.stop().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    netns.cleanup();
  });

  it('starts with nothing repaired', () => {
    assert.deepEqual(a.vxlan.repairs(), { route: 0, neigh: 0, fdb: 0 });
  });

  it('restores a deleted route on flannel.1 within about a second, counts it and says so', async () => {
    const before = a.vxlan.repairs();
    ipn(a.ns, 'route', 'del', '10.244.2.0/24', 'dev', V4);
    assert.equal(routes4(a.ns).length, 0);
    await until(
      'the route back',
      () =>
        routes4(a.ns).some(
          (r: any) => r.dst === '10.244.2.0/24' && r.gateway === '10.244.2.0' && r.flags.includes('onlink'),
        ),
      SOON_MS,
      25,
    );
    await counted(a, moved(before, { route: 1 }));
    assert.equal(
      logs.find('restored missing route 10.244.2.0/24 via 10.244.2.0 onlink for peer 10.244.2.0/24').length,
      1,
    );
  });

  it('restores a deleted neighbour on flannel.1 (PERMANENT, the peer VtepMAC)', async () => {
    const before = a.vxlan.repairs();
    ipn(a.ns, 'neigh', 'del', '10.244.2.0', 'dev', V4);
    assert.equal(neigh4(a.ns).length, 0);
    await until(
      'the neighbour back',
      () => neigh4(a.ns).some((n: any) => n.dst === '10.244.2.0' && n.lladdr === macB),
      SOON_MS,
      25,
    );
    await counted(a, moved(before, { neigh: 1 }));
    assert.equal(logs.find(`restored missing neighbour 10.244.2.0 lladdr ${macB} for peer 10.244.2.0/24`).length, 1);
  });

  it('restores a deleted FDB entry on flannel.1, and the peer is reachable again', async () => {
    const before = a.vxlan.repairs();
    bridge(a.ns, 'fdb', 'del', macB, 'dev', V4, 'dst', '192.168.204.2');
    assert.equal(fdb4(a.ns).length, 0);
    await until(
      'the FDB entry back',
      () => fdb4(a.ns).some((f: any) => f.mac === macB && f.dst === '192.168.204.2' && f.state === 'permanent'),
      SOON_MS,
      25,
    );
    await counted(a, moved(before, { fdb: 1 }));
    assert.equal(logs.find(`restored missing FDB entry ${macB} dst 192.168.204.2 for peer 10.244.2.0/24`).length, 1);
    assert.ok(pings(a.ns, '10.244.2.0', { src: '10.244.1.0', count: 2 }), 'A reaches B over flannel.1');
  });

  it('restores all three at once on flannel.1', async () => {
    const before = a.vxlan.repairs();
    ipn(a.ns, 'route', 'del', '10.244.2.0/24', 'dev', V4);
    ipn(a.ns, 'neigh', 'del', '10.244.2.0', 'dev', V4);
    bridge(a.ns, 'fdb', 'del', macB, 'dev', V4, 'dst', '192.168.204.2');
    await until(
      'all three back',
      () => routes4(a.ns).length === 1 && neigh4(a.ns).length === 1 && fdb4(a.ns).length === 1,
      SOON_MS,
      25,
    );
    await counted(a, moved(before, { route: 1, neigh: 1, fdb: 1 }));
  });

  it('restores a deleted route, neighbour and FDB entry on flannel-v6.1', async () => {
    let before = a.vxlan.repairs();
    ipn(a.ns, '-6', 'route', 'del', 'fd00:10:244:2::/64', 'dev', V6);
    await until(
      'the v6 route back',
      () => routes6(a.ns).some((r: any) => r.dst === 'fd00:10:244:2::/64' && r.gateway === 'fd00:10:244:2::'),
      SOON_MS,
      25,
    );
    await counted(a, moved(before, { route: 1 }));

    before = a.vxlan.repairs();
    ipn(a.ns, '-6', 'neigh', 'del', 'fd00:10:244:2::', 'dev', V6);
    await until(
      'the v6 neighbour back',
      () => neigh6(a.ns).some((n: any) => n.dst === 'fd00:10:244:2::' && n.lladdr === macB6),
      SOON_MS,
      25,
    );
    await counted(a, moved(before, { neigh: 1 }));

    before = a.vxlan.repairs();
    bridge(a.ns, 'fdb', 'del', macB6, 'dev', V6, 'dst', 'fd12:204::2');
    await until(
      'the v6 FDB entry back',
      () => fdb6(a.ns).some((f: any) => f.mac === macB6 && f.dst === 'fd12:204::2'),
      SOON_MS,
      25,
    );
    await counted(a, moved(before, { fdb: 1 }));
    assert.equal(
      logs.find(`restored missing FDB entry ${macB6} dst fd12:204::2 for peer fd00:10:244:2::/64`).length,
      1,
    );
    // The v4 side saw none of it.
    assert.equal(routes4(a.ns).length, 1);
  });

  it('leaves hand-made entries that belong to no peer where they are', async () => {
    // A neighbour and FDB entries for MACs/IPs of no lease (one the all-zeros flood entry), the same on the v6 device …
    ipn(a.ns, 'neigh', 'replace', '10.244.99.0', 'lladdr', '0e:00:00:00:99:99', 'dev', V4, 'nud', 'permanent');
    bridge(a.ns, 'fdb', 'append', '0e:00:00:00:98:98', 'dev', V4, 'dst', '192.168.204.98', 'self', 'permanent');
    bridge(a.ns, 'fdb', 'append', '00:00:00:00:00:00', 'dev', V4, 'dst', '192.168.204.97', 'self', 'permanent');
    ipn(
      a.ns,
      '-6',
      'neigh',
      'replace',
      'fd00:10:244:99::',
      'lladdr',
      '0e:00:00:00:99:96',
      'dev',
      V6,
      'nud',
      'permanent',
    );
    bridge(a.ns, 'fdb', 'append', '0e:00:00:00:98:96', 'dev', V6, 'dst', 'fd12:204::98', 'self', 'permanent');
    // … and a neighbour for B's subnet address on another device.
    ipn(a.ns, 'neigh', 'replace', '10.244.2.0', 'lladdr', '0e:00:00:00:97:97', 'dev', 'eth0', 'nud', 'permanent');
    const before = a.vxlan.repairs();
    // A deletion on each device makes A check both.
    ipn(a.ns, 'route', 'del', '10.244.2.0/24', 'dev', V4);
    ipn(a.ns, '-6', 'route', 'del', 'fd00:10:244:2::/64', 'dev', V6);
    await until('both routes back', () => routes4(a.ns).length === 1 && routes6(a.ns).length === 1, SOON_MS, 25);
    await counted(a, moved(before, { route: 2 }));

    assert.deepEqual(
      neigh4(a.ns)
        .map((n: any) => `${n.dst} ${n.lladdr}`)
        .sort(),
      [`10.244.2.0 ${macB}`, '10.244.99.0 0e:00:00:00:99:99'],
    );
    assert.deepEqual(
      fdb4(a.ns)
        .map((f: any) => `${f.mac} ${f.dst}`)
        .sort(),
      ['00:00:00:00:00:00 192.168.204.97', '0e:00:00:00:98:98 192.168.204.98', `${macB} 192.168.204.2`].sort(),
    );
    assert.deepEqual(
      neigh6(a.ns)
        .map((n: any) => n.dst)
        .sort(),
      ['fd00:10:244:2::', 'fd00:10:244:99::'],
    );
    assert.deepEqual(
      fdb6(a.ns)
        .map((f: any) => `${f.mac} ${f.dst}`)
        .sort(),
      ['0e:00:00:00:98:96 fd12:204::98', `${macB6} fd12:204::2`].sort(),
    );
    assert.ok(
      ipJson(a.ns, ['neigh', 'show', 'dev', 'eth0']).some(
        (n: any) => n.dst === '10.244.2.0' && n.lladdr === '0e:00:00:00:97:97',
      ),
      'eth0 untouched',
    );

    ipn(a.ns, 'neigh', 'del', '10.244.99.0', 'dev', V4);
    bridge(a.ns, 'fdb', 'del', '0e:00:00:00:98:98', 'dev', V4, 'dst', '192.168.204.98');
    bridge(a.ns, 'fdb', 'del', '00:00:00:00:00:00', 'dev', V4, 'dst', '192.168.204.97');
    ipn(a.ns, '-6', 'neigh', 'del', 'fd00:10:244:99::', 'dev', V6);
    bridge(a.ns, 'fdb', 'del', '0e:00:00:00:98:96', 'dev', V6, 'dst', 'fd12:204::98');
    ipn(a.ns, 'neigh', 'del', '10.244.2.0', 'dev', 'eth0');
  });

  it('puts back an entry changed rather than deleted at the next periodic check', async () => {
    const macA = linkMac(a.ns, V4);
    const before = b.vxlan.repairs();
    // Replacing sends no deletion: only B's periodic check (every 300 ms) finds these.
    ipn(b.ns, 'neigh', 'replace', '10.244.1.0', 'lladdr', '0e:00:00:00:55:55', 'dev', V4, 'nud', 'permanent');
    ipn(b.ns, 'route', 'replace', '10.244.1.0/24', 'via', '192.168.204.1', 'dev', 'eth0');
    await until(
      'B to put its entries for A back',
      () =>
        neigh4(b.ns).some((n: any) => n.dst === '10.244.1.0' && n.lladdr === macA) &&
        routes4(b.ns).some((r: any) => r.dst === '10.244.1.0/24' && r.gateway === '10.244.1.0'),
      3000,
      25,
    );
    await counted(b, moved(before, { neigh: 1, route: 1 }));
    assert.ok(
      !ipJson(b.ns, ['route', 'show', '10.244.1.0/24']).some((r: any) => r.dev === 'eth0'),
      'the hand-made route was replaced',
    );
  });

  it('retries a repair the kernel refuses at every check, logs it once, and restores it once it can', async () => {
    const before = b.vxlan.repairs();
    const failed = () =>
      logs.find('failed to restore missing route 10.244.1.0/24 via 10.244.1.0 onlink for peer 10.244.1.0/24');
    // A device that is down loses its routes and refuses new ones (ENETDOWN).
    ipn(b.ns, 'link', 'set', V4, 'down');
    await until('the refusal to be logged', () => failed().length > 0, 3000, 25);
    // Several more checks (300 ms apart) refuse the same way, quietly.
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(failed().length, 1, failed().join('\n'));
    assert.equal(routes4(b.ns).length, 0);
    ipn(b.ns, 'link', 'set', V4, 'up');
    await until(
      'the route back once the device is up',
      () => routes4(b.ns).some((r: any) => r.dst === '10.244.1.0/24'),
      3000,
      25,
    );
    await eventually(() => b.vxlan.repairs().route, before.route + 1, 1000);
    assert.ok(pings(b.ns, '10.244.1.0', { src: '10.244.2.0', count: 2 }), 'B reaches A over flannel.1');
  });
});

describe('vxlan backend with DirectRouting repairs its direct routes', { skip: !isRoot && 'needs root' }, () => {
  const u = underlayPerSuite<VxlanNode>();

  it('restores a deleted direct route on eth0 within about a second and leaves flannel.1 empty', async () => {
    const nsC = u.host('fl-rc', '192.168.205.3');
    const nsD = u.host('fl-rd', '192.168.205.4');
    const cluster = new MemoryCluster(vxlanConfig({ DirectRouting: true }));
    const c = new VxlanNode(nsC, '192.168.205.3', '10.244.3.0/24', cluster);
    const d = new VxlanNode(nsD, '192.168.205.4', '10.244.4.0/24', cluster);
    u.nodes.push(await c.start(), await d.start());
    const direct = () =>
      ipJson(nsC, ['route', 'show', '10.244.4.0/24']).some(
        (r: any) => r.gateway === '192.168.205.4' && r.dev === 'eth0',
      );
    await until('C to route to D directly', direct, 3000, 25);

    ipn(nsC, 'route', 'del', '10.244.4.0/24', 'via', '192.168.205.4', 'dev', 'eth0');
    assert.equal(direct(), false);
    await until('the direct route back', direct, SOON_MS, 25);
    await counted(c, { route: 1, neigh: 0, fdb: 0 });
    assert.deepEqual(routes4(nsC), []);
    assert.deepEqual(fdb4(nsC), []);
    assert.ok(pings(nsC, '10.244.4.0', { src: '10.244.3.0', count: 2 }), 'C reaches D directly');
  });
});
