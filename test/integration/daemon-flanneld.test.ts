// flanneld as a process: flags, FLANNELD_* env, waiting for the config, health endpoints, interface selection and
// iptables switches, checked against what etcd, the kernel and subnet.env hold. Every daemon runs in its own namespace.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  ETCD_ENDPOINT,
  FLANNELD,
  flanneldSkip,
  httpGet,
  leaseOf,
  readSubnetEnv,
  FlanneldHosts,
} from '../helpers/flanneld-hosts.ts';
import { ipJson, nsRun } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { VERSION } from '../../src/version.ts';

describe('flanneld daemon: flags, env, config wait, health, interface selection', { skip: flanneldSkip }, () => {
  const u = new FlanneldHosts();
  before(async () => {
    await u.start();
  });
  after(async () => {
    await u.cleanup();
  });

  const vxlanInfo = (ns: string) => ipJson(ns, ['-d', 'link', 'show', 'flannel.1'])[0]?.linkinfo?.info_data;
  const iptablesS = (ns: string, table: string) => nsRun(ns, 'iptables', ['-t', table, '-S']);

  it('--version, --help, an unknown flag and a bad renew margin exit with the right code and text', () => {
    const ns = u.addHost('fdcli', { eth0: '192.168.150.10' });
    const exec = (...args: string[]) =>
      spawnSync('ip', ['netns', 'exec', ns, process.execPath, FLANNELD, ...args], {
        encoding: 'utf8',
        timeout: 20_000,
      });
    const version = exec('--version');
    assert.equal(version.status, 0);
    assert.equal(version.stderr, `${VERSION}\n`, 'the version goes to stderr');
    assert.equal(version.stdout, '');
    const help = exec('--help');
    assert.equal(help.status, 0);
    const usage = help.stdout || help.stderr;
    assert.ok(usage.startsWith('Usage: flanneld [OPTION]...\n'), usage);
    assert.match(usage, /-etcd-endpoints string/);
    const unknown = exec('--no-such-flag=1');
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /flag provided but not defined: -no-such-flag/);
    for (const margin of ['0', '1440']) {
      const bad = exec(`--subnet-lease-renew-margin=${margin}`);
      assert.equal(bad.status, 1, bad.stderr);
      assert.match(bad.stderr, /Invalid subnet-lease-renew-margin option, out of acceptable range/);
    }
  });

  it('takes FLANNELD_* environment variables: prefix, iface, endpoints, subnet file', async () => {
    const ns = u.addHost('fdenv', { eth0: '192.168.150.11', eth1: '192.168.151.11' });
    const prefix = u.prefix();
    const file = u.subnetFile();
    const d = u.flanneld(ns, [], {
      FLANNELD_ETCD_ENDPOINTS: ETCD_ENDPOINT,
      FLANNELD_ETCD_PREFIX: prefix,
      FLANNELD_IFACE: 'eth1',
      FLANNELD_SUBNET_FILE: file,
    });
    await d.ready();
    const env = readSubnetEnv(file)!;
    const leases = u.leases(prefix);
    assert.equal(leases.size, 1, [...leases.keys()].join(' '));
    const lease = leaseOf(leases, '192.168.151.11');
    assert.ok(lease, `the lease advertises eth1's address: ${[...leases.values()]}`);
    assert.equal(lease.key, `${prefix}/subnets/${env.FLANNEL_SUBNET!.replace('.1/24', '.0-24')}`);
    assert.equal(
      u.etcdctl(['get', '--prefix', '--keys-only', '/coreos.com/network']).trim(),
      '',
      'nothing under the default prefix',
    );
    const vx = vxlanInfo(ns);
    assert.equal(vx.link, 'eth1');
    assert.equal(vx.local, '192.168.151.11');
    d.signal('SIGTERM');
    assert.equal(await d.exited(10_000), 0);
  });

  it('retries while the config is missing (not ready), then acquires a lease and becomes ready', async () => {
    const ns = u.addHost('fdcfg', { eth0: '192.168.150.12' });
    const prefix = u.prefix(false);
    const file = u.subnetFile();
    const d = u.flanneld(ns, [...u.etcdFlags(prefix, file), '--healthz-ip=127.0.0.1', '--healthz-port=8471']);
    // Two attempts logged: it keeps retrying rather than giving up.
    await until(
      `two "Couldn't fetch network config" lines; log:\n${d.log}`,
      () => d.running && (d.log.match(/Couldn't fetch network config: /g) ?? []).length >= 2,
      15_000,
      50,
    );
    assert.match(d.log, /flannel config not found in etcd store/);
    assert.ok(d.running);
    assert.deepEqual(httpGet(ns, 'http://127.0.0.1:8471/healthz'), { status: 200, body: 'flanneld is running' });
    assert.deepEqual(httpGet(ns, 'http://127.0.0.1:8471/readyz'), { status: 503, body: 'flanneld is not ready yet' });
    assert.equal(readSubnetEnv(file), undefined, 'no subnet.env without a config');
    assert.equal(u.leases(prefix).size, 0);

    u.etcdctl(['put', `${prefix}/config`, '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}']);
    const env = await until('subnet.env', () => readSubnetEnv(file), 10_000, 50);
    assert.equal(env.FLANNEL_NETWORK, '10.244.0.0/16');
    assert.match(env.FLANNEL_SUBNET!, /^10\.244\.\d+\.1\/24$/);
    assert.equal(env.FLANNEL_MTU, '1450');
    assert.equal(env.FLANNEL_IPMASQ, 'false');
    assert.match(d.log, /Found network config - Backend type: vxlan/);
    const lease = leaseOf(u.leases(prefix), '192.168.150.12');
    assert.ok(lease);
    assert.equal(`${lease.subnet.replace(/0\/24$/, '1/24')}`, env.FLANNEL_SUBNET);
    await until('/readyz 200', () => httpGet(ns, 'http://127.0.0.1:8471/readyz').status === 200, 5_000, 50);
    assert.deepEqual(httpGet(ns, 'http://127.0.0.1:8471/readyz'), { status: 200, body: 'flanneld is ready' });
    assert.deepEqual(httpGet(ns, 'http://127.0.0.1:8471/healthz'), { status: 200, body: 'flanneld is running' });
    assert.equal(httpGet(ns, 'http://127.0.0.1:8471/other').status, 404);
    d.signal('SIGTERM');
    assert.equal(await d.exited(10_000), 0);
  });

  it('exits 1 with a clear error when the healthz port is taken', async () => {
    const ns = u.addHost('fdhz', { eth0: '192.168.150.14' });
    const first = u.flanneld(ns, [...u.etcdFlags(u.prefix(false)), '--healthz-ip=127.0.0.1', '--healthz-port=8473']);
    await first.waitLog(/Start healthz server on 127\.0\.0\.1:8473/, 15_000);
    const second = u.flanneld(ns, [...u.etcdFlags(u.prefix(false)), '--healthz-ip=127.0.0.1', '--healthz-port=8473']);
    assert.equal(await second.exited(15_000), 1, second.log);
    assert.match(second.log, /Start healthz server error: listen EADDRINUSE[^\n]*--healthz-port/);
    assert.doesNotMatch(second.log, /\n\s+at /, 'no stack trace');
    assert.ok(first.running);
    first.signal('SIGTERM');
    assert.equal(await first.exited(5_000), 0);
  });

  it('SIGTERM while waiting for the config exits 0 without a subnet.env', async () => {
    const ns = u.addHost('fdterm', { eth0: '192.168.150.13' });
    const file = u.subnetFile();
    const d = u.flanneld(ns, u.etcdFlags(u.prefix(false), file));
    await d.waitLog(/Couldn't fetch network config: /, 15_000);
    d.signal('SIGTERM');
    assert.equal(await d.exited(5_000), 0, d.log);
    assert.equal(readSubnetEnv(file), undefined);
    assert.equal(
      ipJson(ns, ['link', 'show']).some((l) => l.ifname === 'flannel.1'),
      false,
      'no device before a config',
    );
  });

  it('selects the interface by name, IP, regex, can-reach, default route and public IP', async () => {
    const cases: { flags: (eth0: string, eth1: string) => string[]; dev: 'eth0' | 'eth1'; publicIP?: string }[] = [
      { flags: () => ['--iface=eth1'], dev: 'eth1' },
      { flags: (_, eth1) => [`--iface=${eth1}`], dev: 'eth1' },
      { flags: () => ['--iface=nosuch0', '--iface=eth1'], dev: 'eth1' },
      { flags: () => ['--iface-regex=^192\\.168\\.151\\.'], dev: 'eth1' },
      { flags: () => ['--iface-regex=^eth1$'], dev: 'eth1' },
      { flags: () => ['--iface-can-reach=192.168.151.1'], dev: 'eth1' },
      { flags: () => [], dev: 'eth0' },
      { flags: (_, eth1) => [`--public-ip=${eth1}`], dev: 'eth1' },
      { flags: () => ['--iface=eth0', '--public-ip=192.168.151.250'], dev: 'eth0', publicIP: '192.168.151.250' },
    ];
    let n = 20;
    for (const c of cases) {
      n++;
      const eth0 = `192.168.150.${n}`;
      const eth1 = `192.168.151.${n}`;
      const ns = u.addHost('fdif', { eth0, eth1 });
      const prefix = u.prefix();
      const args = c.flags(eth0, eth1);
      const d = u.flanneld(ns, [...u.etcdFlags(prefix), ...args]);
      await d.ready();
      const ifaceAddr = c.dev === 'eth0' ? eth0 : eth1;
      const publicIP = c.publicIP ?? ifaceAddr;
      const leases = u.leases(prefix);
      assert.ok(leaseOf(leases, publicIP), `${args.join(' ')}: PublicIP ${publicIP} in ${[...leases.values()]}`);
      const vx = vxlanInfo(ns);
      assert.equal(vx.link, c.dev, args.join(' '));
      assert.equal(vx.local, publicIP, `${args.join(' ')}: vxlan local is the public address`);
      assert.match(
        d.log,
        new RegExp(`Using interface with name ${c.dev} and address ${ifaceAddr.replace(/\./g, '\\.')}\\n`),
      );
      assert.match(d.log, new RegExp(`Using ${publicIP.replace(/\./g, '\\.')} as external address`));
      d.signal('SIGTERM');
      assert.equal(await d.exited(10_000), 0, d.log);
    }
  });

  it('exits 1 when no interface can be found', async () => {
    const ns = u.addHost('fdnoif', { eth0: '192.168.150.40', eth1: '192.168.151.40', defaultRoute: false });
    const prefix = u.prefix();
    const noDefault = u.flanneld(ns, u.etcdFlags(prefix));
    assert.equal(await noDefault.exited(20_000), 1, noDefault.log);
    assert.match(noDefault.log, /Failed to find any valid interface to use: /);
    const noMatch = u.flanneld(ns, [...u.etcdFlags(prefix), '--iface=nosuch0', '--iface-regex=^10\\.']);
    assert.equal(await noMatch.exited(20_000), 1, noMatch.log);
    assert.match(noMatch.log, /Failed to find interface to use that matches the interfaces and\/or regexes provided/);
    assert.equal(u.leases(prefix).size, 0, 'no lease without an interface');
    assert.equal(
      ipJson(ns, ['link', 'show']).some((l) => l.ifname === 'flannel.1'),
      false,
    );
  });

  it('installs FLANNEL-POSTRTG only with --ip-masq and FLANNEL-FWD unless --iptables-forward-rules=false', async () => {
    const plain = u.addHost('fdipt', { eth0: '192.168.150.41' });
    const masqNoFwd = u.addHost('fdipt', { eth0: '192.168.150.42' });
    const prefix = u.prefix();
    const a = u.flanneld(plain, u.etcdFlags(prefix));
    const b = u.flanneld(masqNoFwd, [...u.etcdFlags(prefix), '--ip-masq', '--iptables-forward-rules=false']);
    await a.ready();
    await b.ready();
    assert.doesNotMatch(iptablesS(plain, 'nat'), /FLANNEL-POSTRTG/, 'no masquerading by default');
    assert.match(
      iptablesS(plain, 'filter'),
      /-A FLANNEL-FWD -s 10\.244\.0\.0\/16 -m comment --comment "flanneld forward" -j ACCEPT/,
    );
    assert.match(iptablesS(masqNoFwd, 'nat'), /-A FLANNEL-POSTRTG .*-j MASQUERADE/);
    assert.doesNotMatch(iptablesS(masqNoFwd, 'filter'), /FLANNEL-FWD/);
    // A resync period later the picture is the same.
    await new Promise((r) => setTimeout(r, 5500));
    assert.doesNotMatch(iptablesS(plain, 'nat'), /FLANNEL-POSTRTG/);
    assert.doesNotMatch(iptablesS(masqNoFwd, 'filter'), /FLANNEL-FWD/);
    for (const d of [a, b]) {
      d.signal('SIGTERM');
      assert.equal(await d.exited(10_000), 0);
    }
  });
});
