// Which subnet this node should hold (docs/COMPATIBILITY.md, "Lease acquisition"): pure decision, the etcd manager
// carries it out.
import type { NetworkConfig } from '../config/network-config.ts';
import { formatIPv4, IPv4Net, type IPv4 } from '../ip/ipv4.ts';
import { formatIPv6, IPv6Net, type IPv6 } from '../ip/ipv6.ts';
import type { Lease } from './lease.ts';

/** Upstream picks at random among at most this many free subnets (the lowest ones). */
export const MAX_CANDIDATES = 100;

/** One family's leasable subnets: every /subnetLen from subnetMin to subnetMax. */
interface FamilyRange<A extends IPv4 | IPv6> {
  subnetLen: number;
  subnetMin: A;
  subnetMax: A;
}

export type IPv4AllocationRange = FamilyRange<IPv4>;
export type IPv6AllocationRange = FamilyRange<IPv6>;

/** What the family-independent steps need of IPv4Net and IPv6Net. */
interface Cidr<N> {
  readonly ip: IPv4 | IPv6;
  readonly prefix: number;
  overlaps(other: N): boolean;
}

/** The families a config leases: IPv4, IPv6 or both (at least one). */
export interface AllocationRange {
  /** Present when EnableIPv4. */
  ipv4?: IPv4AllocationRange;
  /** Present when EnableIPv6; leases then carry a v6 subnet. */
  ipv6?: IPv6AllocationRange;
}

/** The range of a validated etcd-mode config; errors when validation defaults were not applied. */
export function allocationRange(config: NetworkConfig): AllocationRange {
  const range: AllocationRange = {};
  if (config.enableIPv4) {
    if (!config.network || config.subnetMin === undefined || config.subnetMax === undefined) {
      throw new Error(
        'network config has no Network/SubnetMin/SubnetMax: parse it with { validate: true } in etcd mode',
      );
    }
    range.ipv4 = { subnetLen: config.subnetLen, subnetMin: config.subnetMin, subnetMax: config.subnetMax };
  }
  if (config.enableIPv6) {
    if (
      !config.ipv6Network ||
      config.ipv6SubnetMin === undefined ||
      config.ipv6SubnetMax === undefined ||
      !config.ipv6SubnetLen
    ) {
      throw new Error(
        'network config has no IPv6SubnetLen/IPv6SubnetMin/IPv6SubnetMax: parse it with { validate: true } in etcd mode',
      );
    }
    range.ipv6 = { subnetLen: config.ipv6SubnetLen, subnetMin: config.ipv6SubnetMin, subnetMax: config.ipv6SubnetMax };
  }
  if (!range.ipv4 && !range.ipv6)
    throw new Error('network config enables neither IPv4 nor IPv6: set EnableIPv4 and/or EnableIPv6');
  return range;
}

/** One family's half fits: SubnetLen and within [SubnetMin, SubnetMax], or absent when the family is disabled. */
function fits<A extends IPv4 | IPv6>(
  subnet: { ip: A; prefix: number } | undefined,
  r: FamilyRange<A> | undefined,
): boolean {
  if (!r) return subnet === undefined;
  return subnet !== undefined && subnet.prefix === r.subnetLen && subnet.ip >= r.subnetMin && subnet.ip <= r.subnetMax;
}

/** The v4 half fits (see fits). */
export function isCompatible(subnet: IPv4Net | undefined, range: AllocationRange): boolean {
  return fits(subnet, range.ipv4);
}

/** The v6 half fits: inside the IPv6 limits with IPv6SubnetLen, or absent when IPv6 is disabled. */
export function isCompatibleV6(ipv6Subnet: IPv6Net | undefined, range: AllocationRange): boolean {
  return fits(ipv6Subnet, range.ipv6);
}

/** Both halves of a lease fit the config. */
export function isLeaseCompatible(lease: Pick<Lease, 'subnet' | 'ipv6Subnet'>, range: AllocationRange): boolean {
  return isCompatible(lease.subnet, range) && isCompatibleV6(lease.ipv6Subnet, range);
}

export class OutOfSubnetsError extends Error {
  readonly code = 'EOUTOFSUBNETS';
  constructor(range: AllocationRange, family: 4 | 6 = 4) {
    const r6 = range.ipv6;
    const r4 = range.ipv4;
    super(
      family === 6 && r6
        ? `out of subnets: every /${r6.subnetLen} in ${formatIPv6(r6.subnetMin)} ... ${formatIPv6(r6.subnetMax)} is leased ` +
            '(delete stale leases under <prefix>/subnets/ or widen IPv6Network/IPv6SubnetMin/IPv6SubnetMax)'
        : `out of subnets: every /${r4?.subnetLen} in ${r4 && formatIPv4(r4.subnetMin)} ... ${r4 && formatIPv4(r4.subnetMax)} is leased ` +
            '(delete stale leases under <prefix>/subnets/ or widen Network/SubnetMin/SubnetMax)',
    );
  }
}

/** Occupancy test: same-size leases by address, anything else by overlap. */
function occupancy<N extends Cidr<N>>(taken: N[], subnetLen: number): (s: N) => boolean {
  const same = new Set<IPv4 | IPv6>();
  const other: N[] = [];
  for (const t of taken) {
    if (t.prefix === subnetLen) same.add(t.ip);
    else other.push(t);
  }
  return (s) => same.has(s.ip) || other.some((o) => o.overlaps(s));
}

/** The lowest free subnets of the range, at most `max`, walking from SubnetMin in SubnetLen steps. */
export function freeCandidates(range: IPv4AllocationRange, taken: IPv4Net[], max = MAX_CANDIDATES): IPv4Net[] {
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
  const isTaken = occupancy(taken, range.subnetLen);
  const step = 1n << BigInt(128 - range.subnetLen);
  const out: IPv6Net[] = [];
  for (let ip = range.subnetMin; ip <= range.subnetMax && out.length < max; ip += step) {
    const s = new IPv6Net(ip, range.subnetLen);
    if (!isTaken(s)) out.push(s);
  }
  return out;
}

function pick<T>(candidates: T[], random: () => number): T {
  return candidates[Math.min(candidates.length - 1, Math.floor(random() * candidates.length))]!;
}

interface FamilyChoice<N> {
  subnet: N;
  source: 'previous' | 'random';
  candidates: number;
}

/** One family's pick: the previous subnet when it fits and nobody holds it, else one of the lowest free ones. */
function chooseSubnet<N extends Cidr<N>>(
  prev: N | undefined,
  taken: N[],
  fitsRange: (s: N) => boolean,
  free: (taken: N[]) => N[],
  random: () => number,
  outOfSubnets: () => Error,
): FamilyChoice<N> {
  if (prev && fitsRange(prev) && !taken.some((t) => t.overlaps(prev)))
    return { subnet: prev, source: 'previous', candidates: 1 };
  const candidates = free(taken);
  if (candidates.length === 0) throw outOfSubnets();
  return { subnet: pick(candidates, random), source: 'random', candidates: candidates.length };
}

export type AllocationDecision =
  /** Rewrite this lease with our attrs (it carries our PublicIP and fits the config). */
  | { kind: 'reuse'; lease: Lease; remove: Lease[] }
  /** Create this subnet transactionally (`subnet` absent on an IPv6-only network). */
  | {
      kind: 'create';
      subnet?: IPv4Net;
      ipv6Subnet?: IPv6Net;
      source: 'previous' | 'random';
      remove: Lease[];
      candidates: number;
    };

export interface AllocationInput {
  range: AllocationRange;
  /** All current leases of the cluster. */
  leases: Lease[];
  /** This node's external IPv4 (dotted); leases are matched by it when the config has IPv4. */
  publicIP: string;
  /** This node's external IPv6; leases are matched by it on an IPv6-only network (PublicIP is 0.0.0.0 on every host). */
  publicIPv6?: string | null;
  /** From subnet.env's FLANNEL_SUBNET, normalised to its network. */
  previousSubnet?: IPv4Net;
  /** From subnet.env's FLANNEL_IPV6_SUBNET, normalised (dual stack only). */
  previousIPv6Subnet?: IPv6Net;
  /** Uniform in [0, 1); injectable for tests. */
  random?: () => number;
  /** Subnets that count as taken although no lease holds them: lost create races, keys holding no valid lease. */
  exclude?: Array<Pick<Lease, 'subnet' | 'ipv6Subnet'>>;
}

/**
 * As upstream: reuse the lease that carries our PublicIP if it fits (incompatible ones go into `remove`), else the
 * previous subnet when nobody holds it and it fits, else a random one of the lowest 100 free subnets. Dual stack picks
 * the v6 subnet the same way, independently (the previous v6 subnet when it is free and fits, else at random).
 * IPv6-only networks match the own lease by PublicIPv6 and pick only a v6 subnet. Throws OutOfSubnetsError.
 */
export function decideAllocation(input: AllocationInput): AllocationDecision {
  const { range } = input;
  const random = input.random ?? Math.random;
  const remove: Lease[] = [];
  const mine = range.ipv4
    ? (l: Lease) => l.attrs.publicIP === input.publicIP
    : (l: Lease) => !!input.publicIPv6 && l.attrs.publicIPv6 === input.publicIPv6;
  for (const l of input.leases) {
    if (!mine(l)) continue;
    if (isLeaseCompatible(l, range)) return { kind: 'reuse', lease: l, remove };
    remove.push(l);
  }
  const kept = [...input.leases.filter((l) => !remove.includes(l)), ...(input.exclude ?? [])];
  const decision: AllocationDecision = { kind: 'create', source: 'random', remove, candidates: 0 };
  if (range.ipv4) {
    const r4 = range.ipv4;
    const taken = kept.flatMap((l) => (l.subnet ? [l.subnet] : []));
    const fit = (s: IPv4Net) => isCompatible(s, range);
    Object.assign(
      decision,
      chooseSubnet(
        input.previousSubnet,
        taken,
        fit,
        (t) => freeCandidates(r4, t),
        random,
        () => new OutOfSubnetsError(range),
      ),
    );
  }
  if (range.ipv6) {
    const r6 = range.ipv6;
    const taken = kept.flatMap((l) => (l.ipv6Subnet ? [l.ipv6Subnet] : []));
    const fit = (s: IPv6Net) => isCompatibleV6(s, range);
    const v6 = chooseSubnet(
      input.previousIPv6Subnet,
      taken,
      fit,
      (t) => freeCandidatesV6(r6, t),
      random,
      () => new OutOfSubnetsError(range, 6),
    );
    decision.ipv6Subnet = v6.subnet;
    // IPv6-only: the v6 choice is the decision's source.
    if (!range.ipv4) Object.assign(decision, { source: v6.source, candidates: v6.candidates });
  }
  return decision;
}
