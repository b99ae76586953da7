import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import {
  deviceAddress,
  entriesOf,
  foreignAddresses,
  obsoleteEntries,
  planPeer,
  staleEntries,
  type PeerPlan,
  type SweepInput,
} from '../../src/backend/vxlan/plan.ts';
import type { Lease } from '../../src/subnet/lease.ts';
import { kernelRoute, lease, route } from '../helpers/inspect-fixtures.ts';

/** Peer B's vxlan lease, its attrs changed by `attrs`. */
const peerLease = (subnet: string, attrs: Partial<Lease['attrs']> = {}): Lease =>
  lease({ subnet, ip: '192.168.1.12', mac: '0e:00:00:00:00:02' }, attrs);
const overlay = (subnet: string, mac: string, publicIP = '192.168.1.12'): PeerPlan => ({
  mode: 'overlay',
  subnet: IPv4Net.parse(subnet),
  publicIP,
  vtepMac: mac,
});
const direct = (subnet: string, publicIP: string): PeerPlan => ({
  mode: 'direct',
  subnet: IPv4Net.parse(subnet),
  publicIP,
});
describe('vxlan peer plan', () => {
  it('programs neighbour, FDB and onlink route, in that order (docs/COMPATIBILITY.md, "vxlan backend")', () => {
    const r = planPeer(peerLease('10.244.2.0/24'), false)!;
    assert.ok(r.ok);
    assert.deepEqual(entriesOf(r.plan), [
      { kind: 'neighbour', ip: '10.244.2.0', mac: '0e:00:00:00:00:02' },
      { kind: 'fdb', mac: '0e:00:00:00:00:02', dst: '192.168.1.12' },
      { kind: 'route', dst: '10.244.2.0/24', gateway: '10.244.2.0', onVxlan: true },
    ]);
  });

  it('uses only a route via the PublicIP for a directly reachable peer', () => {
    const r = planPeer(peerLease('10.244.2.0/24'), true)!;
    assert.ok(r.ok);
    assert.deepEqual(entriesOf(r.plan), [
      { kind: 'route', dst: '10.244.2.0/24', gateway: '192.168.1.12', onVxlan: false },
    ]);
  });

  it('ignores other backend types and leases without a usable VtepMAC', () => {
    const other = planPeer(peerLease('10.244.3.0/24', { backendType: 'host-gw', backendData: undefined }), false)!;
    assert.deepEqual(other, {
      ok: false,
      reason: 'ignoring non-vxlan v4Subnet(10.244.3.0/24) v6Subnet(<nil>): type=host-gw',
    });
    const bad = planPeer(peerLease('10.244.3.0/24', { backendData: { VNI: 1 } }), false)!;
    assert.equal(bad.ok, false);
    assert.match((bad as { reason: string }).reason, /no valid VtepMAC/);
  });

  it('drops the old FDB entry when a peer changes its VtepMAC, and ARP/FDB when it becomes direct', () => {
    assert.deepEqual(
      obsoleteEntries(overlay('10.244.2.0/24', '0e:00:00:00:00:02'), overlay('10.244.2.0/24', '0e:00:00:00:00:03')),
      [{ kind: 'fdb', mac: '0e:00:00:00:00:02', dst: '192.168.1.12' }],
    );
    assert.deepEqual(
      obsoleteEntries(
        overlay('10.244.2.0/24', '0e:00:00:00:00:02'),
        overlay('10.244.2.0/24', '0e:00:00:00:00:02', '192.168.1.99'),
      ),
      [],
    );
    assert.deepEqual(
      obsoleteEntries(overlay('10.244.2.0/24', '0e:00:00:00:00:02'), direct('10.244.2.0/24', '192.168.1.12')).map(
        (e) => e.kind,
      ),
      ['neighbour', 'fdb'],
    );
    assert.deepEqual(
      obsoleteEntries(direct('10.244.2.0/24', '192.168.1.12'), overlay('10.244.2.0/24', '0e:00:00:00:00:02')),
      [],
    );
  });

  it('addresses the device with the lease network address as /32 and drops other addresses inside Network only', () => {
    const own = deviceAddress(IPv4Net.parse('10.244.1.0/24'));
    assert.equal(own, '10.244.1.0/32');
    const addrs = [
      { address: '10.244.1.0', prefixLen: 32 },
      { address: '10.244.7.0', prefixLen: 32 },
      { address: '10.244.1.0', prefixLen: 24 },
      { address: '172.16.0.1', prefixLen: 32 },
    ];
    assert.deepEqual(foreignAddresses(addrs, IPv4Net.parse('10.244.0.0/16'), own), ['10.244.7.0/32', '10.244.1.0/24']);
  });
});

describe('vxlan startup sweep', () => {
  const VX = 5;
  const EXT = 2;
  const base = (over: Partial<SweepInput>): SweepInput => ({
    network: IPv4Net.parse('10.244.0.0/16'),
    subnetLen: 24,
    vxlanIndex: VX,
    extIndex: EXT,
    directRouting: false,
    peers: [overlay('10.244.2.0/24', '0e:00:00:00:00:02')],
    routes: [],
    neighbours: [],
    fdb: [],
    ...over,
  });

  it('keeps what current leases need and removes leftovers of vanished peers', () => {
    const s = staleEntries(
      base({
        routes: [
          route('10.244.2.0/24', VX, { gateway: '10.244.2.0', onlink: true }),
          route('10.244.9.0/24', VX, { gateway: '10.244.9.0', onlink: true }),
        ],
        neighbours: [
          { index: VX, ip: '10.244.2.0', mac: '0e:00:00:00:00:02', permanent: true, state: ['permanent'] },
          { index: VX, ip: '10.244.9.0', mac: '0e:00:00:00:00:09', permanent: true, state: ['permanent'] },
        ],
        fdb: [
          { index: VX, mac: '0e:00:00:00:00:02', dst: '192.168.1.12', self: true, permanent: true },
          { index: VX, mac: '0e:00:00:00:00:09', dst: '192.168.1.19', self: true, permanent: true },
          { index: VX, mac: '0e:00:00:00:00:02', dst: '192.168.1.77', self: true, permanent: true },
        ],
      }),
    );
    assert.deepEqual(
      s.routes.map((r) => r.dst),
      ['10.244.9.0/24'],
    );
    assert.deepEqual(
      s.neighbours.map((n) => n.ip),
      ['10.244.9.0'],
    );
    assert.deepEqual(
      s.fdb.map((f) => `${f.mac} ${f.dst}`),
      ['0e:00:00:00:00:09 192.168.1.19', '0e:00:00:00:00:02 192.168.1.77'],
    );
  });

  it('never touches other devices, routes outside Network, kernel or local-table routes, or learned entries', () => {
    const s = staleEntries(
      base({
        peers: [],
        routes: [
          route('10.244.9.0/24', EXT, { gateway: '192.168.1.19' }),
          route('10.244.9.0/24', 9, { gateway: '10.1.1.1' }),
          route('172.16.0.0/24', VX, { gateway: '172.16.0.0', onlink: true }),
          kernelRoute('10.244.1.0/24', VX),
          route('10.244.1.0/32', VX, { table: 255, type: 'local', protocol: 'kernel' }),
          route(null, EXT, { gateway: '192.168.1.1' }),
        ],
        neighbours: [
          { index: 9, ip: '10.244.9.0', mac: '0e:00:00:00:00:09', permanent: true, state: ['permanent'] },
          { index: VX, ip: '10.244.9.5', mac: '0e:00:00:00:00:05', permanent: false, state: ['reachable'] },
        ],
        fdb: [
          { index: 9, mac: '0e:00:00:00:00:09', dst: '192.168.1.19', self: true, permanent: true },
          { index: VX, mac: '0e:00:00:00:00:08', self: true, permanent: true },
          { index: VX, mac: '0e:00:00:00:00:07', dst: '192.168.1.17', self: true, permanent: false },
        ],
      }),
    );
    assert.deepEqual(s, { routes: [], neighbours: [], fdb: [] });
  });

  it('with DirectRouting sweeps only SubnetLen-sized gateway routes into Network on the external device', () => {
    const s = staleEntries(
      base({
        directRouting: true,
        peers: [direct('10.244.2.0/24', '192.168.1.12')],
        routes: [
          route('10.244.2.0/24', EXT, { gateway: '192.168.1.12' }),
          route('10.244.3.0/24', EXT, { gateway: '192.168.1.13' }),
          route('10.244.0.0/20', EXT, { gateway: '192.168.1.1' }),
          route('10.244.4.0/24', EXT, { scope: 'link' }),
          route('10.244.2.0/24', VX, { gateway: '10.244.2.0', onlink: true }),
        ],
      }),
    );
    assert.deepEqual(
      s.routes.map((r) => `${r.dst} via ${r.gateway} dev ${r.oif}`),
      ['10.244.3.0/24 via 192.168.1.13 dev 2', '10.244.2.0/24 via 10.244.2.0 dev 5'],
    );
  });
});
