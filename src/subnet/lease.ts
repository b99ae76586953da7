// Leases: one host's subnet in the cluster Network plus what peers need to reach it.
import type { IPv4Net } from '../ip/ipv4.ts';
import type { IPv6Net } from '../ip/ipv6.ts';

export interface LeaseAttrs {
  /** Dotted IPv4; "0.0.0.0" when unset. */
  publicIP: string;
  publicIPv6: string | null;
  /** "" for udp and alloc, which do not set it. */
  backendType: string;
  /** Raw backend JSON value (e.g. {"VNI":1,"VtepMAC":"…"}); undefined when absent. */
  backendData?: unknown;
  backendV6Data?: unknown;
}

/**
 * At least one of `subnet` / `ipv6Subnet` is present: IPv4-only leases have `subnet`, dual-stack leases both,
 * IPv6-only leases `ipv6Subnet` alone (etcd key `0.0.0.0-0&<v6>-<len>`, see lease-json.ts).
 */
export interface Lease {
  subnet?: IPv4Net;
  /** The host's IPv6 subnet in dual-stack and IPv6-only mode (etcd key `<v4>-<len>&<v6>-<len>`). */
  ipv6Subnet?: IPv6Net;
  attrs: LeaseAttrs;
  /**
   * When the etcd lease runs out; null for a reservation (a key with no etcd lease). Exact for this node's own lease
   * (from its grant); for keys read in a listing or a watch it is the latest it can be (the granted TTL from now):
   * asking etcd for every peer's TTL cost one round trip per peer at startup, and nothing reads a peer's expiry.
   */
  expiration: Date | null;
}

/**
 * A lease's identity: its IPv4 subnet, or its IPv6 subnet on an IPv6-only network. Peers are tracked by it and log
 * lines name leases with it.
 */
export function leaseName(l: Pick<Lease, 'subnet' | 'ipv6Subnet'>): string {
  const name = l.subnet?.toString() ?? l.ipv6Subnet?.toString();
  if (name === undefined) throw new Error('a lease needs an IPv4 or an IPv6 subnet');
  return name;
}

/** A Lease without `undefined` members for the family it lacks. */
export function makeLease(s: Pick<Lease, 'subnet' | 'ipv6Subnet'>, attrs: LeaseAttrs, expiration: Date | null): Lease {
  const lease: Lease = { attrs, expiration };
  if (s.subnet) lease.subnet = s.subnet;
  if (s.ipv6Subnet) lease.ipv6Subnet = s.ipv6Subnet;
  return lease;
}

/** What a subnet manager's list+watch loop reports (flanneld's /metrics): failed lists and watches, relistings. */
export interface SubnetWatchObserver {
  failed(op: 'list' | 'watch'): void;
  relisted(): void;
}

export type LeaseEvent = { type: 'added'; lease: Lease } | { type: 'removed'; lease: Lease };

/** Where a host gets its subnet and learns about its peers (etcd or the Kubernetes API). */
export interface SubnetManager {
  /** For the startup log line "Created subnet manager: <name>". */
  readonly name: string;
  getNetworkConfig(signal: AbortSignal): Promise<import('../config/network-config.ts').NetworkConfig>;
  /** Reuses or allocates this host's lease and publishes attrs with it. */
  acquireLease(attrs: LeaseAttrs, signal: AbortSignal): Promise<Lease>;
  /**
   * Every lease of the cluster except `own`: first a batch with the whole current set, then changes.
   * Recovers by itself from disconnects and compaction; ends only when `signal` aborts.
   */
  watchLeases(own: Lease, signal: AbortSignal): AsyncIterable<LeaseEvent[]>;
  /**
   * Keeps the own lease alive until `signal` aborts. Resolves with 'revoked' when someone deleted the lease
   * (the daemon then shuts down), 'conflict' when another writer keeps taking it (the daemon stops with an error,
   * already logged), 'aborted' otherwise.
   */
  completeLease(lease: Lease, signal: AbortSignal): Promise<'revoked' | 'aborted' | 'conflict'>;
  /**
   * The backend data this host published before this run, when the manager keeps it (kube mode: the node's
   * backend-data annotation); vxlan reuses its VtepMAC so that peers' ARP/FDB entries stay valid.
   */
  previousBackendData?(): unknown;
  /** The same for the IPv6 device (the backend-v6-data annotation). */
  previousBackendV6Data?(): unknown;
  /** Ends the manager's connections and background work (the daemon's last step). */
  close(): Promise<void>;
}
