import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  bufferToIp,
  bufferToMac,
  ipToBuffer,
  macToBuffer,
  parseCidr,
  randomLocalMac,
  scopeName,
  scopeNumber,
} from '../../src/netlink/codec.ts';
import { NetlinkError, isNetlinkCode, toNetlinkError } from '../../src/netlink/errors.ts';

describe('netlink codec', () => {
  it('round-trips IPv4 addresses through their 4 bytes', () => {
    assert.deepEqual([...ipToBuffer('10.244.2.0')], [10, 244, 2, 0]);
    assert.equal(bufferToIp(Buffer.from([192, 168, 1, 12])), '192.168.1.12');
    assert.throws(() => ipToBuffer('10.244.2.256'), /invalid IP address "10.244.2.256"/);
    assert.throws(() => ipToBuffer('flannel'), /invalid IP address/);
  });

  it('writes IPv6 in canonical compressed form and parses every spelling', () => {
    const cases: Array<[string, string]> = [
      ['fe80::1', 'fe80::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['::', '::'],
      ['::ffff:10.0.0.1', '::ffff:a00:1'],
      ['fd00:1:2:3:4:5:6:7', 'fd00:1:2:3:4:5:6:7'],
    ];
    for (const [input, canonical] of cases) assert.equal(bufferToIp(ipToBuffer(input)), canonical, input);
    assert.throws(() => ipToBuffer('1::2::3'), /invalid IP address/);
    assert.throws(() => ipToBuffer('1:2:3'), /invalid IP address/);
  });

  it('converts MACs and rejects malformed ones with an example of the right form', () => {
    assert.equal(bufferToMac(macToBuffer('0E:2A:01:02:03:ff')), '0e:2a:01:02:03:ff');
    assert.throws(() => macToBuffer('0e:2a:01:02:03'), /expected six hex octets like 0e:2a:01:02:03:04/);
  });

  it('parses CIDRs and bare addresses as host prefixes', () => {
    assert.deepEqual(parseCidr('10.244.1.0/24'), { ip: '10.244.1.0', prefixLen: 24, family: 4 });
    assert.deepEqual(parseCidr('10.244.1.0'), { ip: '10.244.1.0', prefixLen: 32, family: 4 });
    assert.deepEqual(parseCidr('fd00::/64'), { ip: 'fd00::', prefixLen: 64, family: 6 });
    assert.throws(() => parseCidr('10.0.0.0/33'), /invalid CIDR "10.0.0.0\/33"/);
    assert.throws(() => parseCidr('10.0.0.0/x'), /invalid CIDR/);
  });

  it('names scopes the way iproute2 does and maps them back', () => {
    assert.equal(scopeName(0), 'universe');
    assert.equal(scopeName('LINK'), 'link');
    assert.equal(scopeName(254), 'host');
    assert.equal(scopeName(17), '17');
    assert.equal(scopeNumber('nowhere'), 255);
    assert.equal(scopeNumber('17'), 17);
    assert.throws(() => scopeNumber('galaxy' as never), /unknown route scope "galaxy"/);
  });

  it('makes locally administered unicast MACs whatever the random bytes are', () => {
    for (const first of [0x00, 0x01, 0xff, 0xfe, 0x03]) {
      const mac = randomLocalMac(() => Uint8Array.from([first, 1, 2, 3, 4, 5]));
      const b0 = parseInt(mac.slice(0, 2), 16);
      assert.equal(b0 & 1, 0, `multicast bit of ${mac}`);
      assert.equal(b0 & 2, 2, `local bit of ${mac}`);
      assert.equal(mac.slice(3), '01:02:03:04:05');
    }
  });
});

describe('netlink errors', () => {
  it('turns the library\'s "Request rejected: EEXIST" into code EEXIST with the operation', () => {
    const e = toNetlinkError('newRoute 10.244.2.0/24', new Error('Request rejected: EEXIST'));
    assert.ok(e instanceof NetlinkError);
    assert.equal(e.code, 'EEXIST');
    assert.equal(e.op, 'newRoute 10.244.2.0/24');
    assert.match(e.message, /newRoute 10.244.2.0\/24: EEXIST/);
    assert.ok(isNetlinkCode(e, 'ENOENT', 'EEXIST'));
    assert.ok(!isNetlinkCode(e, 'ESRCH'));
  });

  it('reports timeouts as ETIMEDOUT and keeps unknown errors readable', () => {
    assert.equal(toNetlinkError('getLinks', new Error('Timeout has been reached')).code, 'ETIMEDOUT');
    const other = toNetlinkError('getLinks', new Error('socket closed'));
    assert.equal(other.code, 'EUNKNOWN');
    assert.match(other.message, /socket closed/);
    assert.equal(toNetlinkError('x', new Error('Request rejected: 523')).code, 'errno 523');
  });
});
