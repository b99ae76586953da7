// Property tests for the parsers of untrusted input (etcd keys and values, net-conf.json, subnet.env, CNI stdin):
// whatever the bytes, each one returns a value or throws its own error, and what its writer produces reads back.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IPv4Net, formatIPv4 } from '../../src/ip/ipv4.ts';
import { IPv6Net, formatIPv6 } from '../../src/ip/ipv6.ts';
import {
  LeaseJsonError,
  decodeLeaseValue,
  encodeLeaseValue,
  formatSubnetKey,
  parseSubnetKey,
} from '../../src/subnet/lease-json.ts';
import type { LeaseAttrs } from '../../src/subnet/lease.ts';
import { NetworkConfigError, parseNetworkConfig } from '../../src/config/parse.ts';
import { formatSubnetEnv, parseSubnetEnv, type SubnetEnvInput } from '../../src/subnet/subnet-env.ts';
import { CniCode, CniError } from '../../src/cni/errors.ts';
import {
  DEFAULT_DATA_DIR,
  DEFAULT_SUBNET_FILE,
  configVersion,
  decodeConfig,
  parseNetConf,
} from '../../src/cni/netconf.ts';
import { SUPPORTED_VERSIONS } from '../../src/cni/versions.ts';

const RUNS = { numRuns: 300 };
// Each deep-nesting run parses tens of thousands of levels: a few runs say enough.
const DEEP_RUNS = { numRuns: 10 };

/** Runs `parse`; an error that is not `own` fails the property, naming what escaped. */
function returnsOrThrowsOwn<T>(parse: () => T, own: (e: unknown) => boolean, what: string): T | undefined {
  try {
    return parse();
  } catch (e) {
    if (own(e)) return undefined;
    const err = e as Error;
    throw new assert.AssertionError({ message: `${what} threw ${err?.name}: ${err?.message?.slice(0, 200)}` });
  }
}

/** The same JSON value as a parser sees it (-0 becomes 0, undefined members drop out). */
const viaJson = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

// Untrusted input: any code points, any JSON text, any JS value as JSON text (undefined as its name, not JSON).
const anyText = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary-ascii' }));
const anyJsonText = fc.oneof(
  fc.json(),
  fc.anything().map((v) => JSON.stringify(v) ?? String(v)),
);
/**
 * An object with these keys (in any letter case when `caseless`, as Go's json matches them), repeats allowed, each
 * value mostly a valid one and otherwise any JSON value.
 */
function objectOf(members: Record<string, fc.Arbitrary<unknown>>, caseless = true): fc.Arbitrary<string> {
  const member = fc.oneof(
    ...Object.entries(members).map(([k, valid]) =>
      fc.tuple(
        caseless ? fc.mixedCase(fc.constant(k)) : fc.constant(k),
        fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: fc.jsonValue() }),
      ),
    ),
  );
  return fc
    .array(member, { maxLength: 8 })
    .map((ms) => `{${ms.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
}
/** JSON nested deeper than JSON.stringify can recurse (about 4,100 levels on Node 20's default stack). */
const deep = fc.record({ depth: fc.integer({ min: 10_000, max: 40_000 }), arrays: fc.boolean() });
/** The nested text itself: kept out of the counterexample, which then reads `{depth:10000,arrays:true}`. */
const nested = ({ depth, arrays }: { depth: number; arrays: boolean }) =>
  arrays ? '['.repeat(depth) + ']'.repeat(depth) : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
/** `d` alone for '', else `{"<field>":d}` after the members in `before`. */
const inField = (field: string, d: string, before = '') =>
  field === '' ? d : `{${before}${JSON.stringify(field)}:${d}}`;

const ipv4 = fc.integer({ min: 0, max: 0xffffffff });
const v4net = (min: number, max: number) =>
  fc.tuple(ipv4, fc.integer({ min, max })).map(([ip, p]) => new IPv4Net(ip, p));
const v6net = (min: number, max: number) =>
  fc.tuple(fc.bigUintN(128), fc.integer({ min, max })).map(([ip, p]) => new IPv6Net(ip, p));

describe('subnet keys (parseSubnetKey / formatSubnetKey)', () => {
  // Digits, dots, dashes, '&', hex and ':' hit the key regex often; the structured form reaches the CIDR checks.
  const keyish = fc.oneof(
    anyText,
    fc.string({ unit: fc.constantFrom(...'0123456789.-&abcdef:/x'.split('')), maxLength: 40 }),
    fc
      .tuple(
        fc.array(fc.nat(300), { minLength: 4, maxLength: 4 }),
        fc.nat(40),
        fc.option(fc.tuple(fc.ipV6(), fc.nat(140))),
      )
      .map(([o, p, v6]) => `${o.join('.')}-${p}${v6 ? `&${v6[0]}-${v6[1]}` : ''}`),
  );

  it('returns a subnet key or null for any string, never throws, and what it returns formats back to itself', () => {
    fc.assert(
      fc.property(keyish, (key) => {
        const k = parseSubnetKey(key);
        if (k === null) return;
        assert.ok(k.subnet || k.ipv6Subnet, 'a parsed key has an IPv4 or an IPv6 subnet');
        if (k.subnet) assert.ok(k.subnet.prefix >= 1, 'a /0 is only the IPv6-only marker');
        assert.deepEqual(parseSubnetKey(formatSubnetKey(k.subnet, k.ipv6Subnet)), k);
      }),
      RUNS,
    );
  });

  it('reads back every IPv4, dual-stack and IPv6-only key it writes, with or without the etcd path', () => {
    const path = fc.constantFrom('', '/coreos.com/network/subnets/', '/custom/prefix/subnets/');
    const subnets = fc.oneof(
      fc.record({ subnet: v4net(1, 32) }),
      fc.record({ subnet: v4net(1, 32), ipv6Subnet: v6net(0, 128) }),
      fc.record({ ipv6Subnet: v6net(0, 128) }),
    );
    fc.assert(
      fc.property(path, subnets, (prefix, s: { subnet?: IPv4Net; ipv6Subnet?: IPv6Net }) => {
        const k = parseSubnetKey(prefix + formatSubnetKey(s.subnet, s.ipv6Subnet));
        assert.ok(k);
        assert.equal(k.subnet?.toString(), s.subnet?.toString());
        assert.equal(k.ipv6Subnet?.toString(), s.ipv6Subnet?.toString());
      }),
      RUNS,
    );
  });
});

describe('lease values (decodeLeaseValue / encodeLeaseValue)', () => {
  const isLeaseError = (e: unknown) =>
    e instanceof LeaseJsonError && e.code === 'EBADLEASE' && e.message.startsWith('k: ');
  const leaseish = objectOf({
    PublicIP: fc.ipV4(),
    PublicIPv6: fc.option(fc.ipV6()),
    BackendType: fc.constantFrom('vxlan', 'host-gw', 'udp', ''),
    BackendData: fc.dictionary(fc.string(), fc.jsonValue()),
    BackendV6Data: fc.dictionary(fc.string(), fc.jsonValue()),
  });

  it('returns lease attrs or throws LeaseJsonError naming the key, for any text, JSON or lease-shaped object', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, anyJsonText, { weight: 2, arbitrary: leaseish }), (text) => {
        const attrs = returnsOrThrowsOwn(() => decodeLeaseValue(text, 'k'), isLeaseError, 'decodeLeaseValue');
        if (!attrs) return;
        assert.equal(typeof attrs.publicIP, 'string');
        assert.ok(attrs.publicIPv6 === null || typeof attrs.publicIPv6 === 'string');
        assert.equal(typeof attrs.backendType, 'string');
      }),
      RUNS,
    );
  });

  // A member nested ~4,100 levels deep once escaped as RangeError from JSON.stringify in the error message, e.g.
  // `{"PublicIP":[[[…10000 levels…]]]}` (~20 KB): listLeases rethrows anything but LeaseJsonError, so one such value
  // under the subnets prefix failed every node's listing instead of being skipped as malformed (util/json.ts jsonSnippet).
  it('throws LeaseJsonError, not a stack overflow, for a deeply nested PublicIP, PublicIPv6 or BackendType', () => {
    const field = fc.constantFrom('PublicIP', 'PublicIPv6', 'BackendType');
    fc.assert(
      fc.property(field, deep, (f, d) => {
        returnsOrThrowsOwn(() => decodeLeaseValue(inField(f, nested(d)), 'k'), isLeaseError, 'decodeLeaseValue');
      }),
      DEEP_RUNS,
    );
  });

  it('decodes what it encodes: IPv4 public IP, optional IPv6, backend type and backend data', () => {
    const vxlanData = fc.record({
      VNI: fc.integer({ min: 1, max: 0xffffff }),
      VtepMAC: fc.mixedCase(fc.constant('0e:7a:1b:2c:3d:4e')),
    });
    const backendData = fc.oneof(vxlanData, fc.dictionary(fc.string(), fc.jsonValue()), fc.jsonValue());
    const attrs = fc.record(
      {
        publicIP: fc.ipV4(),
        publicIPv6: fc.oneof(fc.constant(null), fc.ipV6(), fc.bigUintN(128).map(formatIPv6)),
        // Strings with <, >, & and U+2028 take Go's \u escapes on the way out.
        backendType: fc.oneof(
          fc.constantFrom('vxlan', 'host-gw', 'udp', '', 'extension'),
          fc.string({ unit: 'binary' }),
        ),
        backendData,
        backendV6Data: backendData,
      },
      { requiredKeys: ['publicIP', 'publicIPv6', 'backendType'] },
    );
    fc.assert(
      fc.property(attrs, (a: LeaseAttrs) => {
        assert.deepEqual(decodeLeaseValue(encodeLeaseValue(a)), viaJson(a));
      }),
      RUNS,
    );
  });
});

describe('network config (parseNetworkConfig)', () => {
  const isConfigError = (e: unknown) =>
    e instanceof NetworkConfigError && e.code === 'EBADNETCONF' && e.message.length > 0;
  const backendish = fc.record(
    {
      Type: fc.mixedCase(fc.constantFrom('vxlan', 'host-gw', 'udp')),
      VNI: fc.integer(),
      Port: fc.integer(),
      DirectRouting: fc.boolean(),
    },
    { requiredKeys: [] },
  );
  const configish = objectOf({
    Network: v4net(0, 32).map(String),
    SubnetLen: fc.integer({ min: 0, max: 33 }),
    SubnetMin: fc.ipV4(),
    SubnetMax: fc.ipV4(),
    EnableIPv4: fc.boolean(),
    EnableIPv6: fc.boolean(),
    EnableNFTables: fc.boolean(),
    IPv6Network: v6net(0, 128).map(String),
    IPv6SubnetLen: fc.integer({ min: 0, max: 129 }),
    IPv6SubnetMin: fc.ipV6(),
    Backend: backendish,
  });

  it('returns a config or throws NetworkConfigError, in kube and etcd mode, for any text, JSON or config-shaped object', () => {
    fc.assert(
      fc.property(
        fc.oneof(anyText, anyJsonText, { weight: 2, arbitrary: configish }),
        fc.boolean(),
        (text, validate) => {
          const c = returnsOrThrowsOwn(
            () => parseNetworkConfig(text, { validate }),
            isConfigError,
            'parseNetworkConfig',
          );
          if (!c || !validate || !c.network) return;
          // Etcd mode only returns ranges that allocation can trust: inside Network, on a SubnetLen boundary.
          for (const ip of [c.subnetMin!, c.subnetMax!]) {
            assert.ok(c.network.contains(ip), `${formatIPv4(ip)} in ${c.network}`);
            assert.equal(new IPv4Net(ip, c.subnetLen).ip, ip, `${formatIPv4(ip)} on a /${c.subnetLen} boundary`);
          }
        },
      ),
      RUNS,
    );
  });

  it('starts every message with the source it was read from', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, configish), (text) => {
        returnsOrThrowsOwn(
          () => parseNetworkConfig(text, { validate: true, source: '/etc/kube-flannel/net-conf.json' }),
          (e) => isConfigError(e) && (e as Error).message.startsWith('/etc/kube-flannel/net-conf.json: '),
          'parseNetworkConfig',
        );
      }),
      RUNS,
    );
  });

  // A document or member nested ~4,100 levels deep once escaped as RangeError from JSON.stringify in the message,
  // e.g. `[[[…10000 levels…]]]` or `{"Network":[[[…]]]}`.
  it('throws NetworkConfigError, not a stack overflow, for deeply nested JSON', () => {
    const field = fc.constantFrom('', 'Network', 'Backend', 'SubnetLen');
    fc.assert(
      fc.property(field, deep, (f, d) => {
        returnsOrThrowsOwn(
          () => parseNetworkConfig(inField(f, nested(d)), { validate: true }),
          isConfigError,
          'parseNetworkConfig',
        );
      }),
      DEEP_RUNS,
    );
  });

  it('parses a valid IPv4, dual-stack or IPv6-only config to the Network, SubnetLen and backend it was written with', () => {
    const backend = fc.oneof(
      fc.record(
        {
          Type: fc.mixedCase(fc.constant('vxlan')),
          VNI: fc.integer({ min: 1, max: 0xffffff }),
          Port: fc.integer({ min: 1, max: 65535 }),
          GBP: fc.boolean(),
          DirectRouting: fc.boolean(),
        },
        { requiredKeys: ['Type'] },
      ),
      fc.record({ Type: fc.mixedCase(fc.constant('host-gw')) }),
      fc.record(
        { Type: fc.mixedCase(fc.constant('udp')), Port: fc.integer({ min: 1, max: 65535 }) },
        { requiredKeys: ['Type'] },
      ),
    );
    const v4 = fc
      .integer({ min: 0, max: 28 })
      .chain((p) => fc.tuple(v4net(p, p), fc.option(fc.integer({ min: p + 2, max: 30 }), { nil: undefined })));
    const v6 = fc
      .integer({ min: 0, max: 124 })
      .chain((p) => fc.tuple(v6net(p, p), fc.option(fc.integer({ min: p + 2, max: 126 }), { nil: undefined })));
    const stacks = fc.oneof(
      fc.tuple(v4, fc.constant(undefined)),
      fc.tuple(v4, v6),
      fc.tuple(fc.constant(undefined), v6),
    );
    fc.assert(
      fc.property(stacks, backend, fc.boolean(), ([four, six], b, validate) => {
        const doc: Record<string, unknown> = { Backend: b };
        if (four) Object.assign(doc, { Network: four[0].toString(), SubnetLen: four[1] });
        else doc.EnableIPv4 = false;
        if (six) Object.assign(doc, { EnableIPv6: true, IPv6Network: six[0].toString(), IPv6SubnetLen: six[1] });
        const c = parseNetworkConfig(JSON.stringify(doc), { validate });
        assert.equal(c.backendType, b.Type.toLowerCase());
        assert.deepEqual(c.backend, b);
        assert.equal(c.network?.toString(), four?.[0].toString());
        assert.equal(c.ipv6Network?.toString(), six?.[0].toString());
        if (four) {
          const p = four[0].prefix;
          assert.equal(c.subnetLen, four[1] ?? (validate ? (p <= 22 ? 24 : p + 2) : 0));
        }
        if (six) {
          const p = six[0].prefix;
          assert.equal(c.ipv6SubnetLen, six[1] ?? (validate ? (p <= 62 ? 64 : p + 2) : 0));
        }
      }),
      RUNS,
    );
  });
});

describe('subnet.env (parseSubnetEnv / formatSubnetEnv)', () => {
  const FILE = '/run/flannel/subnet.env';
  const isEnvError = (e: unknown) => e instanceof Error && e.constructor === Error && e.message.startsWith(FILE);
  const key = fc.constantFrom(
    'FLANNEL_NETWORK',
    'FLANNEL_SUBNET',
    'FLANNEL_IPV6_NETWORK',
    'FLANNEL_IPV6_SUBNET',
    'FLANNEL_MTU',
    'FLANNEL_IPMASQ',
    'OTHER',
  );
  const cidrs = fc
    .array(fc.oneof(v4net(0, 32), v6net(0, 128)), { minLength: 1, maxLength: 3 })
    .map((ns) => ns.join(','));
  const value = fc.oneof(
    anyText,
    cidrs,
    fc.nat().map(String),
    fc.constantFrom('true', 'false', '', ' 10.0.0.0/8', '4294967296'),
  );
  const noise = fc.tuple(key, value).map(([k, v]) => `${k}=${v}`);
  const required = fc.tuple(
    fc.option(
      fc.oneof(
        v4net(0, 32).map((n) => `FLANNEL_NETWORK=${n}`),
        v6net(0, 128).map((n) => `FLANNEL_IPV6_NETWORK=${n}`),
      ),
    ),
    fc.option(
      fc.oneof(
        v4net(0, 32).map((n) => `FLANNEL_SUBNET=${n}`),
        v6net(0, 128).map((n) => `FLANNEL_IPV6_SUBNET=${n}`),
      ),
    ),
    fc.option(fc.nat().map((n) => `FLANNEL_MTU=${n}`)),
    fc.option(fc.boolean().map((b) => `FLANNEL_IPMASQ=${b}`)),
  );
  // Mostly-complete files in any line order with noise lines among them, so both outcomes are common.
  const envish = fc
    .tuple(required, fc.array(noise, { maxLength: 4 }), fc.constantFrom('\n', '\r\n'))
    .chain(([req, extra, eol]) => {
      const lines = [...req.filter((l) => l !== null), ...extra];
      return fc.shuffledSubarray(lines, { minLength: lines.length }).map((ls) => ls.map((l) => l + eol).join(''));
    });

  it('returns the env or throws an Error naming the file, for any text or KEY=value lines', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, { weight: 3, arbitrary: envish }), (text) => {
        const env = returnsOrThrowsOwn(() => parseSubnetEnv(text, FILE), isEnvError, 'parseSubnetEnv');
        if (!env) return;
        assert.ok(env.networks.length + env.ipv6Networks.length > 0);
        assert.ok(env.subnet || env.ipv6Subnet);
        assert.ok(Number.isInteger(env.mtu) && env.mtu >= 0);
      }),
      RUNS,
    );
  });

  it('reads back the networks, subnets, MTU and masquerade flag it writes, with LF or CRLF line ends', () => {
    // Lease subnets are at most /30 (/126): the written first host address must stay inside the subnet.
    const input = fc
      .record(
        {
          network: v4net(0, 32),
          subnet: v4net(0, 30),
          ipv6Network: v6net(0, 128),
          ipv6Subnet: v6net(0, 126),
          mtu: fc.integer({ min: 0, max: 0xffffffff }),
          ipMasq: fc.boolean(),
        },
        { requiredKeys: ['mtu', 'ipMasq'] },
      )
      .filter(
        (v) =>
          (v.network !== undefined || v.ipv6Network !== undefined) &&
          (v.subnet !== undefined || v.ipv6Subnet !== undefined),
      );
    fc.assert(
      fc.property(input, fc.boolean(), (v: SubnetEnvInput, crlf) => {
        const text = formatSubnetEnv(v);
        const env = parseSubnetEnv(crlf ? text.replaceAll('\n', '\r\n') : text, FILE);
        assert.deepEqual(env.networks.map(String), v.network ? [v.network.toString()] : []);
        assert.deepEqual(env.ipv6Networks.map(String), v.ipv6Network ? [v.ipv6Network.toString()] : []);
        assert.equal(env.subnet?.toString(), v.subnet?.toString());
        assert.equal(env.ipv6Subnet?.toString(), v.ipv6Subnet?.toString());
        assert.equal(env.mtu, v.mtu);
        assert.equal(env.ipMasq, v.ipMasq);
      }),
      RUNS,
    );
  });
});

describe('CNI netconf (decodeConfig → configVersion → parseNetConf, as the plugin runs them)', () => {
  /** The plugin's reading of stdin; an error must be a CniError with the code of the step that rejected it. */
  function readNetConf(stdin: Buffer | string) {
    let codes: number[] = [CniCode.DecodingFailure];
    const own = (e: unknown) => e instanceof CniError && codes.includes(e.code) && e.message.length > 0;
    return returnsOrThrowsOwn(
      () => {
        const raw = decodeConfig(stdin);
        codes = [CniCode.DecodingFailure, CniCode.IncompatibleVersion];
        configVersion(raw);
        codes = [CniCode.InvalidNetworkConfig];
        return parseNetConf(raw);
      },
      own,
      'reading the netconf',
    );
  }
  const name = fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/);
  const obj = fc.dictionary(fc.string(), fc.jsonValue());
  const delegate = fc
    .record(
      {
        type: fc.constantFrom('bridge', 'ptp'),
        isDefaultGateway: fc.boolean(),
        hairpinMode: fc.boolean(),
        mtu: fc.nat(),
      },
      { requiredKeys: [] },
    )
    .chain((d) => obj.map((extra) => ({ ...extra, ...d })))
    .filter((d) => !('name' in d) && !('ipam' in d));
  const conf = fc.record(
    {
      name,
      cniVersion: fc.constantFrom(...SUPPORTED_VERSIONS),
      type: fc.constant('flannel'),
      subnetFile: fc.string(),
      dataDir: fc.string(),
      delegate,
      ipam: obj,
      runtimeConfig: obj,
    },
    { requiredKeys: ['name', 'type'] },
  );
  // A valid netconf with up to three members replaced by any JSON value, null included.
  const netconfish = fc
    .tuple(
      conf,
      fc.array(
        fc.tuple(
          fc.constantFrom('cniVersion', 'name', 'type', 'subnetFile', 'dataDir', 'delegate', 'ipam', 'runtimeConfig'),
          fc.jsonValue(),
        ),
        { maxLength: 3 },
      ),
    )
    .map(([c, changes]) => JSON.stringify({ ...c, ...Object.fromEntries(changes) }));

  it('returns a netconf or throws CniError 6, 1 or 7 by step, for any bytes, text, JSON or netconf-shaped object', () => {
    const stdin = fc.oneof(
      anyText,
      anyJsonText,
      { weight: 3, arbitrary: netconfish },
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    );
    fc.assert(
      fc.property(stdin, (s) => {
        const n = readNetConf(s);
        if (!n) return;
        assert.match(n.name, /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/);
        assert.ok(n.subnetFile !== '' && n.dataDir !== '' && typeof n.delegate === 'object');
      }),
      RUNS,
    );
  });

  // Stdin nested ~4,100 levels deep once escaped as RangeError from JSON.stringify in the message, e.g.
  // `[[[…10000 levels…]]]` or `{"cniVersion":[[[…]]]}`, and runPlugin answered code 999 instead of 6 or 7.
  it('throws CniError, not a stack overflow, for deeply nested stdin', () => {
    const field = fc.constantFrom('', 'name', 'cniVersion', 'delegate');
    fc.assert(
      fc.property(field, deep, (f, d) => {
        readNetConf(inField(f, nested(d), f === 'delegate' ? '"name":"cbr0",' : ''));
      }),
      DEEP_RUNS,
    );
  });

  it('reads back every field of a valid flannel netconf, defaults filled in', () => {
    fc.assert(
      fc.property(conf, (c) => {
        const n = readNetConf(JSON.stringify(c));
        assert.ok(n);
        const want = viaJson(c);
        assert.deepEqual(n, {
          name: want.name,
          cniVersion: want.cniVersion ?? '',
          subnetFile: want.subnetFile || DEFAULT_SUBNET_FILE,
          dataDir: want.dataDir || DEFAULT_DATA_DIR,
          delegate: want.delegate ?? {},
          ipam: want.ipam,
          runtimeConfig: want.runtimeConfig,
        });
      }),
      RUNS,
    );
  });
});
