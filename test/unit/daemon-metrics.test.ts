// flanneld's /metrics: what is registered, that it renders as valid Prometheus text, and that values move with the
// daemon's state (fake networks and subnet managers, no root).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Network, PeerStatus, RepairCounts } from '../../src/backend/backend.ts';
import { UdpNetwork } from '../../src/backend/udp/network.ts';
import { DaemonMetrics } from '../../src/daemon/metrics.ts';
import { HealthServer } from '../../src/daemon/health.ts';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';
import { makeLease, type Lease, type LeaseEvent, type SubnetManager } from '../../src/subnet/lease.ts';
import { freePort } from '../helpers/etcd.ts';
import { parsePrometheusText, samplesOf, valueOf, type Scrape } from '../helpers/prometheus-text.ts';

const OWN = makeLease(
  { subnet: IPv4Net.parse('10.244.3.0/24') },
  { publicIP: '192.168.1.3', publicIPv6: null, backendType: 'vxlan' },
  new Date('2026-12-03T07:00:00Z'),
);

async function scrape(m: DaemonMetrics): Promise<Scrape> {
  return parsePrometheusText(await m.render());
}

/** A Network whose peers and repair counts the test sets. */
function fakeNetwork(lease: Lease = OWN, o: { peers?: boolean; repairs?: boolean } = {}) {
  const state = { peers: [] as PeerStatus[], repairs: { route: 0, neigh: 0, fdb: 0 } as RepairCounts };
  const network: Network = { lease, mtu: 1450, run: async () => {} };
  if (o.peers ?? true) network.peers = () => state.peers.map((p) => ({ ...p }));
  if (o.repairs ?? true) network.repairs = () => ({ ...state.repairs });
  return { network, state };
}

const peer = (subnet: string, state: PeerStatus['state'], since: string): PeerStatus => ({
  subnet,
  publicIP: '192.168.1.9',
  state,
  since,
  ...(state === 'failed' ? { reason: 'the kernel refused the route' } : {}),
});

/** A subnet manager whose watch yields the given batches, then ends. */
function fakeManager(batches: LeaseEvent[][], extra: Partial<SubnetManager> = {}): SubnetManager {
  return {
    name: 'fake',
    getNetworkConfig: async () => ({}) as never,
    acquireLease: async () => OWN,
    completeLease: async () => 'aborted',
    close: async () => {},
    async *watchLeases() {
      for (const b of batches) yield b;
    },
    ...extra,
  };
}
const added = (subnet: string): LeaseEvent => ({
  type: 'added',
  lease: makeLease(
    { subnet: IPv4Net.parse(subnet) },
    { publicIP: '192.168.1.9', publicIPv6: null, backendType: 'vxlan' },
    null,
  ),
});
const removed = (subnet: string): LeaseEvent => ({ ...added(subnet), type: 'removed' });

describe('DaemonMetrics: registry and text format', () => {
  it('declares every flannel_ family with a type and a help text, and renders parseable text', async () => {
    const s = await scrape(new DaemonMetrics({ processMetrics: false }));
    const names = [...s.families.keys()];
    assert.deepEqual(
      names.filter((n) => !n.startsWith('flannel_')),
      [],
      'only flannel_ metrics without the process metrics',
    );
    for (const name of [
      'flannel_lease_info',
      'flannel_lease_expiry_timestamp_seconds',
      'flannel_peers',
      'flannel_peer_programming_errors_total',
      'flannel_lease_events_total',
      'flannel_last_convergence_duration_seconds',
      'flannel_subnet_manager_errors_total',
      'flannel_subnet_manager_reconnects_total',
      'flannel_rule_repairs_total',
      'flannel_kernel_repairs_total',
      'flannel_udp_packets_total',
      'flannel_udp_bytes_total',
      'flannel_udp_dropped_packets_total',
      'flannel_udp_write_errors_total',
    ]) {
      const f = s.families.get(name);
      assert.ok(f, `${name} is registered`);
      assert.ok(f.help.length > 20, `${name} has a help text`);
      assert.equal(f.type, name.endsWith('_total') ? 'counter' : 'gauge', name);
    }
  });

  it("adds prom-client's process and Node.js metrics by default", async () => {
    const s = await scrape(new DaemonMetrics());
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      assert.equal(samplesOf(s, name).length, 1, name);
    }
    assert.ok(valueOf(s, 'process_resident_memory_bytes') > 0);
  });

  it('instances do not share series: each has its own registry', async () => {
    const a = new DaemonMetrics({ processMetrics: false });
    const b = new DaemonMetrics({ processMetrics: false });
    a.subnetWatch('etcd').failed('watch');
    assert.equal(valueOf(await scrape(a), 'flannel_subnet_manager_errors_total', { op: 'watch' }), 1);
    assert.deepEqual(samplesOf(await scrape(b), 'flannel_subnet_manager_errors_total'), []);
  });

  it('the parser rejects what a scraper would', () => {
    assert.throws(() => parsePrometheusText('x 1\n'), /belongs to no declared family/);
    assert.throws(() => parsePrometheusText('# TYPE x gauge\nx{a="1" 1\n'), /not a sample line|bad labels/);
    assert.throws(() => parsePrometheusText('# TYPE x gauge\nx one\n'), /not a sample value/);
    const s = parsePrometheusText('# HELP x a \\\\ b\n# TYPE x gauge\nx{a="q\\"uote",b="new\\nline"} +Inf\n');
    assert.deepEqual(s.samples, [{ name: 'x', labels: { a: 'q"uote', b: 'new\nline' }, value: Infinity }]);
    assert.equal(s.families.get('x')!.help, 'a \\ b');
  });
});

describe('DaemonMetrics: the own lease', () => {
  it('has no lease series until the network is registered', async () => {
    const s = await scrape(new DaemonMetrics({ processMetrics: false }));
    assert.deepEqual(samplesOf(s, 'flannel_lease_info'), []);
    assert.deepEqual(samplesOf(s, 'flannel_lease_expiry_timestamp_seconds'), []);
    assert.deepEqual(samplesOf(s, 'flannel_peers'), []);
    assert.deepEqual(samplesOf(s, 'flannel_last_convergence_duration_seconds'), []);
  });

  it('shows the subnet, public IP and backend as labels and the expiry in Unix seconds', async () => {
    const m = new DaemonMetrics({ processMetrics: false });
    m.serveNetwork('VXLAN', fakeNetwork().network);
    const s = await scrape(m);
    assert.deepEqual(samplesOf(s, 'flannel_lease_info'), [
      {
        name: 'flannel_lease_info',
        labels: {
          subnet: '10.244.3.0/24',
          ipv6_subnet: '',
          public_ip: '192.168.1.3',
          public_ipv6: '',
          backend: 'vxlan',
        },
        value: 1,
      },
    ]);
    assert.equal(valueOf(s, 'flannel_lease_expiry_timestamp_seconds'), Date.parse('2026-12-03T07:00:00Z') / 1000);
  });

  it('a dual-stack lease has both subnets; a lease that never expires has no expiry series', async () => {
    const m = new DaemonMetrics({ processMetrics: false });
    const lease = makeLease(
      { subnet: IPv4Net.parse('10.244.3.0/24'), ipv6Subnet: IPv6Net.parse('fc00:0:0:3::/64') },
      { publicIP: '192.168.1.3', publicIPv6: 'fd00::3', backendType: 'host-gw' },
      null,
    );
    m.serveNetwork('host-gw', fakeNetwork(lease).network);
    const s = await scrape(m);
    assert.deepEqual(samplesOf(s, 'flannel_lease_info')[0]!.labels, {
      subnet: '10.244.3.0/24',
      ipv6_subnet: 'fc00:0:0:3::/64',
      public_ip: '192.168.1.3',
      public_ipv6: 'fd00::3',
      backend: 'host-gw',
    });
    assert.deepEqual(samplesOf(s, 'flannel_lease_expiry_timestamp_seconds'), []);
  });

  it('an IPv6-only lease has no IPv4 subnet nor the 0.0.0.0 placeholder', async () => {
    const m = new DaemonMetrics({ processMetrics: false });
    const lease = makeLease(
      { ipv6Subnet: IPv6Net.parse('fd44:244:0:1b::/64') },
      { publicIP: '0.0.0.0', publicIPv6: 'fd00:100::11', backendType: 'vxlan' },
      null,
    );
    m.serveNetwork('vxlan', fakeNetwork(lease).network);
    const labels = samplesOf(await scrape(m), 'flannel_lease_info')[0]!.labels;
    assert.equal(labels.subnet, '');
    assert.equal(labels.public_ip, '');
    assert.equal(labels.ipv6_subnet, 'fd44:244:0:1b::/64');
  });
});

describe('DaemonMetrics: peers and repairs, read at scrape time', () => {
  it('counts peers by state as they change', async () => {
    const m = new DaemonMetrics({ processMetrics: false });
    const { network, state } = fakeNetwork();
    m.serveNetwork('vxlan', network);
    let s = await scrape(m);
    assert.equal(valueOf(s, 'flannel_peers', { state: 'programmed' }), 0);
    assert.equal(valueOf(s, 'flannel_peers', { state: 'failed' }), 0);
    state.peers = [
      peer('10.244.1.0/24', 'programmed', 't0'),
      peer('10.244.2.0/24', 'programmed', 't0'),
      peer('10.244.4.0/24', 'failed', 't0'),
    ];
    s = await scrape(m);
    assert.equal(valueOf(s, 'flannel_peers', { state: 'programmed' }), 2);
    assert.equal(valueOf(s, 'flannel_peers', { state: 'failed' }), 1);
  });

  it('counts each peer failure once, however many scrapes see it, and again after it healed and failed anew', async () => {
    const m = new DaemonMetrics({ processMetrics: false });
    const { network, state } = fakeNetwork();
    m.serveNetwork('host-gw', network);
    const errors = async () => valueOf(await scrape(m), 'flannel_peer_programming_errors_total');
    assert.equal(await errors(), 0);
    state.peers = [peer('10.244.4.0/24', 'failed', 't1')];
    assert.equal(await errors(), 1);
    assert.equal(await errors(), 1);
    state.peers = [peer('10.244.4.0/24', 'programmed', 't2')];
    assert.equal(await errors(), 1);
    state.peers = [peer('10.244.4.0/24', 'failed', 't3'), peer('10.244.5.0/24', 'failed', 't3')];
    assert.equal(await errors(), 3);
    // A peer that is gone and comes back failed is a new failure.
    state.peers = [];
    assert.equal(await errors(), 3);
    state.peers = [peer('10.244.5.0/24', 'failed', 't3')];
    assert.equal(await errors(), 4);
  });

  it('has no peer series for a backend without per-peer status', async () => {
    const m = new DaemonMetrics({ processMetrics: false });
    m.serveNetwork('udp', fakeNetwork(OWN, { peers: false, repairs: false }).network);
    const s = await scrape(m);
    assert.deepEqual(samplesOf(s, 'flannel_peers'), []);
    assert.deepEqual(samplesOf(s, 'flannel_peer_programming_errors_total'), []);
    assert.deepEqual(samplesOf(s, 'flannel_kernel_repairs_total'), []);
    assert.equal(samplesOf(s, 'flannel_lease_info').length, 1);
  });

  it("mirrors the backend's repair counts by kind", async () => {
    const m = new DaemonMetrics({ processMetrics: false });
    const { network, state } = fakeNetwork();
    m.serveNetwork('vxlan', network);
    let s = await scrape(m);
    for (const kind of ['route', 'neigh', 'fdb'])
      assert.equal(valueOf(s, 'flannel_kernel_repairs_total', { kind }), 0, kind);
    state.repairs = { route: 2, neigh: 1, fdb: 5 };
    s = await scrape(m);
    assert.deepEqual(
      samplesOf(s, 'flannel_kernel_repairs_total').map((x) => [x.labels.kind, x.value]),
      [
        ['route', 2],
        ['neigh', 1],
        ['fdb', 5],
      ],
    );
  });

  it('a backend whose peers() throws still gets scraped', async () => {
    const m = new DaemonMetrics({ processMetrics: false });
    const { network } = fakeNetwork();
    network.peers = () => {
      throw new Error('boom');
    };
    m.serveNetwork('vxlan', network);
    const s = await scrape(m);
    assert.deepEqual(samplesOf(s, 'flannel_peers'), []);
    assert.equal(samplesOf(s, 'flannel_lease_info').length, 1);
  });
});

describe('DaemonMetrics: lease batches through observeLeases', () => {
  it('counts lease events by type and times how long the backend took with the last batch', async () => {
    const m = new DaemonMetrics({ processMetrics: false });
    const sm = m.observeLeases(
      fakeManager([[added('10.244.1.0/24'), added('10.244.2.0/24')], [removed('10.244.1.0/24')]]),
    );
    const seen: LeaseEvent[][] = [];
    const delays = [10, 60];
    for await (const batch of sm.watchLeases(OWN, new AbortController().signal)) {
      seen.push(batch);
      await new Promise((r) => setTimeout(r, delays[seen.length - 1]));
    }
    assert.equal(seen.length, 2, 'the batches pass through unchanged');
    const s = await scrape(m);
    assert.equal(valueOf(s, 'flannel_lease_events_total', { type: 'added' }), 2);
    assert.equal(valueOf(s, 'flannel_lease_events_total', { type: 'removed' }), 1);
    const last = valueOf(s, 'flannel_last_convergence_duration_seconds');
    assert.ok(last >= 0.055 && last < 1, `the last batch took ${last} s (handled in 60 ms)`);
  });

  it('passes every other call through to the real manager, and keeps optional methods optional', async () => {
    const m = new DaemonMetrics({ processMetrics: false });
    const calls: string[] = [];
    const real = fakeManager([], {
      acquireLease: async () => (calls.push('acquire'), OWN),
      completeLease: async () => (calls.push('complete'), 'revoked'),
      previousBackendData: () => ({ VtepMAC: '02:00:00:00:00:01' }),
    });
    const sm = m.observeLeases(real);
    assert.equal(sm.name, 'fake');
    assert.equal(await sm.acquireLease(OWN.attrs, new AbortController().signal), OWN);
    assert.equal(await sm.completeLease(OWN, new AbortController().signal), 'revoked');
    assert.deepEqual(sm.previousBackendData?.(), { VtepMAC: '02:00:00:00:00:01' });
    assert.equal(sm.previousBackendV6Data, undefined);
    assert.deepEqual(calls, ['acquire', 'complete']);
  });

  it('counts a peer failure right after the batch that caused it', async () => {
    const m = new DaemonMetrics({ processMetrics: false });
    const { network, state } = fakeNetwork();
    m.serveNetwork('host-gw', network);
    const sm = m.observeLeases(fakeManager([[added('10.244.4.0/24')], []]));
    for await (const _ of sm.watchLeases(OWN, new AbortController().signal)) {
      // Failed while handling the first batch, healed during the second: a scrape afterwards sees no failure.
      state.peers = [
        peer('10.244.4.0/24', state.peers.length === 0 ? 'failed' : 'programmed', `t${state.peers.length}`),
      ];
    }
    assert.equal(valueOf(await scrape(m), 'flannel_peer_programming_errors_total'), 1);
  });
});

describe('DaemonMetrics: subnet manager and rule repairs', () => {
  it('counts list and watch failures and reconnects of the manager in use', async () => {
    const m = new DaemonMetrics({ processMetrics: false });
    const w = m.subnetWatch('kube');
    let s = await scrape(m);
    assert.equal(valueOf(s, 'flannel_subnet_manager_errors_total', { manager: 'kube', op: 'list' }), 0);
    assert.equal(valueOf(s, 'flannel_subnet_manager_reconnects_total', { manager: 'kube' }), 0);
    w.failed('watch');
    w.failed('watch');
    w.failed('list');
    w.relisted();
    s = await scrape(m);
    assert.equal(valueOf(s, 'flannel_subnet_manager_errors_total', { manager: 'kube', op: 'watch' }), 2);
    assert.equal(valueOf(s, 'flannel_subnet_manager_errors_total', { manager: 'kube', op: 'list' }), 1);
    assert.equal(valueOf(s, 'flannel_subnet_manager_reconnects_total', { manager: 'kube' }), 1);
    assert.deepEqual(samplesOf(s, 'flannel_subnet_manager_errors_total', { manager: 'etcd' }), []);
  });

  it('counts rule repairs by mode, rule set and family', async () => {
    const m = new DaemonMetrics({ processMetrics: false });
    const masq = m.ruleRepair('nftables', 'masquerade');
    m.ruleRepair('nftables', 'forward');
    masq('ipv6');
    const s = await scrape(m);
    assert.equal(
      valueOf(s, 'flannel_rule_repairs_total', { mode: 'nftables', rules: 'masquerade', family: 'ipv6' }),
      1,
    );
    assert.equal(
      valueOf(s, 'flannel_rule_repairs_total', { mode: 'nftables', rules: 'masquerade', family: 'ipv4' }),
      0,
    );
    assert.equal(valueOf(s, 'flannel_rule_repairs_total', { mode: 'nftables', rules: 'forward', family: 'ipv4' }), 0);
    assert.equal(samplesOf(s, 'flannel_rule_repairs_total').length, 4);
  });
});

describe('DaemonMetrics: the udp data plane', () => {
  it("mirrors the data plane's packet, byte, drop and write error counters", async () => {
    const m = new DaemonMetrics({ processMetrics: false });
    // Never started: no fd is touched.
    const udp = new UdpNetwork({
      subnetManager: fakeManager([]),
      lease: OWN,
      network: IPv4Net.parse('10.244.0.0/16'),
      mtu: 1472,
      port: 8285,
      fds: { tun: -1, udp: -1 },
    });
    m.serveNetwork('udp', udp);
    Object.assign(udp.dataPlane.stats, {
      toPeers: 3,
      fromPeers: 2,
      toPeersBytes: 252,
      fromPeersBytes: 168,
      noRoute: 4,
      ttlExpired: 1,
      malformed: 0,
      queueFull: 7,
      writeErrors: 1,
    });
    let s = await scrape(m);
    assert.equal(valueOf(s, 'flannel_udp_packets_total', { direction: 'to_peers' }), 3);
    assert.equal(valueOf(s, 'flannel_udp_packets_total', { direction: 'from_peers' }), 2);
    assert.equal(valueOf(s, 'flannel_udp_bytes_total', { direction: 'to_peers' }), 252);
    assert.equal(valueOf(s, 'flannel_udp_bytes_total', { direction: 'from_peers' }), 168);
    assert.deepEqual(
      samplesOf(s, 'flannel_udp_dropped_packets_total').map((x) => [x.labels.reason, x.value]),
      [
        ['no_route', 4],
        ['ttl_expired', 1],
        ['malformed', 0],
        ['queue_full', 7],
      ],
    );
    assert.equal(valueOf(s, 'flannel_udp_write_errors_total'), 1);
    udp.dataPlane.stats.toPeers += 10;
    s = await scrape(m);
    assert.equal(valueOf(s, 'flannel_udp_packets_total', { direction: 'to_peers' }), 13);
  });

  it('has no udp series for other backends', async () => {
    const m = new DaemonMetrics({ processMetrics: false });
    m.serveNetwork('vxlan', fakeNetwork().network);
    const s = await scrape(m);
    for (const name of [
      'flannel_udp_packets_total',
      'flannel_udp_bytes_total',
      'flannel_udp_dropped_packets_total',
      'flannel_udp_write_errors_total',
    ]) {
      assert.deepEqual(samplesOf(s, name), [], name);
    }
  });
});

describe("flanneld's GET /metrics", () => {
  const metrics = new DaemonMetrics();
  const health = new HealthServer(metrics);
  let url: string;
  before(async () => {
    const port = await freePort();
    await health.start('127.0.0.1', port);
    url = `http://127.0.0.1:${port}`;
  });
  after(() => health.stop());

  it('serves the registry in the Prometheus text format, before and after the network runs', async () => {
    let res = await fetch(`${url}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    let s = parsePrometheusText(await res.text());
    assert.equal(samplesOf(s, 'process_cpu_seconds_total').length, 1);
    assert.deepEqual(samplesOf(s, 'flannel_lease_info'), []);
    metrics.serveNetwork('vxlan', fakeNetwork().network);
    res = await fetch(`${url}/metrics`);
    s = parsePrometheusText(await res.text());
    assert.equal(valueOf(s, 'flannel_lease_info', { subnet: '10.244.3.0/24' }), 1);
  });

  it('answers HEAD without a body and refuses other methods', async () => {
    const head = await fetch(`${url}/metrics`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    const post = await fetch(`${url}/metrics`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  it('is a 404 on a health server without metrics', async () => {
    const other = new HealthServer();
    const port = await freePort();
    await other.start('127.0.0.1', port);
    try {
      assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 404);
    } finally {
      await other.stop();
    }
  });
});
