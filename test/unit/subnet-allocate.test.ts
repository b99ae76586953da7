import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPv4Net, parseIPv4 } from '../../src/ip/ipv4.ts';
import { IPv6Net, parseIPv6 } from '../../src/ip/ipv6.ts';
import {
  allocationRange,
  decideAllocation,
  freeCandidates,
  freeCandidatesV6,
  isCompatible,
  isCompatibleV6,
  isLeaseCompatible,
  MAX_CANDIDATES,
  OutOfSubnetsError,
} from '../../src/subnet/allocate.ts';
import type { Lease } from '../../src/subnet/lease.ts';
import type { NetworkConfig } from '../../src/config/network-config.ts';

// 10.5.0.0/16 with the etcd-mode defaults: /24 subnets from 10.5.1.0 to 10.5.255.0.
const r4 = { subnetLen: 24, subnetMin: parseIPv4('10.5.1.0'), subnetMax: parseIPv4('10.5.255.0') };
const range = { ipv4: r4 };
/** The validated IPv4 config of 10.5.0.0/16 with /24 subnets. */
const config4: NetworkConfig = {
  enableIPv4: true,
  enableIPv6: false,
  enableNFTables: false,
  network: IPv4Net.parse('10.5.0.0/16'),
  subnetLen: 24,
  subnetMin: r4.subnetMin,
  subnetMax: r4.subnetMax,
  backendType: 'vxlan',
  backend: {},
};

function lease(cidr: string, publicIP: string, expiration: Date | null = new Date(Date.now() + 3600_000)): Lease {
  return { subnet: IPv4Net.parse(cidr), attrs: { publicIP, publicIPv6: null, backendType: 'vxlan' }, expiration };
}

describe('allocationRange / isCompatible', () => {
  it('reads the validated range from the config', () => {
    const config = config4;
    assert.deepEqual(allocationRange(config), range);
    assert.throws(() => allocationRange({ ...config, subnetMin: undefined }), /validate: true/);
    assert.throws(() => allocationRange({ ...config, network: undefined }), /Network\/SubnetMin/);
    assert.throws(() => allocationRange({ ...config, enableIPv4: false }), /neither IPv4 nor IPv6/);
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
  it("reuses the lease that carries this node's public IP", () => {
    const mine = lease('10.5.7.0/24', '192.168.1.2');
    const d = decideAllocation({
      range,
      leases: [lease('10.5.3.0/24', '192.168.1.3'), mine],
      publicIP: '192.168.1.2',
      previousSubnet: IPv4Net.parse('10.5.9.0/24'),
    });
    assert.equal(d.kind, 'reuse');
    assert.equal(d.kind === 'reuse' && d.lease, mine);
    assert.deepEqual(d.remove, []);
  });

  it('deletes an incompatible lease of this node and falls through to the previous subnet', () => {
    const stale = lease('10.5.7.0/25', '192.168.1.2');
    const d = decideAllocation({
      range,
      leases: [stale],
      publicIP: '192.168.1.2',
      previousSubnet: IPv4Net.parse('10.5.9.0/24'),
    });
    assert.equal(d.kind, 'create');
    assert.deepEqual(d.remove, [stale]);
    assert.equal(d.kind === 'create' && d.source, 'previous');
    assert.equal(d.kind === 'create' && d.subnet?.toString(), '10.5.9.0/24');
  });

  it('uses the previous subnet only when nobody holds it and it fits', () => {
    const prev = IPv4Net.parse('10.5.9.0/24');
    const held = decideAllocation({
      range,
      leases: [lease('10.5.9.0/24', '192.168.1.9')],
      publicIP: '192.168.1.2',
      previousSubnet: prev,
      random: () => 0,
    });
    assert.equal(held.kind === 'create' && held.source, 'random');
    const overlapped = decideAllocation({
      range,
      leases: [lease('10.5.8.0/23', '192.168.1.9')],
      publicIP: '192.168.1.2',
      previousSubnet: prev,
      random: () => 0,
    });
    assert.equal(overlapped.kind === 'create' && overlapped.source, 'random');
    const outside = decideAllocation({
      range,
      leases: [],
      publicIP: '192.168.1.2',
      previousSubnet: IPv4Net.parse('10.6.9.0/24'),
      random: () => 0,
    });
    assert.equal(outside.kind === 'create' && outside.source, 'random');
    const free = decideAllocation({ range, leases: [], publicIP: '192.168.1.2', previousSubnet: prev });
    assert.equal(free.kind === 'create' && free.source, 'previous');
  });

  it('picks uniformly among the free candidates with the injected random source', () => {
    const leases = [lease('10.5.1.0/24', 'a'), lease('10.5.3.0/24', 'b')];
    const first = decideAllocation({ range, leases, publicIP: '192.168.1.2', random: () => 0 });
    assert.equal(first.kind === 'create' && first.subnet?.toString(), '10.5.2.0/24');
    const last = decideAllocation({ range, leases, publicIP: '192.168.1.2', random: () => 0.999999 });
    // Candidates are the lowest 100 free subnets: 10.5.2.0, 10.5.4.0 ... 10.5.102.0.
    assert.equal(last.kind === 'create' && last.subnet?.toString(), '10.5.102.0/24');
    assert.equal(last.kind === 'create' && last.candidates, MAX_CANDIDATES);
  });

  it('throws "out of subnets" when every subnet is taken', () => {
    const small = { ipv4: { subnetLen: 28, subnetMin: parseIPv4('10.5.0.16'), subnetMax: parseIPv4('10.5.0.32') } };
    const leases = [lease('10.5.0.16/28', 'a'), lease('10.5.0.32/28', 'b')];
    assert.throws(
      () => decideAllocation({ range: small, leases, publicIP: 'c' }),
      (e: unknown) => e instanceof OutOfSubnetsError && /^out of subnets/.test(e.message),
    );
    const d = decideAllocation({ range: small, leases: leases.slice(1), publicIP: 'c', random: () => 0.7 });
    assert.equal(d.kind === 'create' && d.subnet?.toString(), '10.5.0.16/28');
  });
});

describe('freeCandidates', () => {
  it('caps at 100 and walks upward from SubnetMin', () => {
    const c = freeCandidates(r4, []);
    assert.equal(c.length, 100);
    assert.equal(c[0]!.toString(), '10.5.1.0/24');
    assert.equal(c[99]!.toString(), '10.5.100.0/24');
  });

  it('skips subnets that overlap existing leases of any size', () => {
    const c = freeCandidates(
      r4,
      [IPv4Net.parse('10.5.0.0/22'), IPv4Net.parse('10.5.5.128/25'), IPv4Net.parse('10.5.6.0/24')],
      3,
    );
    assert.deepEqual(c.map(String), ['10.5.4.0/24', '10.5.7.0/24', '10.5.8.0/24']);
  });

  it('stops at SubnetMax inclusive', () => {
    const r = { subnetLen: 24, subnetMin: parseIPv4('10.5.250.0'), subnetMax: parseIPv4('10.5.255.0') };
    assert.deepEqual(
      freeCandidates(r, []).map(String),
      ['250', '251', '252', '253', '254', '255'].map((x) => `10.5.${x}.0/24`),
    );
  });
});

describe('dual stack (v6 picked independently, docs/COMPATIBILITY.md, "Lease acquisition")', () => {
  // fc00::/48 with the etcd-mode defaults: /64 subnets from fc00:0:0:1:: to fc00:0:0:ffff::.
  const dual = {
    ...range,
    ipv6: { subnetLen: 64, subnetMin: parseIPv6('fc00:0:0:1::'), subnetMax: parseIPv6('fc00:0:0:ffff::') },
  };
  const dualLease = (v4: string, v6: string | undefined, publicIP: string): Lease => ({
    ...lease(v4, publicIP),
    ...(v6 ? { ipv6Subnet: IPv6Net.parse(v6) } : {}),
  });

  it('reads the IPv6 range from a dual-stack config', () => {
    const config: NetworkConfig = {
      ...config4,
      enableIPv6: true,
      ipv6Network: IPv6Net.parse('fc00::/48'),
      ipv6SubnetLen: 64,
      ipv6SubnetMin: dual.ipv6.subnetMin,
      ipv6SubnetMax: dual.ipv6.subnetMax,
    };
    assert.deepEqual(allocationRange(config), dual);
    assert.throws(() => allocationRange({ ...config, ipv6SubnetMax: undefined }), /IPv6SubnetMax.*validate: true/);
  });

  it('needs a v6 subnet inside the IPv6 limits, and none when IPv6 is disabled', () => {
    assert.equal(isCompatibleV6(IPv6Net.parse('fc00:0:0:1::/64'), dual), true);
    assert.equal(isCompatibleV6(IPv6Net.parse('fc00:0:0:ffff::/64'), dual), true);
    assert.equal(isCompatibleV6(IPv6Net.parse('fc00::/64'), dual), false, 'below IPv6SubnetMin');
    assert.equal(isCompatibleV6(IPv6Net.parse('fc00:0:0:2::/80'), dual), false, 'wrong length');
    assert.equal(isCompatibleV6(IPv6Net.parse('fc00:1::/64'), dual), false, 'above IPv6SubnetMax');
    assert.equal(isCompatibleV6(undefined, dual), false, 'a v4-only lease does not fit a dual-stack config');
    assert.equal(isCompatibleV6(undefined, range), true);
    assert.equal(
      isCompatibleV6(IPv6Net.parse('fc00:0:0:1::/64'), range),
      false,
      'v6 must be empty when IPv6 is disabled',
    );
    assert.equal(isLeaseCompatible(dualLease('10.5.1.0/24', 'fc00:0:0:1::/64', 'a'), dual), true);
    assert.equal(isLeaseCompatible(dualLease('10.5.0.0/24', 'fc00:0:0:1::/64', 'a'), dual), false);
  });

  it('reuses a dual-stack lease by PublicIP and replaces a v4-only one', () => {
    const mine = dualLease('10.5.7.0/24', 'fc00:0:0:7::/64', '192.168.1.2');
    const reuse = decideAllocation({ range: dual, leases: [mine], publicIP: '192.168.1.2' });
    assert.equal(reuse.kind === 'reuse' && reuse.lease, mine);
    const v4only = dualLease('10.5.7.0/24', undefined, '192.168.1.2');
    const d = decideAllocation({ range: dual, leases: [v4only], publicIP: '192.168.1.2', random: () => 0 });
    assert.equal(d.kind, 'create');
    assert.deepEqual(d.remove, [v4only]);
    assert.equal(d.kind === 'create' && d.subnet?.toString(), '10.5.1.0/24');
    assert.equal(d.kind === 'create' && d.ipv6Subnet?.toString(), 'fc00:0:0:1::/64');
    const dualInV4 = decideAllocation({ range, leases: [mine], publicIP: '192.168.1.2', random: () => 0 });
    assert.deepEqual(dualInV4.remove, [mine], 'a dual-stack lease does not fit once IPv6 is disabled');
  });

  it('picks the v6 subnet among the free v6 candidates, independently of the v4 pick', () => {
    const leases = [dualLease('10.5.2.0/24', 'fc00:0:0:1::/64', 'a'), dualLease('10.5.3.0/24', 'fc00:0:0:3::/64', 'b')];
    const d = decideAllocation({ range: dual, leases, publicIP: 'c', random: () => 0 });
    assert.equal(d.kind === 'create' && d.subnet?.toString(), '10.5.1.0/24');
    assert.equal(d.kind === 'create' && d.ipv6Subnet?.toString(), 'fc00:0:0:2::/64');
    const last = decideAllocation({ range: dual, leases, publicIP: 'c', random: () => 0.999999 });
    // v6 candidates: fc00:0:0:2::, fc00:0:0:4:: ... the 100th free one is fc00:0:0:66:: (0x66 = 102).
    assert.equal(last.kind === 'create' && last.ipv6Subnet?.toString(), 'fc00:0:0:66::/64');
    assert.equal(
      'ipv6Subnet' in decideAllocation({ range, leases, publicIP: 'c', random: () => 0 }),
      false,
      'no v6 pick when IPv6 is disabled',
    );
  });

  it('reuses the previous v6 subnet when it is free and fits, else picks at random', () => {
    const prev = IPv4Net.parse('10.5.9.0/24');
    const prev6 = IPv6Net.parse('fc00:0:0:9::/64');
    const free = decideAllocation({
      range: dual,
      leases: [],
      publicIP: 'c',
      previousSubnet: prev,
      previousIPv6Subnet: prev6,
      random: () => 0,
    });
    assert.equal(
      free.kind === 'create' && `${free.source} ${free.subnet} ${free.ipv6Subnet}`,
      'previous 10.5.9.0/24 fc00:0:0:9::/64',
    );
    const held = decideAllocation({
      range: dual,
      leases: [dualLease('10.5.1.0/24', 'fc00:0:0:8::/63', 'x')],
      publicIP: 'c',
      previousSubnet: prev,
      previousIPv6Subnet: prev6,
      random: () => 0,
    });
    assert.equal(
      held.kind === 'create' && `${held.source} ${held.subnet} ${held.ipv6Subnet}`,
      'previous 10.5.9.0/24 fc00:0:0:1::/64',
    );
  });

  it('throws "out of subnets" naming the IPv6 range when no v6 subnet is free', () => {
    const tiny = {
      ...range,
      ipv6: { subnetLen: 64, subnetMin: parseIPv6('fc00:0:0:1::'), subnetMax: parseIPv6('fc00:0:0:2::') },
    };
    const leases = [dualLease('10.5.1.0/24', 'fc00:0:0:1::/64', 'a'), dualLease('10.5.2.0/24', 'fc00:0:0:2::/64', 'b')];
    assert.throws(
      () => decideAllocation({ range: tiny, leases, publicIP: 'c' }),
      (e: unknown) =>
        e instanceof OutOfSubnetsError &&
        e.message.startsWith('out of subnets: every /64 in fc00:0:0:1:: ... fc00:0:0:2:: is leased') &&
        e.message.includes('IPv6Network'),
    );
  });

  it('walks v6 candidates in IPv6SubnetLen steps, skipping overlaps of any size, up to IPv6SubnetMax', () => {
    const r = { subnetLen: 64, subnetMin: parseIPv6('fc00:0:0:1::'), subnetMax: parseIPv6('fc00:0:0:8::') };
    const c = freeCandidatesV6(r, [IPv6Net.parse('fc00::/62'), IPv6Net.parse('fc00:0:0:5:8000::/65')]);
    assert.deepEqual(c.map(String), ['fc00:0:0:4::/64', 'fc00:0:0:6::/64', 'fc00:0:0:7::/64', 'fc00:0:0:8::/64']);
    assert.equal(freeCandidatesV6(dual.ipv6, []).length, MAX_CANDIDATES);
  });
});

describe('IPv6-only (EnableIPv4 false)', () => {
  const v6only = {
    ipv6: { subnetLen: 64, subnetMin: parseIPv6('fc00:0:0:1::'), subnetMax: parseIPv6('fc00:0:0:ffff::') },
  };
  const v6Lease = (v6: string, publicIPv6: string): Lease => ({
    ipv6Subnet: IPv6Net.parse(v6),
    attrs: { publicIP: '0.0.0.0', publicIPv6, backendType: 'vxlan' },
    expiration: null,
  });

  it('reads a range with only the IPv6 half', () => {
    const config: NetworkConfig = {
      enableIPv4: false,
      enableIPv6: true,
      enableNFTables: false,
      subnetLen: 0,
      backendType: 'vxlan',
      backend: {},
      ipv6Network: IPv6Net.parse('fc00::/48'),
      ipv6SubnetLen: 64,
      ipv6SubnetMin: v6only.ipv6.subnetMin,
      ipv6SubnetMax: v6only.ipv6.subnetMax,
    };
    assert.deepEqual(allocationRange(config), v6only);
  });

  it('matches the own lease by PublicIPv6, not by the 0.0.0.0 every host has as PublicIP', () => {
    const other = v6Lease('fc00:0:0:3::/64', 'fd00::3');
    const mine = v6Lease('fc00:0:0:7::/64', 'fd00::2');
    const reuse = decideAllocation({
      range: v6only,
      leases: [other, mine],
      publicIP: '0.0.0.0',
      publicIPv6: 'fd00::2',
    });
    assert.equal(reuse.kind === 'reuse' && reuse.lease, mine);
    const fresh = decideAllocation({
      range: v6only,
      leases: [other, mine],
      publicIP: '0.0.0.0',
      publicIPv6: 'fd00::9',
      random: () => 0,
    });
    assert.equal(
      fresh.kind === 'create' && `${fresh.source} ${fresh.subnet} ${fresh.ipv6Subnet}`,
      'random undefined fc00:0:0:1::/64',
    );
    assert.equal(fresh.kind === 'create' && fresh.candidates, 100);
  });

  it('drops a v4 or dual-stack lease of this host: it does not fit an IPv6-only config', () => {
    const dualMine: Lease = { ...v6Lease('fc00:0:0:7::/64', 'fd00::2'), subnet: IPv4Net.parse('10.5.7.0/24') };
    const d = decideAllocation({
      range: v6only,
      leases: [dualMine],
      publicIP: '0.0.0.0',
      publicIPv6: 'fd00::2',
      previousIPv6Subnet: IPv6Net.parse('fc00:0:0:7::/64'),
    });
    assert.deepEqual(d.remove, [dualMine]);
    assert.equal(
      d.kind === 'create' && `${d.source} ${d.subnet} ${d.ipv6Subnet}`,
      'previous undefined fc00:0:0:7::/64',
    );
    assert.equal(isLeaseCompatible(v6Lease('fc00:0:0:7::/64', 'x'), v6only), true);
    assert.equal(isCompatible(IPv4Net.parse('10.5.1.0/24'), v6only), false);
  });
});
