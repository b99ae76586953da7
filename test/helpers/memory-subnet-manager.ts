// An in-memory implementation of our SubnetManager interface for backend tests: one shared lease store
// ("cluster"), one manager per simulated host. Watchers get the full set first, then each change as a batch.
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';
import type { NetworkConfig } from '../../src/config/network-config.ts';
import type { Lease, LeaseAttrs, LeaseEvent, SubnetManager } from '../../src/subnet/lease.ts';

interface Watcher {
  own: IPv4Net;
  push(batch: LeaseEvent[]): void;
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

  /** A host's manager; `subnet` is the lease it gets (like a previous subnet from subnet.env). */
  manager(subnet: string): MemorySubnetManager {
    const net = IPv4Net.parse(subnet);
    return new MemorySubnetManager(this, net, this.ipv6Of.get(net.toString()));
  }

  /** Publishes (adds or changes) a lease, as another host's acquire would; dual stack with `ipv6Subnet`. */
  put(subnet: string | IPv4Net, attrs: LeaseAttrs, ipv6Subnet?: string | IPv6Net): Lease {
    const net = typeof subnet === 'string' ? IPv4Net.parse(subnet) : subnet;
    const lease: Lease = { subnet: net, attrs, expiration: new Date(Date.now() + 24 * 3600_000) };
    if (ipv6Subnet) lease.ipv6Subnet = typeof ipv6Subnet === 'string' ? IPv6Net.parse(ipv6Subnet) : ipv6Subnet;
    this.leases.set(net.toString(), lease);
    this.emit({ type: 'added', lease });
    return lease;
  }

  /** Deletes a lease (expiry or revocation); watchers get 'removed' with the last attrs. */
  remove(subnet: string): void {
    const lease = this.leases.get(IPv4Net.parse(subnet).toString());
    if (!lease) throw new Error(`no lease for ${subnet}`);
    this.leases.delete(lease.subnet!.toString());
    this.emit({ type: 'removed', lease });
  }

  private emit(ev: LeaseEvent): void {
    for (const w of this.watchers) if (!w.own.equals(ev.lease.subnet!)) w.push([ev]);
  }

  watch(own: IPv4Net, signal: AbortSignal): AsyncIterable<LeaseEvent[]> {
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
        const first = [...cluster.leases.values()].filter((l) => !l.subnet!.equals(own)).map((lease) => ({ type: 'added' as const, lease }));
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
    readonly subnet: IPv4Net,
    readonly ipv6Subnet?: IPv6Net,
  ) {}

  async getNetworkConfig(): Promise<NetworkConfig> {
    return this.cluster.config;
  }

  async acquireLease(attrs: LeaseAttrs): Promise<Lease> {
    this.published.push(attrs);
    return this.cluster.put(this.subnet, attrs, this.ipv6Subnet);
  }

  watchLeases(own: Lease, signal: AbortSignal): AsyncIterable<LeaseEvent[]> {
    return this.cluster.watch(own.subnet!, signal);
  }

  async completeLease(_lease: Lease, signal: AbortSignal): Promise<'revoked' | 'aborted'> {
    if (signal.aborted) return 'aborted';
    await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
    return 'aborted';
  }
}
