import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPv4Net, parseIPv4 } from '../../src/ip/ipv4.ts';
import { allocationRange, decideAllocation, freeCandidates, isCompatible, MAX_CANDIDATES, OutOfSubnetsError } from '../../src/subnet/allocate.ts';
import type { Lease } from '../../src/subnet/lease.ts';
import type { NetworkConfig } from '../../src/config/network-config.ts';

// 10.5.0.0/16 with the etcd-mode defaults: /24 subnets from 10.5.1.0 to 10.5.255.0.
const range = { subnetLen: 24, subnetMin: parseIPv4('10.5.1.0'), subnetMax: parseIPv4('10.5.255.0') };

function lease(cidr: string, publicIP: string, expiration: Date | null = new Date(Date.now() + 3600_000)): Lease {
  return { subnet: IPv4Net.parse(cidr), attrs: { publicIP, publicIPv6: null, backendType: 'vxlan' }, expiration };
}

describe('allocationRange / isCompatible', () => {
  it('reads the validated range from the config', () => {
    const config: NetworkConfig = {
      enableIPv4: true, enableIPv6: false, enableNFTables: false, network: IPv4Net.parse('10.5.0.0/16'),
      subnetLen: 24, subnetMin: range.subnetMin, subnetMax: range.subnetMax, backendType: 'vxlan', backend: {},
    };
    assert.deepEqual(allocationRange(config), range);
    assert.throws(() => allocationRange({ ...config, subnetMin: undefined }), /validate: true/);
    assert.throws(() => allocationRange({ ...config, network: undefined }), /IPv4 Network/);
  });

  it('needs SubnetLen and a subnet inside [SubnetMin, SubnetMax]', () => {
    assert.equal(isCompatible(IPv4Net.parse('10.5.1.0/24'), range), true);
    assert.equal(isCompatible(IPv4Net.parse('10.5.255.0/24'), range), true);
    assert.equal(isCompatible(IPv4Net.parse('10.5.0.0/24'), range), false);
    assert.equal(isCompatible(IPv4Net.parse('10.5.2.0/25'), range), false);
    assert.equal(isCompatible(IPv4Net.parse('10.6.1.0/24'), range), false);
  });
});

describe('decideAllocation', () => {
  it('reuses the lease that carries this node\'s public IP', () => {
    const mine = lease('10.5.7.0/24', '192.168.1.2');
    const d = decideAllocation({ range, leases: [lease('10.5.3.0/24', '192.168.1.3'), mine], publicIP: '192.168.1.2', previousSubnet: IPv4Net.parse('10.5.9.0/24') });
    assert.equal(d.kind, 'reuse');
    assert.equal(d.kind === 'reuse' && d.lease, mine);
    assert.deepEqual(d.remove, []);
  });

  it('deletes an incompatible lease of this node and falls through to the previous subnet', () => {
    const stale = lease('10.5.7.0/25', '192.168.1.2');
    const d = decideAllocation({ range, leases: [stale], publicIP: '192.168.1.2', previousSubnet: IPv4Net.parse('10.5.9.0/24') });
    assert.equal(d.kind, 'create');
    assert.deepEqual(d.remove, [stale]);
    assert.equal(d.kind === 'create' && d.source, 'previous');
    assert.equal(d.kind === 'create' && d.subnet.toString(), '10.5.9.0/24');
  });

  it('uses the previous subnet only when nobody holds it and it fits', () => {
    const prev = IPv4Net.parse('10.5.9.0/24');
    const held = decideAllocation({ range, leases: [lease('10.5.9.0/24', '192.168.1.9')], publicIP: '192.168.1.2', previousSubnet: prev, random: () => 0 });
    assert.equal(held.kind === 'create' && held.source, 'random');
    const overlapped = decideAllocation({ range, leases: [lease('10.5.8.0/23', '192.168.1.9')], publicIP: '192.168.1.2', previousSubnet: prev, random: () => 0 });
    assert.equal(overlapped.kind === 'create' && overlapped.source, 'random');
    const outside = decideAllocation({ range, leases: [], publicIP: '192.168.1.2', previousSubnet: IPv4Net.parse('10.6.9.0/24'), random: () => 0 });
    assert.equal(outside.kind === 'create' && outside.source, 'random');
    const free = decideAllocation({ range, leases: [], publicIP: '192.168.1.2', previousSubnet: prev });
    assert.equal(free.kind === 'create' && free.source, 'previous');
  });

  it('picks uniformly among the free candidates with the injected random source', () => {
    const leases = [lease('10.5.1.0/24', 'a'), lease('10.5.3.0/24', 'b')];
    const first = decideAllocation({ range, leases, publicIP: '192.168.1.2', random: () => 0 });
    assert.equal(first.kind === 'create' && first.subnet.toString(), '10.5.2.0/24');
    const last = decideAllocation({ range, leases, publicIP: '192.168.1.2', random: () => 0.999999 });
    // Candidates are the lowest 100 free subnets: 10.5.2.0, 10.5.4.0 ... 10.5.102.0.
    assert.equal(last.kind === 'create' && last.subnet.toString(), '10.5.102.0/24');
    assert.equal(last.kind === 'create' && last.candidates, MAX_CANDIDATES);
  });

  it('throws "out of subnets" when every subnet is taken', () => {
    const small = { subnetLen: 28, subnetMin: parseIPv4('10.5.0.16'), subnetMax: parseIPv4('10.5.0.32') };
    const leases = [lease('10.5.0.16/28', 'a'), lease('10.5.0.32/28', 'b')];
    assert.throws(() => decideAllocation({ range: small, leases, publicIP: 'c' }), (e: unknown) => e instanceof OutOfSubnetsError && /^out of subnets/.test(e.message));
    const d = decideAllocation({ range: small, leases: leases.slice(1), publicIP: 'c', random: () => 0.7 });
    assert.equal(d.kind === 'create' && d.subnet.toString(), '10.5.0.16/28');
  });
});

describe('freeCandidates', () => {
  it('caps at 100 and walks upward from SubnetMin', () => {
    const c = freeCandidates(range, []);
    assert.equal(c.length, 100);
    assert.equal(c[0]!.toString(), '10.5.1.0/24');
    assert.equal(c[99]!.toString(), '10.5.100.0/24');
  });

  it('skips subnets that overlap existing leases of any size', () => {
    const c = freeCandidates(range, [IPv4Net.parse('10.5.0.0/22'), IPv4Net.parse('10.5.5.128/25'), IPv4Net.parse('10.5.6.0/24')], 3);
    assert.deepEqual(c.map(String), ['10.5.4.0/24', '10.5.7.0/24', '10.5.8.0/24']);
  });

  it('stops at SubnetMax inclusive', () => {
    const r = { subnetLen: 24, subnetMin: parseIPv4('10.5.250.0'), subnetMax: parseIPv4('10.5.255.0') };
    assert.deepEqual(freeCandidates(r, []).map(String), ['250', '251', '252', '253', '254', '255'].map((x) => `10.5.${x}.0/24`));
  });
});
