// A Backend turns leases into kernel state; the registry maps a config's Backend.Type to one.
import type { NetworkConfig } from '../config/network-config.ts';
import type { IPv4Net } from '../ip/ipv4.ts';
import type { IPv6Net } from '../ip/ipv6.ts';
import type { Netlink } from '../netlink/index.ts';
import { leaseName, type Lease, type LeaseAttrs, type SubnetManager } from '../subnet/lease.ts';

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
  /** How many peer entries the backend put back after someone removed them; backends that do not count omit it. */
  repairs?(): RepairCounts;
}

/** Restored kernel entries by kind, since the network started. */
export interface RepairCounts {
  route: number;
  neigh: number;
  fdb: number;
}

/** One peer as a backend sees it: whether its kernel state is in place, and why not. */
export interface PeerStatus {
  /**
   * host-gw: the destination of one route (a dual-stack lease has two rows, its IPv4 and its IPv6 subnet); vxlan and
   * udp: the peer lease's subnet (vxlan: its IPv6 subnet when it has no IPv4 one or the network is IPv6-only).
   */
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

/** Before taking a lease: the config names at least one family, and an IPv6Network has an IPv6 address to publish. */
export function requireFamilies(ctx: BackendContext, backendType: string): void {
  const { network, ipv6Network } = ctx.config;
  if (!network && !ipv6Network)
    throw new Error(`the ${backendType} backend needs a Network and/or an IPv6Network in the network config`);
  if (ipv6Network && !ctx.extIface.extAddrV6) {
    throw new Error(
      'the network config has an IPv6Network but the external interface has no IPv6 address; give it one or set --public-ipv6',
    );
  }
}

/** The lease's public addresses, as upstream: PublicIP 0.0.0.0 on an IPv6-only network, PublicIPv6 null without IPv6. */
export function leaseAttrs(ctx: BackendContext, backendType: string): LeaseAttrs {
  const { config, extIface } = ctx;
  return {
    publicIP: config.network ? extIface.extAddr : '0.0.0.0',
    publicIPv6: config.ipv6Network ? extIface.extAddrV6! : null,
    backendType,
  };
}

/** One family's Network with this lease's subnet in it. */
export interface LeaseNetwork<N extends IPv4Net | IPv6Net> {
  network: N;
  subnet: N;
  subnetLen: number;
}

/**
 * The families the config runs, each with the acquired lease's subnet (which must be there). Kube mode does not
 * default SubnetLen (docs/COMPATIBILITY.md, "Kubernetes subnet manager"): the pod CIDR's length is the subnet length.
 */
export function leaseNetworks(
  config: NetworkConfig,
  lease: Lease,
): { v4?: LeaseNetwork<IPv4Net>; v6?: LeaseNetwork<IPv6Net> } {
  const out: { v4?: LeaseNetwork<IPv4Net>; v6?: LeaseNetwork<IPv6Net> } = {};
  if (config.network) {
    if (!lease.subnet)
      throw new Error(`the lease ${leaseName(lease)} has no IPv4 subnet although the network config has a Network`);
    out.v4 = { network: config.network, subnet: lease.subnet, subnetLen: config.subnetLen || lease.subnet.prefix };
  }
  if (config.ipv6Network) {
    if (!lease.ipv6Subnet)
      throw new Error(
        `the lease ${leaseName(lease)} has no IPv6 subnet although the network config has an IPv6Network`,
      );
    out.v6 = {
      network: config.ipv6Network,
      subnet: lease.ipv6Subnet,
      subnetLen: config.ipv6SubnetLen || lease.ipv6Subnet.prefix,
    };
  }
  return out;
}

/** What a backend logs for a peer lease of another backend type (upstream's wording). */
export function otherBackendReason(lease: Lease, backendType: string): string {
  return `ignoring non-${backendType} v4Subnet(${lease.subnet ?? '<nil>'}) v6Subnet(${lease.ipv6Subnet ?? '<nil>'}): type=${lease.attrs.backendType}`;
}
