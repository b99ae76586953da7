// The network config as flanneld uses it after parsing (see parse.ts for the JSON rules).
import type { IPv4, IPv4Net } from '../ip/ipv4.ts';
import type { IPv6, IPv6Net } from '../ip/ipv6.ts';

export interface NetworkConfig {
  enableIPv4: boolean;
  enableIPv6: boolean;
  enableNFTables: boolean;
  /** Present when enableIPv4. */
  network?: IPv4Net;
  /** Per-host subnet prefix length (defaulted in etcd mode). */
  subnetLen: number;
  subnetMin?: IPv4;
  subnetMax?: IPv4;
  /** Present when enableIPv6 (dual stack: together with `network`). */
  ipv6Network?: IPv6Net;
  /** Per-host IPv6 subnet prefix length (defaulted in etcd mode; 0 when IPv6 is off). */
  ipv6SubnetLen?: number;
  ipv6SubnetMin?: IPv6;
  ipv6SubnetMax?: IPv6;
  /** Backend type, lower-cased; `udp` when the Backend key is absent (real flannel's default). */
  backendType: string;
  /** The raw Backend object; read options with `backendOption`, whose key match is case-insensitive. */
  backend: Record<string, unknown>;
}
