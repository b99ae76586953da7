import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';
import { missingEntries, type KernelEntries, type PeerPlan } from '../../src/backend/vxlan/plan.ts';
import { mayHaveRemoved, type RepairTarget } from '../../src/backend/vxlan/repair.ts';
import type { PeerProgrammer } from '../../src/backend/vxlan/peers.ts';
import { Checker } from '../../src/backend/lease-loop.ts';
import { Serial } from '../../src/util/tasks.ts';
import type { FdbEntry, NeighbourInfo } from '../../src/netlink/index.ts';
import { neighbour, route, vtepFdb } from '../helpers/inspect-fixtures.ts';

const VX = 5;
const EXT = 2;
const MAC = '0e:00:00:00:00:02';
const overlay = (subnet: string, mac = MAC, publicIP = '192.168.1.12'): PeerPlan => ({
  mode: 'overlay',
  subnet: IPv4Net.parse(subnet),
  publicIP,
  vtepMac: mac,
});
const neigh = (n: Partial<NeighbourInfo> & { ip: string }): NeighbourInfo => ({ ...neighbour(VX, n.ip, MAC), ...n });
const fdb = (f: Partial<FdbEntry> & { mac: string }): FdbEntry => ({ ...vtepFdb(VX, f.mac), ...f });
/** The kernel holding exactly what overlay('10.244.2.0/24') needs, changed by `over`. */
const programmed = (over: Partial<KernelEntries> = {}): KernelEntries => ({
  routes: [route('10.244.2.0/24', VX, { gateway: '10.244.2.0', onlink: true })],
  neighbours: [neigh({ ip: '10.244.2.0' })],
  fdb: [fdb({ mac: MAC, dst: '192.168.1.12' })],
  ...over,
});
const kinds = (plan: PeerPlan, k: KernelEntries) => missingEntries(plan, k, VX).map((e) => e.kind);

describe('vxlan repair: what of a peer is missing from the kernel', () => {
  it('finds nothing missing when the neighbour, FDB entry and route are there', () => {
    assert.deepEqual(missingEntries(overlay('10.244.2.0/24'), programmed(), VX), []);
  });

  it('names each deleted entry, in the order they are added', () => {
    assert.deepEqual(missingEntries(overlay('10.244.2.0/24'), programmed({ routes: [] }), VX), [
      { kind: 'route', dst: '10.244.2.0/24', gateway: '10.244.2.0', onVxlan: true },
    ]);
    assert.deepEqual(missingEntries(overlay('10.244.2.0/24'), programmed({ neighbours: [] }), VX), [
      { kind: 'neighbour', ip: '10.244.2.0', mac: MAC },
    ]);
    assert.deepEqual(missingEntries(overlay('10.244.2.0/24'), programmed({ fdb: [] }), VX), [
      { kind: 'fdb', mac: MAC, dst: '192.168.1.12' },
    ]);
    assert.deepEqual(kinds(overlay('10.244.2.0/24'), { routes: [], neighbours: [], fdb: [] }), [
      'neighbour',
      'fdb',
      'route',
    ]);
  });

  it('counts an entry changed by hand as missing: another MAC, not PERMANENT, another gateway or device', () => {
    const plan = overlay('10.244.2.0/24');
    assert.deepEqual(kinds(plan, programmed({ neighbours: [neigh({ ip: '10.244.2.0', mac: '0e:00:00:00:00:99' })] })), [
      'neighbour',
    ]);
    assert.deepEqual(
      kinds(
        plan,
        programmed({ neighbours: [neigh({ ip: '10.244.2.0', mac: null, permanent: false, state: ['failed'] })] }),
      ),
      ['neighbour'],
    );
    assert.deepEqual(kinds(plan, programmed({ fdb: [fdb({ mac: MAC, dst: '192.168.1.99' })] })), ['fdb']);
    assert.deepEqual(kinds(plan, programmed({ routes: [route('10.244.2.0/24', EXT, { gateway: '192.168.1.1' })] })), [
      'route',
    ]);
    assert.deepEqual(
      kinds(plan, programmed({ routes: [route('10.244.2.0/24', 9, { gateway: '10.244.2.0', onlink: true })] })),
      ['route'],
    );
  });

  it('does not see entries on other devices, in other tables or of another type as ours', () => {
    const plan = overlay('10.244.2.0/24');
    const k = programmed({
      routes: [
        route('10.244.2.0/24', VX, { gateway: '10.244.2.0', table: 100 }),
        route('10.244.2.0/24', VX, { type: 'blackhole' }),
      ],
      neighbours: [neigh({ ip: '10.244.2.0', index: 9 })],
      fdb: [fdb({ mac: MAC, dst: '192.168.1.12', index: 9 })],
    });
    assert.deepEqual(kinds(plan, k), ['neighbour', 'fdb', 'route']);
  });

  it('ignores what belongs to no peer: foreign neighbours, FDB entries and extra dsts for the peer MAC', () => {
    const k = programmed();
    k.neighbours.push(neigh({ ip: '10.244.99.0', mac: '0e:00:00:00:00:99' }));
    k.fdb.push(fdb({ mac: '0e:00:00:00:00:98', dst: '192.168.1.98' }), fdb({ mac: MAC, dst: '192.168.1.97' }));
    assert.deepEqual(missingEntries(overlay('10.244.2.0/24'), k, VX), []);
  });

  it('checks a direct peer for its route via the PublicIP off the vxlan device, and nothing else', () => {
    const plan: PeerPlan = { mode: 'direct', subnet: IPv4Net.parse('10.244.2.0/24'), publicIP: '192.168.1.12' };
    const direct = route('10.244.2.0/24', EXT, { gateway: '192.168.1.12' });
    assert.deepEqual(missingEntries(plan, { routes: [direct], neighbours: [], fdb: [] }, VX), []);
    assert.deepEqual(missingEntries(plan, { routes: [], neighbours: [], fdb: [] }, VX), [
      { kind: 'route', dst: '10.244.2.0/24', gateway: '192.168.1.12', onVxlan: false },
    ]);
  });

  it('works alike for an IPv6 peer on flannel-v6.<VNI>', () => {
    const plan: PeerPlan = {
      mode: 'overlay',
      subnet: IPv6Net.parse('fd00:10:244:2::/64'),
      publicIP: 'fd12::2',
      vtepMac: MAC,
    };
    const k: KernelEntries = {
      routes: [route('fd00:10:244:2::/64', VX, { gateway: 'fd00:10:244:2::', onlink: true, priority: 1024 })],
      neighbours: [neigh({ ip: 'fd00:10:244:2::' })],
      fdb: [fdb({ mac: MAC, dst: 'fd12::2' })],
    };
    assert.deepEqual(missingEntries(plan, k, VX), []);
    assert.deepEqual(kinds(plan, { ...k, fdb: [] }), ['fdb']);
  });
});

describe('vxlan repair: which kernel events call for a check', () => {
  const target = (index: number, peers: PeerPlan[]): RepairTarget => ({
    family: 4,
    spec: { name: 'flannel.1' },
    device: { index },
    programmer: {} as PeerProgrammer,
    peers: new Map(peers.map((p) => [p.subnet.toString(), p])),
  });
  const targets = [
    target(VX, [
      overlay('10.244.2.0/24'),
      { mode: 'direct', subnet: IPv4Net.parse('10.244.3.0/24'), publicIP: '192.168.1.13' },
    ]),
  ];

  it('deletions on the flannel device and lost events', () => {
    assert.equal(
      mayHaveRemoved({ type: 'del', kind: 'neighbour', neighbour: neigh({ ip: '10.244.2.0' }) }, targets),
      true,
    );
    assert.equal(
      mayHaveRemoved({ type: 'del', kind: 'fdb', fdb: fdb({ mac: MAC, dst: '192.168.1.12' }) }, targets),
      true,
    );
    assert.equal(mayHaveRemoved({ type: 'del', kind: 'route', route: route('10.244.7.0/24', VX) }, targets), true);
    assert.equal(mayHaveRemoved({ type: 'overrun' }, targets), true);
  });

  it('a deleted route to a peer subnet on another device (DirectRouting)', () => {
    assert.equal(
      mayHaveRemoved(
        { type: 'del', kind: 'route', route: route('10.244.3.0/24', EXT, { gateway: '192.168.1.13' }) },
        targets,
      ),
      true,
    );
  });

  it('not additions, nor deletions elsewhere', () => {
    assert.equal(
      mayHaveRemoved(
        { type: 'new', kind: 'neighbour', neighbour: neigh({ ip: '10.244.2.0', state: ['failed'], permanent: false }) },
        targets,
      ),
      false,
    );
    assert.equal(mayHaveRemoved({ type: 'new', kind: 'route', route: route('10.244.2.0/24', VX) }, targets), false);
    assert.equal(
      mayHaveRemoved({ type: 'del', kind: 'neighbour', neighbour: neigh({ ip: '192.168.1.50', index: EXT }) }, targets),
      false,
    );
    assert.equal(mayHaveRemoved({ type: 'del', kind: 'fdb', fdb: fdb({ mac: MAC, index: 9 }) }, targets), false);
    assert.equal(
      mayHaveRemoved(
        { type: 'del', kind: 'route', route: route('172.16.0.0/24', EXT, { gateway: '192.168.1.1' }) },
        targets,
      ),
      false,
    );
  });
});

describe('the periodic checker vxlan repairs with', () => {
  const log = { info() {}, warn() {}, error() {}, v() {} };

  it('runs soon after a poke, once for a burst of pokes, and keeps its period otherwise', async () => {
    const runs: number[] = [];
    const c = new Checker({
      what: 'test check',
      periodMs: 60_000,
      pokeDelayMs: 30,
      minGapMs: 0,
      serial: new Serial(),
      log,
      read: async () => undefined,
      check: async () => void runs.push(Date.now()),
    });
    const ctl = new AbortController();
    const running = c.run(ctl.signal);
    const t0 = Date.now();
    c.poke();
    c.poke();
    c.poke();
    await new Promise((r) => setTimeout(r, 200));
    ctl.abort();
    await running;
    assert.equal(runs.length, 1, 'three pokes, one check; the 60 s period never came');
    assert.ok(runs[0]! - t0 >= 25, `ran ${runs[0]! - t0} ms after the poke`);
  });

  it('leaves at least minGapMs between checks however often it is poked, and logs a failing check', async () => {
    const runs: number[] = [];
    const errors: string[] = [];
    const c = new Checker({
      what: 'test check',
      periodMs: 60_000,
      pokeDelayMs: 0,
      minGapMs: 150,
      serial: new Serial(),
      log: { ...log, error: (m: string) => void errors.push(m) },
      read: async () => undefined,
      check: async () => {
        runs.push(Date.now());
        throw new Error('boom');
      },
    });
    const ctl = new AbortController();
    const running = c.run(ctl.signal);
    const poker = setInterval(() => c.poke(), 5);
    await new Promise((r) => setTimeout(r, 500));
    clearInterval(poker);
    ctl.abort();
    await running;
    assert.ok(runs.length >= 2 && runs.length <= 4, `${runs.length} checks in 500 ms`);
    for (let i = 1; i < runs.length; i++)
      assert.ok(runs[i]! - runs[i - 1]! >= 145, `gap ${runs[i]! - runs[i - 1]!} ms`);
    assert.equal(errors[0], 'test check failed: boom');
  });

  it('runs every periodMs without pokes', async () => {
    let n = 0;
    const c = new Checker({
      what: 'test check',
      periodMs: 40,
      serial: new Serial(),
      log,
      read: async () => undefined,
      check: async () => void n++,
    });
    const ctl = new AbortController();
    const running = c.run(ctl.signal);
    await new Promise((r) => setTimeout(r, 230));
    ctl.abort();
    await running;
    assert.ok(n >= 3 && n <= 6, `${n} checks in 230 ms at 40 ms`);
  });
});
