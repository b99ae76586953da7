// flanneld's GET /metrics on a real daemon: scraped over HTTP inside its namespace (curl, as Prometheus would from the
// node), parsed as Prometheus text, and checked against etcd and the kernel while peer leases come and go, rules and
// routes are removed by hand and etcd goes away.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { flanneldSkip, httpGet, leaseOf, FlanneldHosts, type Flanneld } from '../helpers/flanneld-hosts.ts';
import { nsRun } from '../helpers/netns.ts';
import { parsePrometheusText, samplesOf, valueOf, type Scrape } from '../helpers/prometheus-text.ts';
import { until } from '../helpers/wait.ts';

const IP = '192.168.150.71';
const URL = 'http://127.0.0.1:8081/metrics';

describe('flanneld daemon: GET /metrics', { skip: flanneldSkip }, () => {
  const u = new FlanneldHosts();
  let prefix = '';
  let ns = '';
  let d: Flanneld;
  before(async () => {
    await u.start();
    prefix = u.prefix();
    ns = u.addHost('fdmet', { eth0: IP });
    d = u.flanneld(ns, [
      ...u.etcdFlags(prefix),
      '--healthz-ip=127.0.0.1',
      '--healthz-port=8081',
      '--iptables-resync=1',
    ]);
    await d.ready();
  });
  after(async () => {
    await u.cleanup();
  });

  function scrape(): Scrape {
    const res = httpGet(ns, URL);
    assert.equal(res.status, 200, res.body);
    return parsePrometheusText(res.body);
  }
  const own = () => {
    const l = leaseOf(u.leases(prefix), IP);
    assert.ok(l, `the lease of ${IP}`);
    return l;
  };
  /** A peer subnet that is not the daemon's own. */
  const peerSubnet = (n: number) => {
    const third = Number(own().subnet.split('.')[2]) === n ? n + 1 : n;
    return { key: `${prefix}/subnets/10.244.${third}.0-24`, subnet: `10.244.${third}.0/24` };
  };
  const vxlanLease = (mac: string) =>
    JSON.stringify({
      PublicIP: '192.168.150.99',
      PublicIPv6: null,
      BackendType: 'vxlan',
      BackendData: { VNI: 1, VtepMAC: mac },
    });

  it('shows the lease etcd holds: subnet, public IP and backend as labels, and when the etcd lease runs out', () => {
    const s = scrape();
    const l = own();
    assert.deepEqual(samplesOf(s, 'flannel_lease_info'), [
      {
        name: 'flannel_lease_info',
        labels: { subnet: l.subnet, ipv6_subnet: '', public_ip: IP, public_ipv6: '', backend: 'vxlan' },
        value: 1,
      },
    ]);
    // The key's etcd lease and its time to live, as etcd reports them.
    const id = /"Lease"\s*:\s*(\d+)/.exec(u.etcdctl(['get', l.key, '-w', 'fields']))?.[1];
    assert.ok(id && id !== '0', 'the own key is on an etcd lease');
    const ttl = u.etcdctl(['lease', 'timetolive', BigInt(id).toString(16)]);
    const remaining = Number(/remaining\((\d+)s\)/.exec(ttl)?.[1]);
    assert.ok(remaining > 0, ttl);
    const expiry = valueOf(s, 'flannel_lease_expiry_timestamp_seconds');
    assert.ok(Math.abs(expiry - (Date.now() / 1000 + remaining)) < 5, `expiry ${expiry} vs now + ${remaining} s`);
    // HELP texts and the process metrics come along.
    for (const [name, f] of s.families)
      if (name.startsWith('flannel_')) assert.ok(f.help.length > 20, `${name} has a help text`);
    assert.equal(samplesOf(s, 'process_cpu_seconds_total').length, 1);
    assert.equal(valueOf(s, 'flannel_peers', { state: 'programmed' }), 0);
  });

  it('counts lease events and peers as a peer lease is added to and removed from etcd', async () => {
    const before = scrape();
    const added0 = valueOf(before, 'flannel_lease_events_total', { type: 'added' });
    const removed0 = valueOf(before, 'flannel_lease_events_total', { type: 'removed' });
    const p = peerSubnet(201);
    u.etcdctl(['put', p.key, vxlanLease('02:aa:00:00:00:01')]);
    let s = await until(
      'the peer to be counted programmed',
      () => {
        const s = scrape();
        return valueOf(s, 'flannel_peers', { state: 'programmed' }) === 1 && s;
      },
      5_000,
      100,
    );
    assert.equal(valueOf(s, 'flannel_lease_events_total', { type: 'added' }), added0 + 1);
    assert.equal(valueOf(s, 'flannel_lease_events_total', { type: 'removed' }), removed0);
    const converged = valueOf(s, 'flannel_last_convergence_duration_seconds');
    assert.ok(converged >= 0 && converged < 1, `the batch took ${converged} s to program`);
    assert.equal(nsRun(ns, 'ip', ['route', 'show', p.subnet]).includes('flannel.1'), true, 'the route is really there');

    u.etcdctl(['del', p.key]);
    s = await until(
      'the peer to be gone',
      () => {
        const s = scrape();
        return valueOf(s, 'flannel_lease_events_total', { type: 'removed' }) === removed0 + 1 && s;
      },
      5_000,
      100,
    );
    assert.equal(valueOf(s, 'flannel_peers', { state: 'programmed' }), 0);
    assert.equal(valueOf(s, 'flannel_peers', { state: 'failed' }), 0);
  });

  it('counts a peer that cannot be programmed as failed, and its failure once', async () => {
    const errors0 = valueOf(scrape(), 'flannel_peer_programming_errors_total');
    const p = peerSubnet(202);
    u.etcdctl(['put', p.key, vxlanLease('not-a-mac')]);
    await until(
      'the peer to be counted failed',
      () => valueOf(scrape(), 'flannel_peers', { state: 'failed' }) === 1,
      5_000,
      100,
    );
    scrape();
    assert.equal(valueOf(scrape(), 'flannel_peer_programming_errors_total'), errors0 + 1);
    u.etcdctl(['del', p.key]);
    await until(
      'the failed peer to be gone',
      () => valueOf(scrape(), 'flannel_peers', { state: 'failed' }) === 0,
      5_000,
      100,
    );
  });

  it('counts the route it put back after someone deleted it', async () => {
    const p = peerSubnet(203);
    u.etcdctl(['put', p.key, vxlanLease('02:aa:00:00:00:03')]);
    await until('the route', () => nsRun(ns, 'ip', ['route', 'show', p.subnet]).includes('flannel.1'), 5_000, 50);
    const routes0 = valueOf(scrape(), 'flannel_kernel_repairs_total', { kind: 'route' });
    nsRun(ns, 'ip', ['route', 'del', p.subnet]);
    await until(
      'the route repair to be counted',
      () => valueOf(scrape(), 'flannel_kernel_repairs_total', { kind: 'route' }) === routes0 + 1,
      15_000,
      100,
    );
    assert.ok(nsRun(ns, 'ip', ['route', 'show', p.subnet]).includes('flannel.1'), 'the route is back');
    u.etcdctl(['del', p.key]);
  });

  it('counts the forward rules it restored after someone flushed them', async () => {
    const labels = { mode: 'iptables', rules: 'forward', family: 'ipv4' };
    const repairs0 = valueOf(scrape(), 'flannel_rule_repairs_total', labels);
    nsRun(ns, 'iptables', ['-F', 'FLANNEL-FWD']);
    await until(
      'the rule repair to be counted',
      () => valueOf(scrape(), 'flannel_rule_repairs_total', labels) >= repairs0 + 1,
      10_000,
      200,
    );
    assert.match(nsRun(ns, 'iptables', ['-S', 'FLANNEL-FWD']), /-A FLANNEL-FWD /);
  });

  // Last: it stops the shared etcd.
  it('counts failed watches while etcd is down and the reconnect once it is back', async () => {
    const before = scrape();
    const errors0 = samplesOf(before, 'flannel_subnet_manager_errors_total', { manager: 'etcd' }).reduce(
      (n, x) => n + x.value,
      0,
    );
    const reconnects0 = valueOf(before, 'flannel_subnet_manager_reconnects_total', { manager: 'etcd' });
    await u.etcd!.stop();
    await until(
      'watch failures to be counted',
      () => {
        const s = scrape();
        return (
          samplesOf(s, 'flannel_subnet_manager_errors_total', { manager: 'etcd' }).reduce((n, x) => n + x.value, 0) >
          errors0
        );
      },
      10_000,
      200,
    );
    await u.etcd!.restart();
    await until(
      'the reconnect to be counted',
      () => valueOf(scrape(), 'flannel_subnet_manager_reconnects_total', { manager: 'etcd' }) > reconnects0,
      20_000,
      200,
    );
    assert.ok(d.running);
  });
});
