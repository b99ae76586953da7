// flanneld's GET /metrics (Prometheus text format): the own lease, peers, lease events and convergence, subnet
// manager watch failures, rule and kernel repairs, udp traffic and the process. The one module that imports
// prom-client: lower layers report through the small callback interfaces they declare, or are read at scrape time.
import { performance } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Network, PeerStatus } from '../backend/backend.ts';
import type { DataPlaneStats } from '../backend/udp/data-plane.ts';
import { UdpNetwork } from '../backend/udp/network.ts';
import { errorMessage, logger } from '../log/log.ts';
import type { LeaseEvent, SubnetManager, SubnetWatchObserver } from '../subnet/lease.ts';

const log = logger('metrics');

export type SubnetManagerKind = 'etcd' | 'kube';
export type RuleMode = 'iptables' | 'nftables';
export type RuleKind = 'masquerade' | 'forward';
type Family = 'ipv4' | 'ipv6';

/** [label value, count] pairs read at scrape time; undefined: the counter has no series. */
type Mirrored = () => [string, number][] | undefined;

interface Running {
  backend: string;
  network: Network;
}

export interface DaemonMetricsOptions {
  /** prom-client's process_* and nodejs_* metrics (default true). */
  processMetrics?: boolean;
}

export class DaemonMetrics {
  readonly registry = new Registry();
  private running?: Running;
  /** Per peer subnet: the `since` of the failure last counted, so each failure is counted once. */
  private readonly countedFailures = new Map<string, string>();
  /** The peers read once per scrape (render), for the collects that need them. */
  private scraped: PeerStatus[] | undefined;

  private readonly leaseExpiry: Gauge;
  private readonly leaseEvents: Counter<'type'>;
  private readonly convergence: Gauge;
  private readonly peerErrors: Counter;
  private readonly watchErrors: Counter<'manager' | 'op'>;
  private readonly watchRelists: Counter<'manager'>;
  private readonly ruleRepairs: Counter<'mode' | 'rules' | 'family'>;

  constructor(o: DaemonMetricsOptions = {}) {
    const registers = [this.registry];
    const metrics = this;
    new Gauge({
      name: 'flannel_lease_info',
      help: "This node's subnet lease: its subnet(s), public address(es) and backend as labels (value always 1)",
      labelNames: ['subnet', 'ipv6_subnet', 'public_ip', 'public_ipv6', 'backend'],
      registers,
      collect() {
        this.reset();
        const r = metrics.running;
        if (!r) return;
        const { lease } = r.network;
        const labels = {
          subnet: lease.subnet?.toString() ?? '',
          ipv6_subnet: lease.ipv6Subnet?.toString() ?? '',
          public_ip: lease.subnet ? lease.attrs.publicIP : '',
          public_ipv6: lease.attrs.publicIPv6 ?? '',
          backend: r.backend,
        };
        this.set(labels, 1);
      },
    });
    this.leaseExpiry = new Gauge({
      name: 'flannel_lease_expiry_timestamp_seconds',
      help: "When this node's etcd lease runs out unless renewed (Unix time); absent for a lease that never expires (a reservation, kube mode)",
      registers,
    });
    this.leaseExpiry.remove();
    new Gauge({
      name: 'flannel_peers',
      help: 'Peers as GET /peers lists them (host-gw: one per route), by whether their kernel state is in place (programmed) or not (failed); absent when the backend keeps no per-peer status',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        const peers = metrics.scraped;
        if (!peers) return;
        const failed = peers.filter((p) => p.state === 'failed').length;
        this.set({ state: 'programmed' }, peers.length - failed);
        this.set({ state: 'failed' }, failed);
      },
    });
    this.peerErrors = new Counter({
      name: 'flannel_peer_programming_errors_total',
      help: 'Peers that went into state failed (one per failure, seen after each lease batch and at each scrape); absent when the backend keeps no per-peer status',
      registers,
    });
    this.peerErrors.remove();
    this.leaseEvents = new Counter({
      name: 'flannel_lease_events_total',
      help: 'Peer lease events received from the subnet manager, by type (the first batch adds every current peer)',
      labelNames: ['type'],
      registers,
    });
    for (const type of ['added', 'removed']) this.leaseEvents.inc({ type }, 0);
    this.convergence = new Gauge({
      name: 'flannel_last_convergence_duration_seconds',
      help: 'How long the backend took to program the kernel for the last lease batch, from receiving it to done (the first batch includes the startup sweep)',
      registers,
    });
    this.convergence.remove();
    this.watchErrors = new Counter({
      name: 'flannel_subnet_manager_errors_total',
      help: "Failed lists and watches of the subnet manager's lease watch (etcd or the Kubernetes node watch), by operation",
      labelNames: ['manager', 'op'],
      registers,
    });
    this.watchRelists = new Counter({
      name: 'flannel_subnet_manager_reconnects_total',
      help: 'Times the subnet manager listed the leases again and restarted its watch, after a failure, a disconnect, a compaction or a resync',
      labelNames: ['manager'],
      registers,
    });
    this.ruleRepairs = new Counter({
      name: 'flannel_rule_repairs_total',
      help: 'Masquerade or forward rule sets that a resync found missing or changed and applied again, by mode, rule set and IP family',
      labelNames: ['mode', 'rules', 'family'],
      registers,
    });
    /** A counter that shows counts kept elsewhere: at every scrape exactly what `read()` gives, one series a pair. */
    const mirrored = (name: string, help: string, label: string, read: Mirrored) =>
      new Counter({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          this.reset();
          for (const [value, n] of read() ?? []) this.inc({ [label]: value }, n);
        },
      });
    mirrored(
      'flannel_kernel_repairs_total',
      'Peer kernel entries (route, neighbour, FDB) the backend put back after someone removed or changed them; absent when the backend does not count them',
      'kind',
      () => {
        const c = metrics.running?.network.repairs?.();
        return (
          c && [
            ['route', c.route],
            ['neigh', c.neigh],
            ['fdb', c.fdb],
          ]
        );
      },
    );
    /** The udp data plane's counts, while the udp backend runs. */
    const udpStats = (): DataPlaneStats | undefined => {
      const n = metrics.running?.network;
      return n instanceof UdpNetwork ? n.dataPlane.stats : undefined;
    };
    const udp = (pairs: (s: DataPlaneStats) => [string, number][]): Mirrored => {
      return () => {
        const s = udpStats();
        return s && pairs(s);
      };
    };
    mirrored(
      'flannel_udp_packets_total',
      'Packets the udp backend forwarded: to peers (flannel0 → UDP) and from peers (UDP → flannel0)',
      'direction',
      udp((s) => [
        ['to_peers', s.toPeers],
        ['from_peers', s.fromPeers],
      ]),
    );
    mirrored(
      'flannel_udp_bytes_total',
      'IP bytes of the packets the udp backend forwarded (the UDP payloads), by direction',
      'direction',
      udp((s) => [
        ['to_peers', s.toPeersBytes],
        ['from_peers', s.fromPeersBytes],
      ]),
    );
    mirrored(
      'flannel_udp_dropped_packets_total',
      'Packets the udp backend dropped, by reason: no peer for the destination, TTL expired, not IPv4, a full socket or flannel0 queue',
      'reason',
      udp((s) => [
        ['no_route', s.noRoute],
        ['ttl_expired', s.ttlExpired],
        ['malformed', s.malformed],
        ['queue_full', s.queueFull],
      ]),
    );
    new Counter({
      name: 'flannel_udp_write_errors_total',
      help: 'Batched writes of the udp backend that failed (each may have dropped several packets; the log says how many)',
      registers,
      collect() {
        const s = udpStats();
        if (!s) return this.remove();
        this.reset();
        this.inc(s.writeErrors);
      },
    });
    if (o.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text a scrape gets. */
  render(): Promise<string> {
    // Once per scrape: counts new failures into peerErrors before it is rendered, and feeds flannel_peers.
    this.scraped = this.peers();
    return this.registry.metrics();
  }

  /** From now on the lease, peers, kernel repairs and udp counters are read from `network` at every scrape. */
  serveNetwork(backend: string, network: Network): void {
    this.running = { backend: backend.toLowerCase(), network };
    if (network.peers) this.peerErrors.inc(0);
    this.setLeaseExpiry(network.lease.expiration);
  }

  /** When the own lease runs out (a renewal moves it); null: never. */
  setLeaseExpiry(expiration: Date | null): void {
    if (expiration) this.leaseExpiry.set(expiration.getTime() / 1000);
    else this.leaseExpiry.remove();
  }

  /** What `manager`'s lease watch reports to. */
  subnetWatch(manager: SubnetManagerKind): SubnetWatchObserver {
    for (const op of ['list', 'watch']) this.watchErrors.inc({ manager, op }, 0);
    this.watchRelists.inc({ manager }, 0);
    return {
      failed: (op) => this.watchErrors.inc({ manager, op }),
      relisted: () => this.watchRelists.inc({ manager }),
    };
  }

  /** What the resync loop of the `rules` rule sets in `mode` reports to. */
  ruleRepair(mode: RuleMode, rules: RuleKind): (family: Family) => void {
    for (const family of ['ipv4', 'ipv6']) this.ruleRepairs.inc({ mode, rules, family }, 0);
    return (family) => this.ruleRepairs.inc({ mode, rules, family });
  }

  /**
   * `sm` with its lease batches counted and timed: a batch is converged when the backend asks for the next one, as
   * every backend handles a batch completely (kernel included) before it reads on.
   */
  observeLeases(sm: SubnetManager): SubnetManager {
    const metrics = this;
    const observed: SubnetManager = {
      name: sm.name,
      getNetworkConfig: (signal) => sm.getNetworkConfig(signal),
      acquireLease: (attrs, signal) => sm.acquireLease(attrs, signal),
      completeLease: (lease, signal) => sm.completeLease(lease, signal),
      close: () => sm.close(),
      async *watchLeases(own, signal) {
        for await (const batch of sm.watchLeases(own, signal)) {
          metrics.leaseBatch(batch);
          const received = performance.now();
          yield batch;
          metrics.converged((performance.now() - received) / 1000);
        }
      },
    };
    if (sm.previousBackendData) observed.previousBackendData = () => sm.previousBackendData!();
    if (sm.previousBackendV6Data) observed.previousBackendV6Data = () => sm.previousBackendV6Data!();
    return observed;
  }

  private leaseBatch(batch: LeaseEvent[]): void {
    for (const ev of batch) this.leaseEvents.inc({ type: ev.type });
  }

  private converged(seconds: number): void {
    this.convergence.set(seconds);
    this.peers();
  }

  /** The backend's peers (undefined when it keeps no status); counts failures not counted yet on the way. */
  private peers(): PeerStatus[] | undefined {
    const network = this.running?.network;
    if (!network?.peers) return undefined;
    let peers: PeerStatus[];
    try {
      peers = network.peers();
    } catch (e) {
      log.error(`reading the peers for /metrics failed: ${errorMessage(e)}`);
      return undefined;
    }
    const current = new Set<string>();
    for (const p of peers) {
      current.add(p.subnet);
      if (p.state !== 'failed' || this.countedFailures.get(p.subnet) === p.since) continue;
      this.countedFailures.set(p.subnet, p.since);
      this.peerErrors.inc();
    }
    for (const subnet of this.countedFailures.keys()) if (!current.has(subnet)) this.countedFailures.delete(subnet);
    return peers;
  }
}
