// An in-memory implementation of our SubnetManager interface for backend tests: one shared lease store
// ("cluster"), one manager per simulated host. Watchers get the full set first, then each change as a batch.
// Leases are keyed by leaseName: the IPv4 subnet, or the IPv6 subnet of an IPv6-only lease.
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';
import type { NetworkConfig } from '../../src/config/network-config.ts';
import { leaseName, type Lease, type LeaseAttrs, type LeaseEvent, type SubnetManager } from '../../src/subnet/lease.ts';

interface Watcher {
  /** leaseName of the watching host's own lease. */
  own: string;
  push(batch: LeaseEvent[]): void;
}

/** A CIDR string as a subnet of its family: an IPv6 one (it has a colon) names an IPv6-only lease. */
function parseSubnet(subnet: string | IPv4Net | IPv6Net): IPv4Net | IPv6Net {
  if (typeof subnet !== 'string') return subnet;
  return subnet.includes(':') ? IPv6Net.parse(subnet) : IPv4Net.parse(subnet);
}

export class MemoryCluster {
  readonly leases = new Map<string, Lease>();
  private readonly watchers = new Set<Watcher>();
  /** Dual stack: the IPv6 subnet a host with this IPv4 subnet gets along with it (see dualStack). */
  private readonly ipv6Of = new Map<string, IPv6Net>();

  constructor(readonly config: NetworkConfig) {}

  /** Dual stack: the host whose lease is `v4` also gets `v6` (its manager's leases carry ipv6Subnet). */
  dualStack(v4: string, v6: string): this {
    this.ipv6Of.set(IPv4Net.parse(v4).toString(), IPv6Net.parse(v6));
    return this;
  }

  /**
   * A host's manager; `subnet` is the lease it gets (like a previous subnet from subnet.env). An IPv6 CIDR makes an
   * IPv6-only host (its leases have only ipv6Subnet).
   */
  manager(subnet: string): MemorySubnetManager {
    const net = parseSubnet(subnet);
    if (net instanceof IPv6Net) return new MemorySubnetManager(this, undefined, net);
    return new MemorySubnetManager(this, net, this.ipv6Of.get(net.toString()));
  }

  /**
   * Publishes (adds or changes) a lease, as another host's acquire would; dual stack with `ipv6Subnet`. An IPv6
   * `subnet` (and no `ipv6Subnet`) publishes an IPv6-only lease.
   */
  put(subnet: string | IPv4Net | IPv6Net, attrs: LeaseAttrs, ipv6Subnet?: string | IPv6Net): Lease {
    const net = parseSubnet(subnet);
    const lease: Lease = { attrs, expiration: new Date(Date.now() + 24 * 3600_000) };
    if (net instanceof IPv6Net) {
      if (ipv6Subnet) throw new Error(`put(${net}): an IPv6-only lease takes no second IPv6 subnet`);
      lease.ipv6Subnet = net;
    } else {
      lease.subnet = net;
      if (ipv6Subnet) lease.ipv6Subnet = typeof ipv6Subnet === 'string' ? IPv6Net.parse(ipv6Subnet) : ipv6Subnet;
    }
    this.leases.set(leaseName(lease), lease);
    this.emit({ type: 'added', lease });
    return lease;
  }

  /** Deletes a lease (expiry or revocation); watchers get 'removed' with the last attrs. IPv6-only: its v6 subnet. */
  remove(subnet: string): void {
    const key = parseSubnet(subnet).toString();
    const lease = this.leases.get(key);
    if (!lease) throw new Error(`no lease for ${subnet}`);
    this.leases.delete(key);
    this.emit({ type: 'removed', lease });
  }

  private emit(ev: LeaseEvent): void {
    for (const w of this.watchers) if (w.own !== leaseName(ev.lease)) w.push([ev]);
  }

  /** `own` is the watching host's leaseName; its own lease is never reported. */
  watch(own: string, signal: AbortSignal): AsyncIterable<LeaseEvent[]> {
    const cluster = this;
    return {
      async *[Symbol.asyncIterator]() {
        const queue: LeaseEvent[][] = [];
        let wake: (() => void) | undefined;
        const w: Watcher = {
          own,
          push(batch) {
            queue.push(batch);
            wake?.();
          },
        };
        const first = [...cluster.leases.entries()]
          .filter(([k]) => k !== own)
          .map(([, lease]) => ({ type: 'added' as const, lease }));
        queue.push(first);
        cluster.watchers.add(w);
        const onAbort = () => wake?.();
        signal.addEventListener('abort', onAbort);
        try {
          while (!signal.aborted) {
            const next = queue.shift();
            if (next) {
              yield next;
              continue;
            }
            await new Promise<void>((r) => (wake = r));
            wake = undefined;
          }
        } finally {
          cluster.watchers.delete(w);
          signal.removeEventListener('abort', onAbort);
        }
      },
    };
  }
}

export class MemorySubnetManager implements SubnetManager {
  readonly name = 'In-memory test subnet manager';
  /** Every attrs this host published, in order. */
  readonly published: LeaseAttrs[] = [];

  constructor(
    readonly cluster: MemoryCluster,
    /** Undefined on an IPv6-only host. */
    readonly subnet: IPv4Net | undefined,
    readonly ipv6Subnet?: IPv6Net,
  ) {
    if (!subnet && !ipv6Subnet) throw new Error('a memory subnet manager needs an IPv4 or an IPv6 subnet');
  }

  async getNetworkConfig(): Promise<NetworkConfig> {
    return this.cluster.config;
  }

  async acquireLease(attrs: LeaseAttrs): Promise<Lease> {
    this.published.push(attrs);
    return this.subnet
      ? this.cluster.put(this.subnet, attrs, this.ipv6Subnet)
      : this.cluster.put(this.ipv6Subnet!, attrs);
  }

  watchLeases(own: Lease, signal: AbortSignal): AsyncIterable<LeaseEvent[]> {
    return this.cluster.watch(leaseName(own), signal);
  }

  async close(): Promise<void> {}

  async completeLease(_lease: Lease, signal: AbortSignal): Promise<'revoked' | 'aborted'> {
    if (signal.aborted) return 'aborted';
    await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
    return 'aborted';
  }
}
