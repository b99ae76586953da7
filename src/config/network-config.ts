// The network config as flanneld uses it after parsing (see parse.ts for the JSON rules).
import type { IPv4, IPv4Net } from '../ip/ipv4.ts';

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
  /** Backend type, lower-cased; `udp` when the Backend key is absent (real flannel's default). */
  backendType: string;
  /** The raw Backend object; read options with `backendOption`, whose key match is case-insensitive. */
  backend: Record<string, unknown>;
}
