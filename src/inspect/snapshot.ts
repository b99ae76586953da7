// A read-only picture of one node as the checks see it: plain values, read elsewhere (kernel, files, the cluster,
// flanneld's health server), so every check is a pure function testable on fixtures.
import type { AddressInfo, FdbEntry, LinkInfo, NeighbourInfo, RouteInfo, RouteLookup } from '../netlink/index.ts';
import type { Lease } from '../subnet/lease.ts';
import type { SubnetEnv } from '../subnet/subnet-env.ts';

/** Something that could not be read, and why (a missing file, an unreachable etcd). */
export interface Unreadable {
  error: string;
}

export interface NodeSnapshot {
  /** subnet.env as flanneld wrote it, with its path. */
  subnetEnv: { path: string; env?: SubnetEnv; error?: string };
  /** The backend of the network config, with the vxlan settings that the device must carry (udp: its Port). */
  backend?: { type: string; vni: number; port: number; directRouting: boolean };
  /** This node's public IP, when known (flags); otherwise the own lease is found by subnet.env's subnet. */
  publicIP?: string;
  /** The rules live in nftables ("EnableNFTables"): br_netfilter does not matter then. */
  nftables?: boolean;
  /** Every lease of the cluster, this node's included; Unreadable when etcd / the API server did not answer. */
  leases: Lease[] | Unreadable;
  links: LinkInfo[];
  addresses: AddressInfo[];
  routes: RouteInfo[];
  neighbours: NeighbourInfo[];
  fdb: FdbEntry[];
  /** flanneld's health server, when doctor was given its URL: /healthz and /readyz answers, or why there was none. */
  flanneld?: { url: string; healthz: string; readyz: string };
  /** The kernel's answer to `ip route get <ip>` for each peer's public IP (each family), or why there was none. */
  underlay: Array<{ lease: string; ip: string; lookup?: RouteLookup; error?: string }>;
  /** The rules as their listers print them: `iptables-save -c`, `ip6tables-save -c`, `nft -j list ruleset`. */
  netfilter: { iptables?: string; ip6tables?: string; nft?: string; errors: string[] };
  /** --probe only: echoes sent to each peer's public IP (underlay) and flannel address (overlay), and answered. */
  probes?: Probe[];
  /** /proc/sys values by dotted name (net.ipv4.ip_forward …); absent when the file does not exist. */
  sysctls: Record<string, string | undefined>;
}

export interface Probe {
  lease: string;
  kind: 'underlay' | 'overlay';
  target: string;
  sent: number;
  received: number;
}
