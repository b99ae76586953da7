import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';
import {
  decodeLeaseValue,
  encodeLeaseValue,
  formatSubnetKey,
  LeaseJsonError,
  parseSubnetKey,
} from '../../src/subnet/lease-json.ts';

describe('subnet keys', () => {
  it('parses a v4 key, with or without the etcd path', () => {
    for (const k of ['10.5.52.0-24', '/coreos.com/network/subnets/10.5.52.0-24']) {
      const p = parseSubnetKey(k);
      assert.ok(p);
      assert.equal(p.subnet!.toString(), '10.5.52.0/24');
      assert.equal(p.ipv6Subnet, undefined);
    }
  });

  it('keeps the v6 part of a dual-stack key', () => {
    const p = parseSubnetKey('/coreos.com/network/subnets/10.5.1.0-24&fc00::-64');
    assert.ok(p);
    assert.equal(p.subnet!.toString(), '10.5.1.0/24');
    assert.equal(p.ipv6Subnet?.toString(), 'fc00::/64');
  });

  it('reads any spelling of the v6 address the regex allows and skips unparsable ones', () => {
    assert.equal(parseSubnetKey('10.5.1.0-24&fc00:0:0:0:0:0:0:0-64')?.ipv6Subnet?.toString(), 'fc00::/64');
    assert.equal(parseSubnetKey('10.5.1.0-24&fc00:0:0:2::-64')?.ipv6Subnet?.toString(), 'fc00:0:0:2::/64');
    assert.equal(parseSubnetKey('10.5.1.0-24&fc00:::1-64'), null);
    assert.equal(parseSubnetKey('10.5.1.0-24&1:2:3:4:5:6:7:8:9-64'), null);
  });

  it('reads and writes IPv6-only keys as flannel does: the zero IPv4 net 0.0.0.0-0 before the v6 part', () => {
    const p = parseSubnetKey('/coreos.com/network/subnets/0.0.0.0-0&fc00:0:0:5::-64');
    assert.ok(p);
    assert.equal(p.subnet, undefined);
    assert.equal(p.ipv6Subnet?.toString(), 'fc00:0:0:5::/64');
    assert.equal(formatSubnetKey(undefined, IPv6Net.parse('fc00:0:0:5::/64')), '0.0.0.0-0&fc00:0:0:5::-64');
    assert.throws(() => formatSubnetKey(undefined), /IPv4 or an IPv6 subnet/);
    // A /0 is only the IPv6-only marker: alone, or with another address, it would route all of IPv4 to one peer.
    assert.equal(parseSubnetKey('0.0.0.0-0'), null);
    assert.equal(parseSubnetKey('10.0.0.0-0&fc00::-64'), null);
  });

  it('skips keys that are not subnets', () => {
    for (const k of [
      '/coreos.com/network/config',
      '10.5.52.0',
      'garbage-24',
      '10.5.52.0-33',
      '300.5.52.0-24',
      '10.5.52.0-24&fc00::-129',
    ]) {
      assert.equal(parseSubnetKey(k), null, k);
    }
  });

  it('is anchored at the end only, like flannel', () => {
    assert.equal(parseSubnetKey('lease-10.5.52.0-24')?.subnet?.toString(), '10.5.52.0/24');
    assert.equal(parseSubnetKey('10.5.52.0-24x'), null);
  });

  it('formats keys back', () => {
    assert.equal(formatSubnetKey(IPv4Net.parse('10.5.52.0/24')), '10.5.52.0-24');
    assert.equal(formatSubnetKey(IPv4Net.parse('10.5.1.0/24'), IPv6Net.parse('fc00::/64')), '10.5.1.0-24&fc00::-64');
    // Go's canonical lower-case form, whatever spelling the network came from.
    assert.equal(
      formatSubnetKey(IPv4Net.parse('10.5.2.0/24'), IPv6Net.parse('FC00:0000:0:0002:0::/64')),
      '10.5.2.0-24&fc00:0:0:2::-64',
    );
    const key = formatSubnetKey(IPv4Net.parse('10.5.3.0/24'), IPv6Net.parse('fc00:0:0:3::/64'));
    assert.equal(parseSubnetKey(key)?.ipv6Subnet?.toString(), 'fc00:0:0:3::/64', 'parses back');
  });
});

describe('lease values', () => {
  it('round-trips the spec example byte for byte', () => {
    const text =
      '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}';
    const attrs = decodeLeaseValue(text);
    assert.deepEqual(attrs, {
      publicIP: '192.168.64.3',
      publicIPv6: null,
      backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' },
    });
    assert.equal(encodeLeaseValue(attrs), text);
  });

  it('omits an empty BackendType and absent BackendData', () => {
    assert.equal(
      encodeLeaseValue({ publicIP: '10.0.0.1', publicIPv6: null, backendType: '' }),
      '{"PublicIP":"10.0.0.1","PublicIPv6":null}',
    );
    assert.equal(
      encodeLeaseValue({ publicIP: '10.0.0.1', publicIPv6: null, backendType: 'host-gw' }),
      '{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"host-gw"}',
    );
  });

  it('writes PublicIPv6 and BackendV6Data when set, in struct order', () => {
    assert.equal(
      encodeLeaseValue({
        publicIP: '10.0.0.1',
        publicIPv6: 'fc00::1',
        backendType: 'vxlan',
        backendData: { VNI: 1 },
        backendV6Data: { VNI: 1 },
      }),
      '{"PublicIP":"10.0.0.1","PublicIPv6":"fc00::1","BackendType":"vxlan","BackendData":{"VNI":1},"BackendV6Data":{"VNI":1}}',
    );
  });

  it('round-trips a dual-stack vxlan lease byte for byte', () => {
    const text =
      '{"PublicIP":"192.168.1.11","PublicIPv6":"fc00:1::11","BackendType":"vxlan",' +
      '"BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:11"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:00:00:00:06:11"}}';
    const attrs = decodeLeaseValue(text);
    assert.deepEqual(attrs, {
      publicIP: '192.168.1.11',
      publicIPv6: 'fc00:1::11',
      backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: '0e:00:00:00:00:11' },
      backendV6Data: { VNI: 1, VtepMAC: '0e:00:00:00:06:11' },
    });
    assert.equal(encodeLeaseValue(attrs), text);
  });

  it('rejects a PublicIPv6 that is not an IPv6 address', () => {
    for (const bad of [
      '{"PublicIP":"1.2.3.4","PublicIPv6":"1.2.3.4"}',
      '{"PublicIP":"1.2.3.4","PublicIPv6":""}',
      '{"PublicIP":"1.2.3.4","PublicIPv6":6}',
    ]) {
      assert.throws(() => decodeLeaseValue(bad, 'k'), /^Error: k: PublicIPv6 must be an IPv6 string or null/, bad);
    }
  });

  it('escapes <, > and & like Go', () => {
    assert.equal(
      encodeLeaseValue({ publicIP: '10.0.0.1', publicIPv6: null, backendType: 'x', backendData: { a: '<&>' } }),
      '{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"x","BackendData":{"a":"\\u003c\\u0026\\u003e"}}',
    );
  });

  it('tolerates an OLD lease (no PublicIPv6, no VNI)', () => {
    const attrs = decodeLeaseValue(
      '{"PublicIP":"10.37.7.195","BackendType":"vxlan","BackendData":{"VtepMAC":"82:4b:b6:2f:54:4e"}}',
    );
    assert.deepEqual(attrs, {
      publicIP: '10.37.7.195',
      publicIPv6: null,
      backendType: 'vxlan',
      backendData: { VtepMAC: '82:4b:b6:2f:54:4e' },
    });
  });

  it('matches keys case-insensitively like Go and defaults a missing PublicIP to 0.0.0.0', () => {
    assert.deepEqual(decodeLeaseValue('{"publicip":"10.0.0.2","backendtype":"udp"}'), {
      publicIP: '10.0.0.2',
      publicIPv6: null,
      backendType: 'udp',
    });
    assert.equal(decodeLeaseValue('{}').publicIP, '0.0.0.0');
  });

  it('rejects malformed values with an error naming the key', () => {
    for (const bad of [
      '{',
      'not json',
      '[]',
      '"x"',
      'null',
      '{"PublicIP":5}',
      '{"PublicIP":"10.0.0"}',
      '{"PublicIP":"1.2.3.4","BackendType":3}',
    ]) {
      assert.throws(
        () => decodeLeaseValue(bad, '/p/subnets/10.0.0.0-24'),
        (e: unknown) => {
          assert.ok(e instanceof LeaseJsonError, bad);
          assert.match(e.message, /^\/p\/subnets\/10\.0\.0\.0-24: /);
          return true;
        },
      );
    }
  });
});
