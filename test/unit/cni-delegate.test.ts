import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildDelegate, delegateBytes } from '../../src/cni/delegate.ts';
import { goMarshal, GoStruct } from '../../src/cni/go-json.ts';
import { parseNetConf, DEFAULT_DATA_DIR, DEFAULT_SUBNET_FILE } from '../../src/cni/netconf.ts';
import { CniCode } from '../../src/cni/errors.ts';
import { parseSubnetEnv } from '../../src/subnet/subnet-env.ts';

const ENV = parseSubnetEnv(
  'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
  'subnet.env',
);
// The plugin entry of the default kube-flannel conflist, as libcni hands it over (name and cniVersion injected).
const DEFAULT_CONF = {
  cniVersion: '0.3.1',
  name: 'cbr0',
  type: 'flannel',
  delegate: { hairpinMode: true, isDefaultGateway: true },
};

function bytes(conf: Record<string, unknown>, env = ENV): string {
  return delegateBytes(parseNetConf(conf), env);
}

describe('delegate generation (ADD)', () => {
  it("produces the spec's exact string for the default kube-flannel conflist", () => {
    assert.equal(
      bytes(DEFAULT_CONF),
      '{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}',
    );
  });

  it('fills the netconf defaults (subnetFile, dataDir, empty delegate)', () => {
    const n = parseNetConf({ name: 'n' });
    assert.equal(n.subnetFile, DEFAULT_SUBNET_FILE);
    assert.equal(n.dataDir, DEFAULT_DATA_DIR);
    assert.deepEqual(n.delegate, {});
    assert.equal(
      bytes({ name: 'n' }),
      '{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1450,"name":"n","type":"bridge"}',
    );
  });

  it('sets ipMasq to the opposite of FLANNEL_IPMASQ', () => {
    const noMasq = parseSubnetEnv(
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
      'f',
    );
    assert.equal(buildDelegate(parseNetConf({ name: 'n' }), noMasq).ipMasq, true);
    assert.equal(buildDelegate(parseNetConf({ name: 'n' }), ENV).ipMasq, false);
  });

  it('keeps ipMasq, mtu, isGateway and type the delegate already has', () => {
    const d = buildDelegate(parseNetConf({ name: 'n', delegate: { ipMasq: true, mtu: 9000, isGateway: false } }), ENV);
    assert.equal(d.ipMasq, true);
    assert.equal(d.mtu, 9000);
    assert.equal(d.isGateway, false);
    const ptp = buildDelegate(parseNetConf({ name: 'n', delegate: { type: 'ptp' } }), ENV);
    assert.equal(ptp.type, 'ptp');
    assert.equal('isGateway' in ptp, false, 'isGateway is only defaulted for bridge');
  });

  it("copies the input cniVersion over the delegate's, and adds none when the input has none", () => {
    assert.equal(
      buildDelegate(parseNetConf({ name: 'n', cniVersion: '1.0.0', delegate: { cniVersion: '0.3.1' } }), ENV)
        .cniVersion,
      '1.0.0',
    );
    assert.equal('cniVersion' in buildDelegate(parseNetConf({ name: 'n' }), ENV), false);
  });

  it('merges input ipam: own type and keys kept, ranges replaced, input routes first (libcni field order)', () => {
    const out = bytes({
      name: 'n',
      ipam: {
        type: 'host-local',
        dataDir: '/tmp/ipam',
        ranges: [[{ subnet: '192.168.0.0/24' }]],
        routes: [
          { gw: '10.9.9.9', dst: '10.1.2.3/8', mtu: 1400, priority: 0, table: 0, bogus: 1 },
          { dst: 'FD00::0/8' },
        ],
      },
    });
    assert.equal(
      out,
      '{"ipMasq":false,"ipam":{"dataDir":"/tmp/ipam","ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.1.2.3/8","gw":"10.9.9.9","mtu":1400,"table":0},{"dst":"fd00::/8"},{"dst":"10.244.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1450,"name":"n","type":"bridge"}',
    );
    assert.equal(
      (buildDelegate(parseNetConf({ name: 'n', ipam: { type: 'static' } }), ENV).ipam as { type: string }).type,
      'static',
    );
  });

  it('rejects unparseable ipam.routes with the spec message', () => {
    for (const routes of [
      { dst: '10.0.0.0/8' },
      [{ dst: 'nope' }],
      [{ dst: '10.0.0.0/33' }],
      [{ gw: '1.2.3.4' }],
      [{ dst: '10.0.0.0/8', gw: 'x' }],
      [{ dst: '10.0.0.0/8', mtu: 1.5 }],
    ]) {
      assert.throws(
        () => bytes({ name: 'n', ipam: { routes } }),
        (e: Error & { code?: number }) => {
          assert.match(e.message, /^failed to parse ipam\.routes: /);
          assert.equal(e.code, CniCode.InvalidNetworkConfig);
          return true;
        },
        JSON.stringify(routes),
      );
    }
  });

  it('copies runtimeConfig into the delegate', () => {
    const d = buildDelegate(
      parseNetConf({
        name: 'n',
        runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] },
      }),
      ENV,
    );
    assert.deepEqual(d.runtimeConfig, { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });
    assert.match(
      goMarshal(d),
      /"runtimeConfig":\{"portMappings":\[\{"containerPort":80,"hostPort":8080,"protocol":"tcp"\}\]\}/,
    );
  });

  it('adds an IPv6 range and one route per network of both families', () => {
    const dual = parseSubnetEnv(
      'FLANNEL_NETWORK=10.244.0.0/16,10.250.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
      'f',
    );
    const ipam = JSON.parse(bytes({ name: 'n' }, dual)).ipam;
    assert.deepEqual(ipam.ranges, [[{ subnet: '10.244.1.0/24' }], [{ subnet: '2001:cafe:42:1::/64' }]]);
    assert.deepEqual(ipam.routes, [{ dst: '10.244.0.0/16' }, { dst: '10.250.0.0/16' }, { dst: '2001:cafe:42::/56' }]);
  });

  it('validates the delegate dictionary with the exact messages', () => {
    const cases: [unknown, string][] = [
      [{ type: 1 }, "'delegate' dictionary, if present, must have (string) 'type' field"],
      [{ type: null }, "'delegate' dictionary, if present, must have (string) 'type' field"],
      [{ name: 'x' }, "'delegate' dictionary must not have 'name' field, it'll be set by flannel"],
      [{ ipam: {} }, "'delegate' dictionary must not have 'ipam' field, it'll be set by flannel"],
    ];
    for (const [delegate, message] of cases) {
      assert.throws(() => parseNetConf({ name: 'n', delegate }), { message, code: CniCode.InvalidNetworkConfig });
    }
    assert.throws(() => parseNetConf({ name: 'n', delegate: [] }), {
      code: CniCode.InvalidNetworkConfig,
      message: /"delegate" must be a JSON object/,
    });
    assert.throws(() => parseNetConf({ name: 'n', subnetFile: 5 }), {
      code: CniCode.InvalidNetworkConfig,
      message: /"subnetFile" must be a string/,
    });
    assert.throws(() => parseNetConf({ cniVersion: '0.3.1' }), {
      code: CniCode.InvalidNetworkConfig,
      message: /^missing network name/,
    });
    assert.throws(() => parseNetConf({ name: 'a/b' }), {
      code: CniCode.InvalidNetworkConfig,
      message: /network name "a\/b" has invalid characters/,
    });
  });
});

describe('Go-compatible JSON', () => {
  it('sorts keys at every level, keeps struct order, escapes like encoding/json', () => {
    assert.equal(
      goMarshal({ b: { z: 1, a: [{ y: 2, x: 3 }] }, a: '<&>\u2028', c: null }),
      '{"a":"\\u003c\\u0026\\u003e\\u2028","b":{"a":[{"x":3,"y":2}],"z":1},"c":null}',
    );
    assert.equal(
      goMarshal(
        new GoStruct([
          ['z', 1],
          ['a', undefined],
          ['b', 'x'],
        ]),
      ),
      '{"z":1,"b":"x"}',
    );
    assert.equal(goMarshal([1.5, 1e21, -3, true]), '[1.5,1e+21,-3,true]');
  });
});
