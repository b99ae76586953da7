// Which subnet this node should hold (spec §3.4): pure decision, the etcd manager carries it out.
import type { NetworkConfig } from '../config/network-config.ts';
import { formatIPv4, IPv4Net, type IPv4 } from '../ip/ipv4.ts';
import { formatIPv6, IPv6Net, type IPv6 } from '../ip/ipv6.ts';
import type { Lease } from './lease.ts';

/** Upstream picks at random among at most this many free subnets (the lowest ones). */
export const MAX_CANDIDATES = 100;

export interface IPv6AllocationRange {
  subnetLen: number;
  subnetMin: IPv6;
  subnetMax: IPv6;
}

export interface AllocationRange {
  subnetLen: number;
  subnetMin: IPv4;
  subnetMax: IPv4;
  /** Present in dual stack (EnableIPv6); leases then carry a v6 subnet too. */
  ipv6?: IPv6AllocationRange;
}

/** The range of a validated etcd-mode config; errors when validation defaults were not applied. */
export function allocationRange(config: NetworkConfig): AllocationRange {
  if (!config.enableIPv4 || !config.network) {
    throw new Error('network config has no IPv4 Network: the etcd subnet manager needs "Network" (IPv6-only is not supported yet)');
  }
  if (config.subnetMin === undefined || config.subnetMax === undefined) {
    throw new Error('network config has no SubnetMin/SubnetMax: parse it with { validate: true } in etcd mode');
  }
  const range: AllocationRange = { subnetLen: config.subnetLen, subnetMin: config.subnetMin, subnetMax: config.subnetMax };
  if (config.enableIPv6) {
    if (!config.ipv6Network || config.ipv6SubnetMin === undefined || config.ipv6SubnetMax === undefined || !config.ipv6SubnetLen) {
      throw new Error('network config has no IPv6SubnetLen/IPv6SubnetMin/IPv6SubnetMax: parse it with { validate: true } in etcd mode');
    }
    range.ipv6 = { subnetLen: config.ipv6SubnetLen, subnetMin: config.ipv6SubnetMin, subnetMax: config.ipv6SubnetMax };
  }
  return range;
}

/** A lease fits the config when it has SubnetLen and lies within [SubnetMin, SubnetMax]. */
export function isCompatible(subnet: IPv4Net, range: AllocationRange): boolean {
  return subnet.prefix === range.subnetLen && subnet.ip >= range.subnetMin && subnet.ip <= range.subnetMax;
}

/** The v6 half fits: inside the IPv6 limits with IPv6SubnetLen, or absent when IPv6 is disabled. */
export function isCompatibleV6(ipv6Subnet: IPv6Net | undefined, range: AllocationRange): boolean {
  const r = range.ipv6;
  if (!r) return ipv6Subnet === undefined;
  return ipv6Subnet !== undefined && ipv6Subnet.prefix === r.subnetLen && ipv6Subnet.ip >= r.subnetMin && ipv6Subnet.ip <= r.subnetMax;
}

/** Both halves of a lease fit the config. */
export function isLeaseCompatible(lease: Pick<Lease, 'subnet' | 'ipv6Subnet'>, range: AllocationRange): boolean {
  return isCompatible(lease.subnet, range) && isCompatibleV6(lease.ipv6Subnet, range);
}

export class OutOfSubnetsError extends Error {
  readonly code = 'EOUTOFSUBNETS';
  constructor(range: AllocationRange, family: 4 | 6 = 4) {
    const r = range.ipv6;
    super(
      family === 6 && r
        ? `out of subnets: every /${r.subnetLen} in ${formatIPv6(r.subnetMin)} ... ${formatIPv6(r.subnetMax)} is leased ` +
            '(delete stale leases under <prefix>/subnets/ or widen IPv6Network/IPv6SubnetMin/IPv6SubnetMax)'
        : `out of subnets: every /${range.subnetLen} in ${formatIPv4(range.subnetMin)} ... ${formatIPv4(range.subnetMax)} is leased ` +
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

/** The v6 counterpart of freeCandidates: same walk, bigint steps. */
export function freeCandidatesV6(range: IPv6AllocationRange, taken: IPv6Net[], max = MAX_CANDIDATES): IPv6Net[] {
  const same = new Set<bigint>();
  const other: IPv6Net[] = [];
  for (const t of taken) {
    if (t.prefix === range.subnetLen) same.add(t.ip);
    else other.push(t);
  }
  const step = 1n << BigInt(128 - range.subnetLen);
  const out: IPv6Net[] = [];
  for (let ip = range.subnetMin; ip <= range.subnetMax && out.length < max; ip += step) {
    const s = new IPv6Net(ip, range.subnetLen);
    if (!same.has(s.ip) && !other.some((o) => o.overlaps(s))) out.push(s);
  }
  return out;
}

function pick<T>(candidates: T[], random: () => number): T {
  return candidates[Math.min(candidates.length - 1, Math.floor(random() * candidates.length))]!;
}

export type AllocationDecision =
  /** Rewrite this lease with our attrs (it carries our PublicIP and fits the config). */
  | { kind: 'reuse'; lease: Lease; remove: Lease[] }
  /** Create this subnet transactionally. */
  | { kind: 'create'; subnet: IPv4Net; ipv6Subnet?: IPv6Net; source: 'previous' | 'random'; remove: Lease[]; candidates: number };

export interface AllocationInput {
  range: AllocationRange;
  /** All current leases of the cluster. */
  leases: Lease[];
  /** This node's external IPv4 (dotted). */
  publicIP: string;
  /** From subnet.env's FLANNEL_SUBNET, normalised to its network. */
  previousSubnet?: IPv4Net;
  /** From subnet.env's FLANNEL_IPV6_SUBNET, normalised (dual stack only). */
  previousIPv6Subnet?: IPv6Net;
  /** Uniform in [0, 1); injectable for tests. */
  random?: () => number;
}

/**
 * §3.4: reuse the lease that carries our PublicIP if it fits (incompatible ones go into `remove`), else the previous
 * subnet when nobody holds it and it fits, else a random one of the lowest 100 free subnets. Dual stack picks the v6
 * subnet the same way, independently (the previous v6 subnet when it is free and fits, else at random).
 * Throws OutOfSubnetsError.
 */
export function decideAllocation(input: AllocationInput): AllocationDecision {
  const { range, publicIP } = input;
  const random = input.random ?? Math.random;
  const remove: Lease[] = [];
  for (const l of input.leases) {
    if (l.attrs.publicIP !== publicIP) continue;
    if (isLeaseCompatible(l, range)) return { kind: 'reuse', lease: l, remove };
    remove.push(l);
  }
  const kept = input.leases.filter((l) => !remove.includes(l));
  const taken = kept.map((l) => l.subnet);
  const prev = input.previousSubnet;
  let decision: AllocationDecision;
  if (prev && isCompatible(prev, range) && !taken.some((t) => t.overlaps(prev))) {
    decision = { kind: 'create', subnet: prev, source: 'previous', remove, candidates: 1 };
  } else {
    const candidates = freeCandidates(range, taken);
    if (candidates.length === 0) throw new OutOfSubnetsError(range);
    decision = { kind: 'create', subnet: pick(candidates, random), source: 'random', remove, candidates: candidates.length };
  }
  if (range.ipv6) decision.ipv6Subnet = decideIPv6(range, kept, input.previousIPv6Subnet, random);
  return decision;
}

function decideIPv6(range: AllocationRange, kept: Lease[], prev: IPv6Net | undefined, random: () => number): IPv6Net {
  const taken = kept.flatMap((l) => (l.ipv6Subnet ? [l.ipv6Subnet] : []));
  if (prev && isCompatibleV6(prev, range) && !taken.some((t) => t.overlaps(prev))) return prev;
  const candidates = freeCandidatesV6(range.ipv6!, taken);
  if (candidates.length === 0) throw new OutOfSubnetsError(range, 6);
  return pick(candidates, random);
}
