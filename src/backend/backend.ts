// A Backend turns leases into kernel state; the registry maps a config's Backend.Type to one.
import type { NetworkConfig } from '../config/network-config.ts';
import type { Netlink } from '../netlink/index.ts';
import type { Lease, LeaseAttrs, SubnetManager } from '../subnet/lease.ts';

/** The interface flanneld talks to peers through (see daemon/interface-selection.ts). */
export interface ExternalInterface {
  name: string;
  index: number;
  mtu: number;
  /** The interface's own IPv4 address ("" on an IPv6-only network). */
  ifaceAddr: string;
  /** The address peers use (== ifaceAddr unless --public-ip; "" on an IPv6-only network). */
  extAddr: string;
  /** Dual stack: the interface's IPv6 address, and the one peers use (== ifaceAddrV6 unless --public-ipv6). */
  ifaceAddrV6?: string;
  extAddrV6?: string;
}

export interface BackendContext {
  subnetManager: SubnetManager;
  extIface: ExternalInterface;
  config: NetworkConfig;
  /** The process's netlink handle (the daemon opens one and passes it to the backend). */
  netlink: Netlink;
}

/** A registered network: the host's lease plus the loop that programs peers. */
export interface Network {
  readonly lease: Lease;
  /** MTU for subnet.env. */
  readonly mtu: number;
  /** Watches leases and converges the kernel until `signal` aborts. */
  run(signal: AbortSignal): Promise<void>;
  /** Where each peer stands, for operators (flanneld's `GET /peers`); backends without per-peer state omit it. */
  peers?(): PeerStatus[];
}

/** One peer as a backend sees it: whether its kernel state is in place, and why not. */
export interface PeerStatus {
  /** The destination programmed for the peer (its lease's subnet, or the IPv6 subnet of a dual-stack lease). */
  subnet: string;
  publicIP: string;
  state: 'programmed' | 'failed';
  /** Why the peer's state is not in the kernel (state 'failed'). */
  reason?: string;
  /** When the state last changed (ISO 8601). */
  since: string;
}

export interface Backend {
  /** Creates devices, acquires the lease (publishing `attrs` plus backend data) and configures the device. */
  registerNetwork(signal: AbortSignal): Promise<Network>;
}

export type BackendFactory = (ctx: BackendContext) => Backend;

/** Attributes every backend starts from. */
export function baseAttrs(ext: ExternalInterface, backendType: string): LeaseAttrs {
  return { publicIP: ext.extAddr, publicIPv6: null, backendType };
}
