// Plain values our netlink facade hands out and accepts: addresses as strings, indexes as numbers.

export type Family = 4 | 6;

/** The kernel's main routing table (`ip route` without `table`). */
export const RT_TABLE_MAIN = 254;
export type ScopeName = 'universe' | 'site' | 'link' | 'host' | 'nowhere' | `${number}`;

export interface VxlanInfo {
  id: number;
  /** Local (source) address; null when unset. */
  local: string | null;
  /** Underlay device index; null when unset. */
  link: number | null;
  /** Destination UDP port; 0 when the kernel did not report one. */
  port: number;
  learning: boolean;
  gbp: boolean;
  /** Multicast group or remote; null when unset. */
  group: string | null;
  l2miss: boolean;
  l3miss: boolean;
}

export interface LinkInfo {
  index: number;
  name: string;
  mtu: number;
  /** Lower-case colon-separated MAC; null for devices without one (tun). */
  mac: string | null;
  up: boolean;
  /** IFLA_INFO_KIND: 'vxlan', 'veth', 'bridge' … ; undefined for physical devices and loopback. */
  kind?: string;
  vxlan?: VxlanInfo;
  master?: number;
}

export interface AddressInfo {
  index: number;
  family: Family;
  address: string;
  prefixLen: number;
  scope: ScopeName;
  permanent: boolean;
  deprecated: boolean;
  temporary: boolean;
  label?: string;
}

export interface RouteInfo {
  /** `a.b.c.d/n`, or null for a default route. */
  dst: string | null;
  gateway?: string;
  oif?: number;
  prefsrc?: string;
  priority?: number;
  scope: ScopeName;
  /** 'kernel', 'boot', 'static', … or the number as text. */
  protocol: string;
  onlink: boolean;
  table: number;
  /** 'unicast', 'local', 'broadcast', 'blackhole', … */
  type: string;
}

export interface RouteFilter {
  table?: number;
  oif?: number;
  /** Exact destination `a.b.c.d/n` (null = default route). */
  dst?: string | null;
}

/** The kernel's answer to `ip route get <dst>`. */
export interface RouteLookup {
  oif?: number;
  gateway?: string;
  prefsrc?: string;
  type: string;
}

export interface NeighbourInfo {
  index: number;
  ip: string;
  mac: string | null;
  permanent: boolean;
  /** NUD state names, e.g. ['permanent'] or ['reachable']. */
  state: string[];
}

export interface FdbEntry {
  index: number;
  mac: string;
  /** Remote VTEP (NDA_DST) for vxlan entries. */
  dst?: string;
  self: boolean;
  permanent: boolean;
  master?: number;
}

export interface VxlanSpec {
  name: string;
  id: number;
  /** Local IPv4 or IPv6 address (source of encapsulated packets; IPv6 makes an IPv6-underlay device). */
  local?: string;
  /** Underlay device index. */
  link?: number;
  /** 0 or undefined = kernel default (8472). */
  port?: number;
  learning: boolean;
  gbp: boolean;
  mac?: string;
  mtu?: number;
}

export interface RouteSpec {
  dst: string;
  gateway?: string;
  oif?: number;
  onlink?: boolean;
  /** Default: 'link' when there is no gateway, 'universe' otherwise (like iproute2). */
  scope?: ScopeName;
  /** Default: main (254). */
  table?: number;
  /** Default: 'boot' (what iproute2 uses). */
  protocol?: string;
  /** Default: unicast. A blackhole route has no gateway or device. */
  type?: 'unicast' | 'blackhole';
  /** Metric; routes with different metrics to one dst coexist (replace matches on it). */
  priority?: number;
}

export interface NeighbourSpec {
  index: number;
  ip: string;
  mac: string;
}

export interface FdbSpec {
  index: number;
  mac: string;
  dst?: string;
}

export type LinkEvent = { type: 'new'; link: LinkInfo } | { type: 'del'; link: LinkInfo };

/** What a link watch yields: 'overrun' means the kernel dropped notifications, so re-check the state. */
export type LinkWatchEvent = LinkEvent | { type: 'overrun' };

/** A route, neighbour or FDB entry that the kernel added/changed ('new') or deleted ('del'), on any device. */
export type EntryEvent =
  | { type: 'new' | 'del'; kind: 'route'; route: RouteInfo }
  | { type: 'new' | 'del'; kind: 'neighbour'; neighbour: NeighbourInfo }
  | { type: 'new' | 'del'; kind: 'fdb'; fdb: FdbEntry };

/** What an entry watch yields: 'overrun' means the kernel dropped notifications, so re-check the state. */
export type EntryWatchEvent = EntryEvent | { type: 'overrun' };
