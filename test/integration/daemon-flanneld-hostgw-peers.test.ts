// A real host-gw flanneld with --healthz-port, two peer leases in etcd (one on its L2 segment, one behind a router),
// and `flannelctl peers` run inside its namespace: the table matches the daemon's log and the kernel's routes. Then the
// same for a vxlan flanneld with a real vxlan peer and a lease whose VtepMAC is malformed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { all, flanneldSkip, leaseOf, peerState, FlanneldHosts } from '../helpers/flanneld-hosts.ts';
import { ipJson } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { runPeersInNetns } from '../../src/cli/peers.ts';

const ROOT = join(import.meta.dirname, '../..');
const FLANNELCTL = join(ROOT, 'src/cli/flannelctl.ts');
const PORT = 8491;

/** `flannelctl peers --url http://127.0.0.1:<PORT>` inside `ns`, from source. */
function flannelctlPeers(ns: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '--import',
      'tsx',
      FLANNELCTL,
      'peers',
      '--url',
      `http://127.0.0.1:${PORT}`,
    ],
    {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 20_000,
    },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The table's rows as objects keyed by its header (REASON is the rest of the line). */
function parseTable(stdout: string): Record<string, string>[] {
  const [head, ...rows] = stdout.trimEnd().split('\n');
  assert.ok(head, `a header line in ${JSON.stringify(stdout)}`);
  assert.match(head, /^SUBNET +PUBLIC IP +STATE +SINCE +REASON$/);
  const starts = ['SUBNET', 'PUBLIC IP', 'STATE', 'SINCE', 'REASON'].map((h) => head.indexOf(h));
  return rows.map((r) => ({
    subnet: r.slice(starts[0], starts[1]).trim(),
    publicIP: r.slice(starts[1], starts[2]).trim(),
    state: r.slice(starts[2], starts[3]).trim(),
    since: r.slice(starts[3], starts[4]).trim(),
    reason: r.slice(starts[4]).trim(),
  }));
}

const gwRoute = (ns: string, subnet: string) =>
  ipJson(ns, ['-4', 'route', 'show', subnet]).find((r: any) => r.dst === subnet && r.gateway);

describe('flannelctl peers against a host-gw flanneld', { skip: flanneldSkip }, () => {
  const u = new FlanneldHosts();
  before(() => u.start());
  after(() => u.cleanup());

  it('shows the adjacent peer programmed and the one behind a router failed with the reason, exit 1; 0 once it is fixed', async () => {
    const prefix = u.prefix(false);
    u.etcdctl(['put', `${prefix}/config`, '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}']);
    const lease = (ip: string) => `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"host-gw"}`;
    // On eth0's /24: a direct next hop.
    u.etcdctl(['put', `${prefix}/subnets/10.244.12.0-24`, lease('192.168.150.72')]);
    // Reached only through the default route via the switch (192.168.150.1): not L2-adjacent, the kernel refuses it.
    u.etcdctl(['put', `${prefix}/subnets/10.244.13.0-24`, lease('10.99.0.3')]);

    const ns = u.addHost('fps-a', { eth0: '192.168.150.71' });
    const d = u.flanneld(ns, [...u.etcdFlags(prefix), '--healthz-ip=127.0.0.1', `--healthz-port=${PORT}`]);
    await d.ready();
    // The log line names the peer and why.
    await d.waitLog(
      /Error adding route to 10\.244\.13\.0\/24 via 10\.99\.0\.3 dev eth0: the kernel refused the route: .*peer 10\.99\.0\.3 is reached through gateway 192\.168\.150\.1, not directly on eth0/,
      10_000,
    );
    await until('the route to the adjacent peer', () => gwRoute(ns, '10.244.12.0/24'), 10_000, 50);
    assert.equal(gwRoute(ns, '10.244.12.0/24').gateway, '192.168.150.72');
    assert.equal(gwRoute(ns, '10.244.13.0/24'), undefined, 'no route to the non-adjacent peer');

    const r = flannelctlPeers(ns);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    const rows = parseTable(r.stdout);
    assert.deepEqual(
      rows.map((x) => [x.subnet, x.publicIP, x.state]),
      [
        ['10.244.12.0/24', '192.168.150.72', 'programmed'],
        ['10.244.13.0/24', '10.99.0.3', 'failed'],
      ],
    );
    assert.equal(rows[0]!.reason, '');
    assert.match(
      rows[1]!.reason,
      /^the kernel refused the route: (network is unreachable \(ENETUNREACH\)|invalid argument \(EINVAL\)); peer 10\.99\.0\.3 is reached through gateway 192\.168\.150\.1, not directly on eth0; host-gw needs all hosts on one L2 network/,
    );
    // The same reason as the daemon logged, word for word.
    assert.ok(d.log.includes(`Error adding route to 10.244.13.0/24 via 10.99.0.3 dev eth0: ${rows[1]!.reason}`), d.log);
    for (const x of rows) assert.match(x.since, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(r.stderr, 'flannelctl: 1 of 2 host-gw peers failed; see REASON\n');
    // What `flannelctl lab peers <host>` runs: the same command entering the namespace itself (its output goes to ours).
    assert.equal(runPeersInNetns(ns, PORT, [process.execPath, '--import', 'tsx', FLANNELCTL]), 1);

    // The peer's network moves onto eth0; the lease's next event retries the route, which now succeeds.
    u.etcdctl(['put', `${prefix}/subnets/10.244.13.0-24`, lease('192.168.150.73')]);
    await until(
      'the route to the moved peer',
      () => gwRoute(ns, '10.244.13.0/24')?.gateway === '192.168.150.73',
      10_000,
      50,
    );
    const fixed = flannelctlPeers(ns);
    assert.equal(fixed.code, 0, `${fixed.stdout}\n${fixed.stderr}`);
    assert.deepEqual(
      parseTable(fixed.stdout).map((x) => [x.subnet, x.publicIP, x.state, x.reason]),
      [
        ['10.244.12.0/24', '192.168.150.72', 'programmed', ''],
        ['10.244.13.0/24', '192.168.150.73', 'programmed', ''],
      ],
    );
    assert.equal(fixed.stderr, '');
    assert.ok(d.running, d.log);
  });
});

describe('flannelctl peers against a vxlan flanneld', { skip: flanneldSkip }, () => {
  const u = new FlanneldHosts();
  before(() => u.start());
  after(() => u.cleanup());

  it('shows the other flanneld programmed and a lease with a malformed VtepMAC failed with why, exit 1; 0 once it is fixed', async () => {
    const prefix = u.prefix();
    const lease89 = (mac: string) =>
      `{"PublicIP":"192.168.150.89","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;
    u.etcdctl(['put', `${prefix}/subnets/10.244.77.0-24`, lease89('not-a-mac')]);

    const nsA = u.addHost('fpv-a', { eth0: '192.168.150.81' });
    const nsB = u.addHost('fpv-b', { eth0: '192.168.150.82' });
    const a = u.flanneld(nsA, [...u.etcdFlags(prefix), '--healthz-ip=127.0.0.1', `--healthz-port=${PORT}`]);
    const b = u.flanneld(nsB, u.etcdFlags(prefix));
    await Promise.all([a.ready(), b.ready()]);
    const leaseB = leaseOf(u.leases(prefix), '192.168.150.82')!;
    assert.ok(leaseB, 'B holds a lease');
    await until('A to program B', () => all(peerState(nsA, leaseB.subnet, leaseB.mac, '192.168.150.82')), 10_000, 50);
    const reason =
      'error decoding subnet lease JSON of 10.244.77.0/24: no valid VtepMAC in BackendData {"VNI":1,"VtepMAC":"not-a-mac"}';
    await until('A to log why it cannot use the lease', () => a.log.includes(reason), 10_000, 50);

    const bySubnet = (x: string[], y: string[]) => x[0]!.localeCompare(y[0]!, 'en', { numeric: true });
    const r = flannelctlPeers(nsA);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    const rows = parseTable(r.stdout);
    assert.deepEqual(
      rows.map((x) => [x.subnet, x.publicIP, x.state, x.reason]),
      [
        [leaseB.subnet, '192.168.150.82', 'programmed', ''],
        ['10.244.77.0/24', '192.168.150.89', 'failed', reason],
      ].sort(bySubnet),
    );
    for (const x of rows) assert.match(x.since, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(r.stderr, 'flannelctl: 1 of 2 vxlan peers failed; see REASON\n');
    assert.equal(runPeersInNetns(nsA, PORT, [process.execPath, '--import', 'tsx', FLANNELCTL]), 1);

    // The lease gets a valid VtepMAC: its next event programs it.
    u.etcdctl(['put', `${prefix}/subnets/10.244.77.0-24`, lease89('0e:00:00:00:77:77')]);
    await until(
      'A to program the fixed lease',
      () => all(peerState(nsA, '10.244.77.0/24', '0e:00:00:00:77:77', '192.168.150.89')),
      10_000,
      50,
    );
    const fixed = flannelctlPeers(nsA);
    assert.equal(fixed.code, 0, `${fixed.stdout}\n${fixed.stderr}`);
    assert.deepEqual(
      parseTable(fixed.stdout).map((x) => [x.subnet, x.publicIP, x.state, x.reason]),
      [
        [leaseB.subnet, '192.168.150.82', 'programmed', ''],
        ['10.244.77.0/24', '192.168.150.89', 'programmed', ''],
      ].sort(bySubnet),
    );
    assert.equal(fixed.stderr, '');
    assert.ok(a.running && b.running, a.log);
  });
});
