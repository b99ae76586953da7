// Which subnet this node should hold (spec §3.4): pure decision, the etcd manager carries it out.
import type { NetworkConfig } from '../config/network-config.ts';
import { formatIPv4, IPv4Net, type IPv4 } from '../ip/ipv4.ts';
import type { Lease } from './lease.ts';

/** Upstream picks at random among at most this many free subnets (the lowest ones). */
export const MAX_CANDIDATES = 100;

export interface AllocationRange {
  subnetLen: number;
  subnetMin: IPv4;
  subnetMax: IPv4;
}

/** The range of a validated etcd-mode config; errors when validation defaults were not applied. */
export function allocationRange(config: NetworkConfig): AllocationRange {
  if (!config.enableIPv4 || !config.network) {
    throw new Error('network config has no IPv4 Network: the etcd subnet manager needs "Network" (IPv6-only is not supported yet)');
  }
  if (config.subnetMin === undefined || config.subnetMax === undefined) {
    throw new Error('network config has no SubnetMin/SubnetMax: parse it with { validate: true } in etcd mode');
  }
  return { subnetLen: config.subnetLen, subnetMin: config.subnetMin, subnetMax: config.subnetMax };
}

/** A lease fits the config when it has SubnetLen and lies within [SubnetMin, SubnetMax]. */
export function isCompatible(subnet: IPv4Net, range: AllocationRange): boolean {
  return subnet.prefix === range.subnetLen && subnet.ip >= range.subnetMin && subnet.ip <= range.subnetMax;
}

export class OutOfSubnetsError extends Error {
  readonly code = 'EOUTOFSUBNETS';
  constructor(range: AllocationRange) {
    super(
      `out of subnets: every /${range.subnetLen} in ${formatIPv4(range.subnetMin)} ... ${formatIPv4(range.subnetMax)} is leased ` +
        '(delete stale leases under <prefix>/subnets/ or widen Network/SubnetMin/SubnetMax)',
    );
  }
}

/** Occupancy test: same-size leases by address, anything else by overlap. */
function occupancy(taken: IPv4Net[], subnetLen: number): (s: IPv4Net) => boolean {
  const same = new Set<number>();
  const other: IPv4Net[] = [];
  for (const t of taken) {
    if (t.prefix === subnetLen) same.add(t.ip);
    else other.push(t);
  }
  return (s) => same.has(s.ip) || other.some((o) => o.overlaps(s));
}

/** The lowest free subnets of the range, at most `max`, walking from SubnetMin in SubnetLen steps. */
export function freeCandidates(range: AllocationRange, taken: IPv4Net[], max = MAX_CANDIDATES): IPv4Net[] {
  const isTaken = occupancy(taken, range.subnetLen);
  const step = 2 ** (32 - range.subnetLen);
  const out: IPv4Net[] = [];
  for (let ip = range.subnetMin; ip <= range.subnetMax && out.length < max; ip += step) {
    const s = new IPv4Net(ip, range.subnetLen);
    if (!isTaken(s)) out.push(s);
  }
  return out;
}

export type AllocationDecision =
  /** Rewrite this lease with our attrs (it carries our PublicIP and fits the config). */
  | { kind: 'reuse'; lease: Lease; remove: Lease[] }
  /** Create this subnet transactionally. */
  | { kind: 'create'; subnet: IPv4Net; source: 'previous' | 'random'; remove: Lease[]; candidates: number };

export interface AllocationInput {
  range: AllocationRange;
  /** All current leases of the cluster. */
  leases: Lease[];
  /** This node's external IPv4 (dotted). */
  publicIP: string;
  /** From subnet.env's FLANNEL_SUBNET, normalised to its network. */
  previousSubnet?: IPv4Net;
  /** Uniform in [0, 1); injectable for tests. */
  random?: () => number;
}

/**
 * §3.4: reuse the lease that carries our PublicIP if it fits (incompatible ones go into `remove`), else the previous
 * subnet when nobody holds it and it fits, else a random one of the lowest 100 free subnets. Throws OutOfSubnetsError.
 */
export function decideAllocation(input: AllocationInput): AllocationDecision {
  const { range, publicIP } = input;
  const remove: Lease[] = [];
  for (const l of input.leases) {
    if (l.attrs.publicIP !== publicIP) continue;
    if (isCompatible(l.subnet, range)) return { kind: 'reuse', lease: l, remove };
    remove.push(l);
  }
  const taken = input.leases.filter((l) => !remove.includes(l)).map((l) => l.subnet);
  const prev = input.previousSubnet;
  if (prev && isCompatible(prev, range) && !taken.some((t) => t.overlaps(prev))) {
    return { kind: 'create', subnet: prev, source: 'previous', remove, candidates: 1 };
  }
  const candidates = freeCandidates(range, taken);
  if (candidates.length === 0) throw new OutOfSubnetsError(range);
  const random = input.random ?? Math.random;
  const i = Math.min(candidates.length - 1, Math.floor(random() * candidates.length));
  return { kind: 'create', subnet: candidates[i]!, source: 'random', remove, candidates: candidates.length };
}
