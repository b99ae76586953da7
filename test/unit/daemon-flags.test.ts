import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { envName, parseFlags, validateOptions, FlagError, usage } from '../../src/daemon/flags.ts';

describe('flanneld flags', () => {
  it('has the spec defaults', () => {
    const o = parseFlags([], {});
    assert.deepEqual(o.etcdEndpoints, ['http://127.0.0.1:4001', 'http://127.0.0.1:2379']);
    assert.equal(o.etcdPrefix, '/coreos.com/network');
    assert.equal(o.subnetFile, '/run/flannel/subnet.env');
    assert.equal(o.subnetLeaseRenewMargin, 60);
    assert.equal(o.iptablesResync, 5);
    assert.equal(o.iptablesForwardRules, true);
    assert.equal(o.ipMasq, false);
    assert.equal(o.healthzIP, '0.0.0.0');
    assert.equal(o.healthzPort, 0);
    assert.deepEqual(o.iface, []);
  });

  it('accepts Go flag syntax: --a=b, -a b, bare booleans and --bool=false', () => {
    const o = parseFlags(
      ['--etcd-prefix=/x', '-subnet-file', '/tmp/s.env', '--ip-masq', '--iptables-forward-rules=false', '-v=3'],
      {},
    );
    assert.equal(o.etcdPrefix, '/x');
    assert.equal(o.subnetFile, '/tmp/s.env');
    assert.equal(o.ipMasq, true);
    assert.equal(o.iptablesForwardRules, false);
    assert.equal(o.v, 3);
  });

  it('keeps every --iface in order', () => {
    const o = parseFlags(['--iface', 'eth1', '--iface=10.0.0.5', '--iface-regex', '^en'], {});
    assert.deepEqual(o.iface, ['eth1', '10.0.0.5']);
    assert.deepEqual(o.ifaceRegex, ['^en']);
  });

  it('splits --etcd-endpoints on commas', () => {
    assert.deepEqual(parseFlags(['--etcd-endpoints=http://a:2379, http://b:2379'], {}).etcdEndpoints, [
      'http://a:2379',
      'http://b:2379',
    ]);
  });

  it('falls back to FLANNELD_* only when the flag is absent and the value non-empty', () => {
    const env = {
      FLANNELD_IP_MASQ: 'true',
      FLANNELD_ETCD_PREFIX: '/env',
      FLANNELD_IFACE: 'a,b',
      FLANNELD_PUBLIC_IP: '',
    };
    const o = parseFlags(['--etcd-prefix=/flag'], env);
    assert.equal(o.ipMasq, true);
    assert.equal(o.etcdPrefix, '/flag');
    assert.deepEqual(o.iface, ['a,b'], 'repeatable flags take one env value without splitting');
    assert.equal(o.publicIP, '');
    assert.equal(envName('iface-can-reach'), 'FLANNELD_IFACE_CAN_REACH');
  });

  it('rejects unknown flags, missing values and bad values with the offending input named', () => {
    assert.throws(() => parseFlags(['--nope'], {}), /flag provided but not defined: -nope/);
    assert.throws(() => parseFlags(['--etcd-prefix'], {}), /flag needs an argument: -etcd-prefix/);
    assert.throws(() => parseFlags(['--healthz-port=abc'], {}), /invalid value "abc" for flag -healthz-port/);
    assert.throws(() => parseFlags([], { FLANNELD_IP_MASQ: 'yes' }), /FLANNELD_IP_MASQ/);
  });

  it('validates the renew margin range with the spec message', () => {
    for (const bad of [0, 1440]) {
      assert.throws(
        () => validateOptions(parseFlags([`--subnet-lease-renew-margin=${bad}`], {})),
        (e: unknown) =>
          e instanceof FlagError &&
          /Invalid subnet-lease-renew-margin option, out of acceptable range/.test((e as Error).message),
      );
    }
    validateOptions(parseFlags(['--subnet-lease-renew-margin=1439'], {}));
  });

  it('prints usage with the program name', () => {
    assert.match(usage('flanneld'), /^Usage: flanneld \[OPTION\]\.\.\./);
    assert.match(usage('flanneld'), /-iface-can-reach string/);
  });
});
