import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPv6Net, formatIPv6, isIPv6, parseIPv6 } from '../../src/ip/ipv6.ts';

describe('IPv6 values', () => {
  it('prints the RFC 5952 form Go prints', () => {
    const cases: [string, string][] = [
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['::', '::'],
      ['::1', '::1'],
      ['fe80::', 'fe80::'],
      ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'],
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
      ['2001:db8:1:1:1:1:1:0', '2001:db8:1:1:1:1:1:0'],
      ['2001:DB8::A', '2001:db8::a'],
    ];
    for (const [input, want] of cases) assert.equal(formatIPv6(parseIPv6(input)), want, input);
  });

  it('rejects malformed addresses', () => {
    for (const bad of ['1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'g::', '10.0.0.1', '', ':1:2'])
      assert.equal(isIPv6(bad), false, bad);
  });

  it('parses CIDRs with host bits masked off', () => {
    assert.equal(IPv6Net.parse('2001:cafe:42:1::1/64').toString(), '2001:cafe:42:1::/64');
    assert.equal(IPv6Net.parse('fd00::/0').toString(), '::/0');
    assert.throws(() => IPv6Net.parse('fd00::/129'), /invalid IPv6 CIDR "fd00::\/129"/);
    assert.throws(() => IPv6Net.parse('fd00::'), /invalid IPv6 CIDR/);
  });
});

describe('IPv6 networks for allocation', () => {
  it('sizes networks as bigints', () => {
    assert.equal(IPv6Net.parse('fc00::/64').size, 1n << 64n);
    assert.equal(IPv6Net.parse('::/0').size, 1n << 128n);
    assert.equal(IPv6Net.parse('fc00::1/128').size, 1n);
    assert.equal(formatIPv6(IPv6Net.parse('fc00::/64').last), 'fc00::ffff:ffff:ffff:ffff');
  });

  it('tells addresses and networks inside from outside', () => {
    const net = IPv6Net.parse('fc00:0:0:100::/56');
    assert.equal(net.contains(parseIPv6('fc00:0:0:100::1')), true);
    assert.equal(net.contains(parseIPv6('fc00:0:0:1ff:ffff:ffff:ffff:ffff')), true);
    assert.equal(net.contains(parseIPv6('fc00:0:0:200::')), false);
    assert.equal(net.contains(parseIPv6('fc00:0:0:ff:ffff:ffff:ffff:ffff')), false);
    assert.equal(net.containsNet(IPv6Net.parse('fc00:0:0:1a0::/64')), true);
    assert.equal(net.containsNet(IPv6Net.parse('fc00::/48')), false, 'a bigger network is not inside');
    assert.equal(net.containsNet(IPv6Net.parse('fc00:0:0:200::/64')), false);
  });

  it('detects overlap in both directions', () => {
    const a = IPv6Net.parse('fc00::/48');
    const b = IPv6Net.parse('fc00:0:0:5::/64');
    const c = IPv6Net.parse('fc00:1::/64');
    assert.equal(a.overlaps(b), true);
    assert.equal(b.overlaps(a), true);
    assert.equal(a.overlaps(c), false);
    assert.equal(c.overlaps(b), false);
  });

  it('steps to the following network of the same size', () => {
    assert.equal(IPv6Net.parse('fc00::/64').next().toString(), 'fc00:0:0:1::/64');
    assert.equal(IPv6Net.parse('fc00:0:0:ffff::/64').next().toString(), 'fc00:0:1::/64');
    assert.equal(IPv6Net.parse('fc00::fff0/124').next().toString(), 'fc00::1:0/124');
    assert.throws(
      () => IPv6Net.parse('ffff:ffff:ffff:ffff::/64').next(),
      /no IPv6 network follows ffff:ffff:ffff:ffff::\/64/,
    );
  });
});
