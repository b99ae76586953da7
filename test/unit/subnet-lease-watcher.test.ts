import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';
import type { Lease } from '../../src/subnet/lease.ts';
import { LeaseWatcher } from '../../src/subnet/lease-watcher.ts';
import { leaseLines } from '../helpers/lease-events.ts';

function lease(cidr: string, publicIP: string, mac = 'aa:bb:cc:dd:ee:01'): Lease {
  return {
    subnet: IPv4Net.parse(cidr),
    attrs: { publicIP, publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac } },
    expiration: null,
  };
}
const own = { subnet: IPv4Net.parse('10.5.1.0/24') };
const summary = (evs: { type: string; lease: Lease }[]) => leaseLines(evs);

describe('LeaseWatcher', () => {
  it('reports the first snapshot as added, without the own lease', () => {
    const w = new LeaseWatcher(own);
    const evs = w.reset([
      lease('10.5.1.0/24', '192.168.1.1'),
      lease('10.5.2.0/24', '192.168.1.2'),
      lease('10.5.3.0/24', '192.168.1.3'),
    ]);
    assert.deepEqual(summary(evs), ['added 10.5.2.0/24 192.168.1.2', 'added 10.5.3.0/24 192.168.1.3']);
    assert.deepEqual(
      w.leases().map((l) => String(l.subnet)),
      ['10.5.2.0/24', '10.5.3.0/24'],
    );
  });

  it('diffs a later snapshot: new, changed and vanished leases', () => {
    const w = new LeaseWatcher(own);
    w.reset([
      lease('10.5.2.0/24', '192.168.1.2'),
      lease('10.5.3.0/24', '192.168.1.3'),
      lease('10.5.4.0/24', '192.168.1.4'),
    ]);
    const evs = w.reset([
      lease('10.5.2.0/24', '192.168.1.2'),
      lease('10.5.3.0/24', '192.168.1.3', 'aa:bb:cc:dd:ee:99'),
      lease('10.5.5.0/24', '192.168.1.5'),
    ]);
    assert.deepEqual(summary(evs), [
      'added 10.5.3.0/24 192.168.1.3',
      'added 10.5.5.0/24 192.168.1.5',
      'removed 10.5.4.0/24 192.168.1.4',
    ]);
    assert.equal(w.reset(w.leases()).length, 0);
  });

  it('reports a peer whose v6 subnet changed under the same v4 subnet as added again', () => {
    const w = new LeaseWatcher(own);
    const v6 = (cidr: string): Lease => ({ ...lease('10.5.2.0/24', '192.168.1.2'), ipv6Subnet: IPv6Net.parse(cidr) });
    w.reset([v6('fc00:0:0:2::/64')]);
    assert.equal(w.reset([v6('fc00:0:0:2::/64')]).length, 0);
    const evs = w.reset([v6('fc00:0:0:9::/64')]);
    assert.deepEqual(
      evs.map((e) => `${e.type} ${e.lease.ipv6Subnet}`),
      ['added fc00:0:0:9::/64'],
    );
  });

  it('applies incremental events and enriches removals with the last known attrs', () => {
    const w = new LeaseWatcher(own);
    w.reset([lease('10.5.2.0/24', '192.168.1.2', 'aa:bb:cc:dd:ee:02')]);
    const bare: Lease = {
      subnet: IPv4Net.parse('10.5.2.0/24'),
      attrs: { publicIP: '0.0.0.0', publicIPv6: null, backendType: '' },
      expiration: null,
    };
    const evs = w.update([
      { type: 'added', lease: lease('10.5.6.0/24', '192.168.1.6') },
      { type: 'removed', lease: bare },
      { type: 'added', lease: lease('10.5.1.0/24', '192.168.1.1') },
      { type: 'removed', lease: { ...bare, subnet: own.subnet } },
    ]);
    assert.deepEqual(summary(evs), ['added 10.5.6.0/24 192.168.1.6', 'removed 10.5.2.0/24 192.168.1.2']);
    assert.deepEqual((evs[1]!.lease.attrs.backendData as { VtepMAC: string }).VtepMAC, 'aa:bb:cc:dd:ee:02');
    assert.deepEqual(
      w.leases().map((l) => String(l.subnet)),
      ['10.5.6.0/24'],
    );
  });

  it('passes through a removal of an unknown lease as given', () => {
    const w = new LeaseWatcher(own);
    const evs = w.update([{ type: 'removed', lease: lease('10.5.9.0/24', '192.168.1.9') }]);
    assert.deepEqual(summary(evs), ['removed 10.5.9.0/24 192.168.1.9']);
  });
});

describe('LeaseWatcher on IPv6-only leases', () => {
  const v6 = (cidr: string, publicIPv6: string): Lease => ({
    ipv6Subnet: IPv6Net.parse(cidr),
    attrs: { publicIP: '0.0.0.0', publicIPv6, backendType: 'host-gw' },
    expiration: null,
  });

  it('knows them by their IPv6 subnet: own one skipped, changes and removals tracked, sorted after IPv4 leases', () => {
    const w = new LeaseWatcher({ ipv6Subnet: IPv6Net.parse('fc00:0:0:1::/64') });
    const first = w.reset([
      v6('fc00:0:0:1::/64', 'fd00::1'),
      v6('fc00:0:0:3::/64', 'fd00::3'),
      v6('fc00:0:0:2::/64', 'fd00::2'),
      lease('10.5.9.0/24', '192.168.1.9'),
    ]);
    assert.deepEqual(
      first.map((e) => `${e.type} ${e.lease.subnet ?? e.lease.ipv6Subnet}`),
      ['added fc00:0:0:3::/64', 'added fc00:0:0:2::/64', 'added 10.5.9.0/24'],
    );
    assert.deepEqual(
      w.leases().map((l) => String(l.subnet ?? l.ipv6Subnet)),
      ['10.5.9.0/24', 'fc00:0:0:2::/64', 'fc00:0:0:3::/64'],
    );
    const moved = w.update([
      { type: 'added', lease: v6('fc00:0:0:2::/64', 'fd00::22') },
      { type: 'removed', lease: v6('fc00:0:0:3::/64', 'fd00::0') },
    ]);
    assert.deepEqual(
      moved.map((e) => `${e.type} ${e.lease.ipv6Subnet} ${e.lease.attrs.publicIPv6}`),
      ['added fc00:0:0:2::/64 fd00::22', 'removed fc00:0:0:3::/64 fd00::3'],
    );
    assert.deepEqual(
      w.update([{ type: 'added', lease: v6('fc00:0:0:1::/64', 'fd00::1') }]),
      [],
      'the own lease stays unreported',
    );
  });
});
