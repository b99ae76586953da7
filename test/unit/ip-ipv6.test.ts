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
    for (const bad of ['1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'g::', '10.0.0.1', '', ':1:2']) assert.equal(isIPv6(bad), false, bad);
  });

  it('parses CIDRs with host bits masked off', () => {
    assert.equal(IPv6Net.parse('2001:cafe:42:1::1/64').toString(), '2001:cafe:42:1::/64');
    assert.equal(IPv6Net.parse('fd00::/0').toString(), '::/0');
    assert.throws(() => IPv6Net.parse('fd00::/129'), /invalid IPv6 CIDR "fd00::\/129"/);
    assert.throws(() => IPv6Net.parse('fd00::'), /invalid IPv6 CIDR/);
  });
});
