import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backendBool, backendInt, backendOption, backendString, parseNetworkConfig } from '../../src/config/parse.ts';
import { formatIPv4 } from '../../src/ip/ipv4.ts';
import { formatIPv6 } from '../../src/ip/ipv6.ts';

const etcd = { validate: true };
const kube = { validate: false };

function etcdConfig(obj: Record<string, unknown>) {
  return parseNetworkConfig(JSON.stringify(obj), etcd);
}

function throwsExactly(fn: () => unknown, message: string) {
  assert.throws(fn, (e: Error) => {
    assert.equal(e.message, message);
    return true;
  });
}

describe('parseNetworkConfig: fields and defaults (docs/COMPATIBILITY.md, "Network config")', () => {
  it('parses a typical vxlan config', () => {
    const c = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":4}}', kube);
    assert.equal(c.network?.toString(), '10.244.0.0/16');
    assert.equal(c.backendType, 'vxlan');
    assert.deepEqual(c.backend, { Type: 'vxlan', VNI: 4 });
    assert.equal(c.enableIPv4, true);
    assert.equal(c.enableIPv6, false);
    assert.equal(c.enableNFTables, false);
  });

  it('matches keys case-insensitively, at the top level and in Backend', () => {
    const c = parseNetworkConfig(
      '{"network":"10.1.0.0/16","SUBNETLEN":25,"backend":{"type":"VXLAN"},"enablenftables":true}',
      kube,
    );
    assert.equal(c.network?.toString(), '10.1.0.0/16');
    assert.equal(c.subnetLen, 25);
    assert.equal(c.backendType, 'vxlan');
    assert.equal(c.enableNFTables, true);
  });

  it('lets the last of several case-variant keys win, like Go encoding/json', () => {
    const c = parseNetworkConfig('{"Network":"10.1.0.0/16","network":"10.2.0.0/16"}', kube);
    assert.equal(c.network?.toString(), '10.2.0.0/16');
  });

  it('ignores unknown keys', () => {
    const c = parseNetworkConfig('{"Network":"10.1.0.0/16","Foo":[1,2],"Bar":{"x":1}}', kube);
    assert.equal(c.network?.toString(), '10.1.0.0/16');
  });

  it('masks host bits off Network', () => {
    assert.equal(parseNetworkConfig('{"Network":"10.1.2.3/16"}', kube).network?.toString(), '10.1.0.0/16');
  });

  it('rejects an IPv6 Network with "invalid IPv4 CIDR format"', () => {
    throwsExactly(() => parseNetworkConfig('{"Network":"fd00::/64"}', kube), 'invalid IPv4 CIDR format');
  });

  it('rejects a malformed Network naming the value', () => {
    assert.throws(() => parseNetworkConfig('{"Network":"10.1.0.0"}', kube), /invalid CIDR address: 10\.1\.0\.0/);
    assert.throws(() => parseNetworkConfig('{"Network":"10.1.0.0/33"}', kube), /invalid CIDR address: 10\.1\.0\.0\/33/);
  });

  it('defaults EnableIPv4 to true when absent and honours false', () => {
    assert.equal(parseNetworkConfig('{}', kube).enableIPv4, true);
    assert.equal(parseNetworkConfig('{"EnableIPv4":null}', kube).enableIPv4, true);
    assert.equal(parseNetworkConfig('{"EnableIPv4":false,"EnableIPv6":true}', kube).enableIPv4, false);
  });

  it('uses udp when Backend is absent (flannel code default)', () => {
    const c = parseNetworkConfig('{"Network":"10.1.0.0/16"}', kube);
    assert.equal(c.backendType, 'udp');
    assert.deepEqual(c.backend, {});
  });

  it('gives the empty type for "Backend": {} so the registry reports an unknown type', () => {
    assert.equal(parseNetworkConfig('{"Network":"10.1.0.0/16","Backend":{}}', kube).backendType, '');
  });

  it('lower-cases the backend type', () => {
    assert.equal(parseNetworkConfig('{"Backend":{"Type":"Host-GW"}}', kube).backendType, 'host-gw');
  });

  it('does not validate or default in kube mode', () => {
    const c = parseNetworkConfig('{"Network":"10.1.0.0/30"}', kube);
    assert.equal(c.subnetLen, 0);
    assert.equal(c.subnetMin, undefined);
    assert.equal(c.subnetMax, undefined);
    assert.equal(parseNetworkConfig('{}', kube).network, undefined);
  });

  it('accepts IPv6-only networks (EnableIPv4 false), validating only the IPv6 half in etcd mode', () => {
    const c = etcdConfig({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48', Network: 'not checked' });
    assert.equal(c.enableIPv4, false);
    assert.equal(c.ipv6Network?.toString(), 'fc00::/48');
    assert.equal(c.ipv6SubnetLen, 64);
    assert.equal(c.subnetMin, undefined);
    assert.equal(c.network, undefined, 'the IPv4 keys are ignored');
    const k = parseNetworkConfig('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48"}', kube);
    assert.equal(k.enableIPv4, false);
    assert.equal(k.ipv6SubnetLen, 0);
    throwsExactly(
      () => etcdConfig({ EnableIPv4: false, EnableIPv6: true }),
      'please define a correct IPv6Network parameter in the flannel config',
    );
  });

  it('refuses a config with neither family ("none defined stack"), naming the fix', () => {
    const msg =
      'network config: none defined stack: EnableIPv4 and EnableIPv6 are both false; enable at least one (with Network / IPv6Network)';
    throwsExactly(() => parseNetworkConfig('{"EnableIPv4":false}', kube), msg);
    throwsExactly(() => etcdConfig({ EnableIPv4: false, EnableIPv6: false, Network: '10.1.0.0/16' }), msg);
  });

  it('reads the dual-stack keys case-insensitively, masking host bits, without defaults in kube mode', () => {
    const c = parseNetworkConfig(
      '{"Network":"10.1.0.0/16","enableipv6":true,"ipv6network":"FC00::1/48","IPV6SUBNETLEN":80}',
      kube,
    );
    assert.equal(c.enableIPv6, true);
    assert.equal(c.ipv6Network?.toString(), 'fc00::/48');
    assert.equal(c.ipv6SubnetLen, 80);
    assert.equal(c.ipv6SubnetMin, undefined);
    assert.equal(c.ipv6SubnetMax, undefined);
  });

  it('ignores the IPv6 keys while EnableIPv6 is off', () => {
    const c = etcdConfig({ Network: '10.1.0.0/16', IPv6Network: 'fc00::/48', IPv6SubnetLen: 64 });
    assert.equal(c.enableIPv6, false);
    assert.equal(c.ipv6Network, undefined);
    assert.equal(c.ipv6SubnetLen, undefined);
  });

  it('rejects a malformed or IPv4 IPv6Network', () => {
    throwsExactly(
      () => parseNetworkConfig('{"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"10.2.0.0/16"}', kube),
      'invalid IPv6 CIDR format',
    );
    assert.throws(
      () => parseNetworkConfig('{"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::"}', kube),
      /^NetworkConfigError: network config: invalid CIDR address: fc00:: \(IPv6Network must look like "fc00::\/48"\)$/,
    );
    assert.throws(
      () => parseNetworkConfig('{"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":48}', kube),
      /IPv6Network must be a CIDR string/,
    );
    assert.throws(
      () => parseNetworkConfig('{"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6SubnetMin":"10.1.0.0"}', kube),
      /IPv6SubnetMin "10\.1\.0\.0" is not a valid IPv6 address/,
    );
    assert.throws(
      () => parseNetworkConfig('{"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6SubnetLen":-1}', kube),
      /IPv6SubnetLen must be a non-negative integer/,
    );
  });
});

describe('parseNetworkConfig: bad input', () => {
  it('names the input and the expected shape for malformed JSON', () => {
    assert.throws(
      () => parseNetworkConfig('{"Network": "10.1.0.0/16",', kube),
      (e: Error) =>
        /^network config: invalid JSON: /.test(e.message) &&
        e.message.includes('expected an object like {"Network":"10.244.0.0/16"'),
    );
  });

  it('rejects JSON that is not an object', () => {
    assert.throws(() => parseNetworkConfig('[1]', kube), /network config: expected a JSON object/);
    assert.throws(() => parseNetworkConfig('null', kube), /network config: expected a JSON object/);
  });

  it('rejects wrong types with the key named', () => {
    assert.throws(() => parseNetworkConfig('{"Network":42}', kube), /Network must be a CIDR string/);
    assert.throws(
      () => parseNetworkConfig('{"SubnetLen":"24"}', kube),
      /SubnetLen must be a non-negative integer.*got "24"/,
    );
    assert.throws(() => parseNetworkConfig('{"SubnetLen":-1}', kube), /SubnetLen must be a non-negative integer/);
    assert.throws(() => parseNetworkConfig('{"SubnetLen":24.5}', kube), /SubnetLen must be a non-negative integer/);
    assert.throws(
      () => parseNetworkConfig('{"SubnetMin":"10.1.1"}', kube),
      /SubnetMin "10\.1\.1" is not a valid IPv4 address/,
    );
    assert.throws(() => parseNetworkConfig('{"SubnetMax":7}', kube), /SubnetMax must be an IPv4 address string/);
    assert.throws(
      () => parseNetworkConfig('{"EnableIPv4":"yes"}', kube),
      /EnableIPv4 must be true or false, got "yes"/,
    );
    assert.throws(() => parseNetworkConfig('{"Backend":"vxlan"}', kube), /Backend must be an object/);
    assert.throws(() => parseNetworkConfig('{"Backend":{"Type":1}}', kube), /Backend.Type must be a string/);
  });
});

describe('parseNetworkConfig: etcd-mode validation (docs/COMPATIBILITY.md, "Network config")', () => {
  it('defaults 10.5.0.0/16 to SubnetLen 24, Min 10.5.1.0, Max 10.5.255.0', () => {
    const c = etcdConfig({ Network: '10.5.0.0/16' });
    assert.equal(c.subnetLen, 24);
    assert.equal(formatIPv4(c.subnetMin!), '10.5.1.0');
    assert.equal(formatIPv4(c.subnetMax!), '10.5.255.0');
  });

  it('defaults 10.5.0.0/26 to SubnetLen 28', () => {
    const c = etcdConfig({ Network: '10.5.0.0/26' });
    assert.equal(c.subnetLen, 28);
    assert.equal(formatIPv4(c.subnetMin!), '10.5.0.16');
    assert.equal(formatIPv4(c.subnetMax!), '10.5.0.48');
  });

  it('uses 24 for every prefix up to /22 and prefix+2 above', () => {
    assert.equal(etcdConfig({ Network: '10.0.0.0/8' }).subnetLen, 24);
    assert.equal(etcdConfig({ Network: '10.0.0.0/22' }).subnetLen, 24);
    assert.equal(etcdConfig({ Network: '10.0.0.0/23' }).subnetLen, 25);
    assert.equal(etcdConfig({ Network: '10.0.0.0/28' }).subnetLen, 30);
  });

  it('requires a Network', () => {
    throwsExactly(() => etcdConfig({}), 'please define a correct Network parameter in the flannel config');
    throwsExactly(() => etcdConfig({ Network: '' }), 'please define a correct Network parameter in the flannel config');
  });

  it('skips all IPv4 checks when EnableIPv4 is false', () => {
    const c = etcdConfig({
      EnableIPv4: false,
      EnableIPv6: true,
      IPv6Network: 'fc00::/48',
      Network: '10.1.0.0/30',
      SubnetLen: 20,
    });
    assert.equal(c.network, undefined);
    assert.equal(c.subnetLen, 20, 'read as given, not checked against a /30');
    assert.equal(c.subnetMin, undefined);
  });

  it('rejects a network smaller than /28', () => {
    throwsExactly(
      () => etcdConfig({ Network: '10.5.0.0/29' }),
      'network is too small. Minimum useful network prefix is /28',
    );
  });

  it('checks a given SubnetLen', () => {
    throwsExactly(() => etcdConfig({ Network: '10.5.0.0/16', SubnetLen: 31 }), 'SubnetLen must be less than /31');
    throwsExactly(
      () => etcdConfig({ Network: '10.5.0.0/16', SubnetLen: 17 }),
      'network must be able to accommodate at least four subnets: Network 10.5.0.0/16 is too small for SubnetLen 17; ' +
        'set SubnetLen to 18 or more (leave it out to get 24, the default for a /16), or make Network larger (/15 or shorter)',
    );
    const c = etcdConfig({ Network: '10.5.0.0/16', SubnetLen: 18 });
    assert.equal(c.subnetLen, 18);
    assert.equal(formatIPv4(c.subnetMin!), '10.5.64.0');
    assert.equal(formatIPv4(c.subnetMax!), '10.5.192.0');
    assert.equal(etcdConfig({ Network: '10.5.0.0/16', SubnetLen: 30 }).subnetLen, 30);
  });

  it('offers only the fix that exists when Network or SubnetLen is at its limit', () => {
    throwsExactly(
      () => etcdConfig({ Network: '10.5.0.0/26', SubnetLen: 27 }),
      'network must be able to accommodate at least four subnets: Network 10.5.0.0/26 is too small for SubnetLen 27; ' +
        'set SubnetLen to 28 or more (leave it out to get 28, the default for a /26), or make Network larger (/25 or shorter)',
    );
    throwsExactly(
      () => etcdConfig({ Network: '10.5.0.0/29', SubnetLen: 30 }),
      'network must be able to accommodate at least four subnets: Network 10.5.0.0/29 is too small for SubnetLen 30; ' +
        'make Network larger (/28 or shorter)',
    );
    throwsExactly(
      () => etcdConfig({ Network: '10.5.0.0/16', SubnetLen: 1 }),
      'network must be able to accommodate at least four subnets: Network 10.5.0.0/16 is too small for SubnetLen 1; ' +
        'set SubnetLen to 18 or more (leave it out to get 24, the default for a /16)',
    );
    throwsExactly(
      () => etcdConfig({ Network: '10.5.0.8/30', SubnetLen: 1 }),
      'network must be able to accommodate at least four subnets: Network 10.5.0.8/30 is too small for SubnetLen 1; ' +
        'make Network larger (/28 or shorter) and set SubnetLen to at least its prefix + 2',
    );
  });

  it('treats SubnetLen 0 as not given', () => {
    assert.equal(etcdConfig({ Network: '10.5.0.0/16', SubnetLen: 0 }).subnetLen, 24);
  });

  it('keeps a given SubnetMin/SubnetMax inside the Network', () => {
    const c = etcdConfig({ Network: '10.5.0.0/16', SubnetMin: '10.5.10.0', SubnetMax: '10.5.20.0' });
    assert.equal(formatIPv4(c.subnetMin!), '10.5.10.0');
    assert.equal(formatIPv4(c.subnetMax!), '10.5.20.0');
    throwsExactly(
      () => etcdConfig({ Network: '10.5.0.0/16', SubnetMin: '10.6.0.0' }),
      'SubnetMin is not in the range of the Network',
    );
    throwsExactly(
      () => etcdConfig({ Network: '10.5.0.0/16', SubnetMax: '10.4.255.0' }),
      'SubnetMax is not in the range of the Network',
    );
  });

  it('requires SubnetMin/SubnetMax on a SubnetLen boundary', () => {
    throwsExactly(
      () => etcdConfig({ Network: '10.5.0.0/16', SubnetMin: '10.5.1.7' }),
      'SubnetMin is not on a SubnetLen boundary: 10.5.1.7',
    );
    throwsExactly(
      () => etcdConfig({ Network: '10.5.0.0/16', SubnetMax: '10.5.9.128' }),
      'SubnetMax is not on a SubnetLen boundary: 10.5.9.128',
    );
  });
});

describe('backend option helpers', () => {
  const backend = { Type: 'vxlan', vni: 7, GBP: true, Port: 'x', directrouting: 'yes', Name: 'n' };

  it('looks options up case-insensitively', () => {
    assert.equal(backendOption(backend, 'VNI'), 7);
    assert.equal(backendOption(backend, 'type'), 'vxlan');
    assert.equal(backendOption(backend, 'Learning'), undefined);
  });

  it('returns defaults for absent options and typed values otherwise', () => {
    assert.equal(backendInt(backend, 'VNI', 1), 7);
    assert.equal(backendInt(backend, 'MTU', 0), 0);
    assert.equal(backendBool(backend, 'gbp', false), true);
    assert.equal(backendBool(backend, 'Learning', false), false);
    assert.equal(backendString(backend, 'name', ''), 'n');
  });

  it('names the option on a wrong type', () => {
    throwsExactly(() => backendInt(backend, 'Port', 0), 'Backend.Port must be an integer, got "x"');
    throwsExactly(() => backendInt({ VNI: 1.5 }, 'VNI', 1), 'Backend.VNI must be an integer, got 1.5');
    throwsExactly(
      () => backendBool(backend, 'DirectRouting', false),
      'Backend.DirectRouting must be true or false, got "yes"',
    );
    throwsExactly(() => backendString({ Name: 3 }, 'Name', ''), 'Backend.Name must be a string, got 3');
  });
});

describe('parseNetworkConfig: etcd-mode IPv6 validation (docs/COMPATIBILITY.md, "Network config")', () => {
  const dual = (v6: Record<string, unknown>) => etcdConfig({ Network: '10.5.0.0/16', EnableIPv6: true, ...v6 });

  it('defaults fc00::/48 to IPv6SubnetLen 64, Min fc00:0:0:1::, Max fc00:0:0:ffff::', () => {
    const c = dual({ IPv6Network: 'fc00::/48' });
    assert.equal(c.ipv6SubnetLen, 64);
    assert.equal(formatIPv6(c.ipv6SubnetMin!), 'fc00:0:0:1::');
    assert.equal(formatIPv6(c.ipv6SubnetMax!), 'fc00:0:0:ffff::');
    assert.equal(c.subnetLen, 24, 'the IPv4 side is still validated');
  });

  it('uses 64 for every prefix up to /62 and prefix+2 above', () => {
    for (const [prefix, want] of [
      [8, 64],
      [62, 64],
      [63, 65],
      [100, 102],
      [124, 126],
    ] as const) {
      assert.equal(dual({ IPv6Network: `fc00::/${prefix}` }).ipv6SubnetLen, want, `/${prefix}`);
    }
    const small = dual({ IPv6Network: 'fc00::/124' });
    assert.equal(formatIPv6(small.ipv6SubnetMin!), 'fc00::4');
    assert.equal(formatIPv6(small.ipv6SubnetMax!), 'fc00::c');
  });

  it('requires an IPv6Network', () => {
    throwsExactly(() => dual({}), 'please define a correct IPv6Network parameter in the flannel config');
    throwsExactly(
      () => dual({ IPv6Network: '' }),
      'please define a correct IPv6Network parameter in the flannel config',
    );
  });

  it('rejects a network smaller than /124', () => {
    throwsExactly(
      () => dual({ IPv6Network: 'fc00::/125' }),
      'IPv6Network is too small. Minimum useful network prefix is /124',
    );
  });

  it('checks a given IPv6SubnetLen', () => {
    throwsExactly(() => dual({ IPv6Network: 'fc00::/48', IPv6SubnetLen: 127 }), 'SubnetLen must be less than /127');
    throwsExactly(
      () => dual({ IPv6Network: 'fc00::/48', IPv6SubnetLen: 49 }),
      'network must be able to accommodate at least four subnets: IPv6Network fc00::/48 is too small for IPv6SubnetLen 49; ' +
        'set IPv6SubnetLen to 50 or more (leave it out to get 64, the default for a /48), or make IPv6Network larger (/47 or shorter)',
    );
    throwsExactly(
      () => dual({ IPv6Network: 'fc00::/125', IPv6SubnetLen: 126 }),
      'network must be able to accommodate at least four subnets: IPv6Network fc00::/125 is too small for IPv6SubnetLen 126; ' +
        'make IPv6Network larger (/124 or shorter)',
    );
    assert.equal(dual({ IPv6Network: 'fc00::/48', IPv6SubnetLen: 50 }).ipv6SubnetLen, 50);
    assert.equal(dual({ IPv6Network: 'fc00::/48', IPv6SubnetLen: 126 }).ipv6SubnetLen, 126);
    assert.equal(dual({ IPv6Network: 'fc00::/48', IPv6SubnetLen: 0 }).ipv6SubnetLen, 64, '0 counts as not given');
  });

  it('keeps a given IPv6SubnetMin/IPv6SubnetMax inside the IPv6Network', () => {
    const c = dual({ IPv6Network: 'fc00::/48', IPv6SubnetMin: 'fc00:0:0:10::', IPv6SubnetMax: 'fc00:0:0:20::' });
    assert.equal(formatIPv6(c.ipv6SubnetMin!), 'fc00:0:0:10::');
    assert.equal(formatIPv6(c.ipv6SubnetMax!), 'fc00:0:0:20::');
    throwsExactly(
      () => dual({ IPv6Network: 'fc00::/48', IPv6SubnetMin: 'fc00:1::' }),
      'IPv6SubnetMin is not in the range of the IPv6Network',
    );
    throwsExactly(
      () => dual({ IPv6Network: 'fc00::/48', IPv6SubnetMax: 'fd00::' }),
      'IPv6SubnetMax is not in the range of the IPv6Network',
    );
    assert.equal(
      formatIPv6(dual({ IPv6Network: 'fc00::/48', IPv6SubnetMin: '::' }).ipv6SubnetMin!),
      'fc00:0:0:1::',
      ':: means not given',
    );
  });

  it('requires IPv6SubnetMin/IPv6SubnetMax on a SubnetLen boundary', () => {
    throwsExactly(
      () => dual({ IPv6Network: 'fc00::/48', IPv6SubnetMin: 'fc00:0:0:10::1' }),
      'IPv6SubnetMin is not on a SubnetLen boundary: fc00:0:0:10::1',
    );
    throwsExactly(
      () => dual({ IPv6Network: 'fc00::/48', IPv6SubnetMax: 'fc00:0:0:20:8000::' }),
      'IPv6SubnetMax is not on a SubnetLen boundary: fc00:0:0:20:8000::',
    );
  });
});

describe('parseNetworkConfig: the source option names where the config came from', () => {
  const source = '/etc/kube-flannel/net-conf.json';

  it('prefixes parse errors with the source', () => {
    throwsExactly(
      () => parseNetworkConfig('{"EnableIPv4":false}', { validate: false, source }),
      '/etc/kube-flannel/net-conf.json: network config: none defined stack: EnableIPv4 and EnableIPv6 are both false; ' +
        'enable at least one (with Network / IPv6Network)',
    );
    throwsExactly(
      () => parseNetworkConfig('{"Network":"fd00::/64"}', { validate: false, source }),
      '/etc/kube-flannel/net-conf.json: invalid IPv4 CIDR format',
    );
  });

  it("prefixes validation errors with the source, keeping flannel's text after it", () => {
    const text = JSON.stringify({ Network: '10.5.0.0/16', SubnetLen: 31 });
    throwsExactly(
      () => parseNetworkConfig(text, { validate: true, source: '/coreos.com/network/config' }),
      '/coreos.com/network/config: SubnetLen must be less than /31',
    );
    throwsExactly(
      () => parseNetworkConfig('{}', { validate: true, source: '/coreos.com/network/config' }),
      '/coreos.com/network/config: please define a correct Network parameter in the flannel config',
    );
  });

  it('keeps the error a NetworkConfigError with its code', () => {
    assert.throws(
      () => parseNetworkConfig('[1]', { validate: false, source }),
      (e: Error & { code?: string }) =>
        e.name === 'NetworkConfigError' &&
        e.code === 'EBADNETCONF' &&
        e.message.startsWith(`${source}: network config: expected a JSON object`),
    );
  });

  it('leaves the message as it was without a source', () => {
    throwsExactly(() => parseNetworkConfig('{"Network":"fd00::/64"}', kube), 'invalid IPv4 CIDR format');
    throwsExactly(() => etcdConfig({}), 'please define a correct Network parameter in the flannel config');
  });
});
