// Leases: one host's subnet in the cluster Network plus what peers need to reach it.
import type { IPv4Net } from '../ip/ipv4.ts';

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

export interface Lease {
  subnet: IPv4Net;
  /** The host's IPv6 subnet in dual-stack mode (etcd key `<v4>-<len>&<v6>-<len>`). */
  ipv6Subnet?: import('../ip/ipv6.ts').IPv6Net;
  attrs: LeaseAttrs;
  /** When the etcd lease runs out; null for a reservation (a key with no etcd lease). */
  expiration: Date | null;
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
   * (the daemon then shuts down), 'aborted' otherwise.
   */
  completeLease(lease: Lease, signal: AbortSignal): Promise<'revoked' | 'aborted'>;
  /**
   * The backend data this host published before this run, when the manager keeps it (kube mode: the node's
   * backend-data annotation); vxlan reuses its VtepMAC so that peers' ARP/FDB entries stay valid.
   */
  previousBackendData?(): unknown;
}
