// A read-only model of the node's netfilter rules (iptables-save and nft -j, parsed beside this file) and the verdict a
// NEW packet would get at one hook: which base chains run, in which order, and which rule or policy decides.
import { IPv4Net, parseIPv4, type IPv4 } from '../ip/ipv4.ts';
import { IPv6Net, parseIPv6, type IPv6 } from '../ip/ipv6.ts';

export type NfHook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
/** ip chains see IPv4 packets, ip6 chains IPv6 ones, inet chains both. */
export type NfFamily = 'ip' | 'ip6' | 'inet';
export type NfSource = 'iptables' | 'nftables';
export type NfProto = 'udp' | 'tcp' | 'icmp' | 'icmpv6';
export type NfNet = IPv4Net | IPv6Net;

/** A packet that opens a connection (conntrack state NEW); a field left out makes the rules testing it undecidable. */
export interface NfPacket {
  family: 4 | 6;
  src: string;
  dst: string;
  proto?: NfProto;
  dport?: number;
  iif?: string;
  oif?: string;
}

/** An interface name as a rule gives it; `prefix` for `cni+` (iptables) and `"cni*"` (nft): every name it starts. */
export interface NfIfName {
  name: string;
  prefix: boolean;
}

export interface NfPortRange {
  from: number;
  to: number;
}

/** One condition of a rule; it holds when the packet's field is one of the values (none of them when negated). */
export type NfMatch =
  | { on: 'family'; family: 4 | 6; negate: boolean }
  | { on: 'src' | 'dst'; nets: NfNet[]; negate: boolean }
  | { on: 'iif' | 'oif'; names: NfIfName[]; negate: boolean }
  /** Protocol names as the rule has them (`sctp` too): only the NfProto ones can equal a packet's. */
  | { on: 'proto'; protos: string[]; negate: boolean }
  | { on: 'dport'; ports: NfPortRange[]; negate: boolean }
  /** Lower-case conntrack states (`new`, `established` …). */
  | { on: 'ctstate'; states: string[]; negate: boolean }
  /** Something the model cannot decide on a packet (ipset, mark, addrtype, xt …): `what` names it. */
  | { on: 'unknown'; what: string };

/** What a matching rule does; `continue` is every non-terminal statement (LOG, MARK, counter, log, NAT …). */
export type NfRuleVerdict =
  | { type: 'accept' | 'drop' | 'reject' | 'return' | 'continue' }
  | { type: 'jump' | 'goto'; chain: string };

export interface NfRule {
  /** The rule as its lister prints it (the evidence a check quotes). */
  text: string;
  matches: NfMatch[];
  verdict: NfRuleVerdict;
  packets?: number;
}

export interface NfChain {
  source: NfSource;
  family: NfFamily;
  table: string;
  name: string;
  /** Set on base chains only; rules reach the other chains by jump or goto. */
  hook?: NfHook;
  priority?: number;
  type?: string;
  policy?: 'accept' | 'drop';
  rules: NfRule[];
  policyPackets?: number;
}

export type NfFinal = 'accept' | 'drop' | 'reject';

/** Where a decision was made: a rule (text, 1-based index in its chain) or, without them, the chain's policy. */
export interface NfRuleRef {
  source: NfSource;
  family: NfFamily;
  table: string;
  chain: string;
  rule?: string;
  index?: number;
  packets?: number;
}

/** How one base chain ended. */
export interface NfDecision {
  verdict: NfFinal;
  by: NfRuleRef;
  policy: boolean;
}

export interface NfVerdict {
  verdict: NfFinal;
  /** The decision that ended the walk (the last base chain's when all accepted); absent: no base chain at the hook. */
  by?: NfRuleRef;
  policy?: boolean;
  /** Texts of rules that could not be decided on this packet and were taken as not matching. */
  uncertain: string[];
  /** Every base chain that ran, in order (what a trace shows as the hook's steps). */
  decisions: NfDecision[];
}

/** Malformed lister output; `code` tells it from a failed command. */
export class NetfilterParseError extends Error {
  readonly code = 'EBADRULESET';
  constructor(message: string) {
    super(message);
    this.name = 'NetfilterParseError';
  }
}

/** Jumps nest at most this deep; deeper (a loop) counts as undecidable rather than overflowing the stack. */
const MAX_DEPTH = 16;

const PROTO_NAMES: Record<string, NfProto> = {
  udp: 'udp',
  tcp: 'tcp',
  icmp: 'icmp',
  icmpv6: 'icmpv6',
  'ipv6-icmp': 'icmpv6',
  '17': 'udp',
  '6': 'tcp',
  '1': 'icmp',
  '58': 'icmpv6',
};

/** A protocol name or number as iptables or nft print it, in the packet's vocabulary when it is one of ours. */
export function protoName(word: string | number): string {
  const w = String(word).toLowerCase();
  return PROTO_NAMES[w] ?? w;
}

/** An address (a host) or a CIDR of either family; undefined when it is neither. */
export function netOf(text: string): NfNet | undefined {
  const v6 = text.includes(':');
  const cidr = text.includes('/') ? text : `${text}/${v6 ? 128 : 32}`;
  try {
    return v6 ? IPv6Net.parse(cidr) : IPv4Net.parse(cidr);
  } catch {
    return undefined;
  }
}

interface Walk {
  chains: Map<string, NfChain>;
  packet: NfPacket;
  src: IPv4 | IPv6;
  dst: IPv4 | IPv6;
  uncertain: Set<string>;
}

const chainKey = (c: { source: string; family: string; table: string }, name: string) =>
  `${c.source} ${c.family} ${c.table} ${name}`;

function address(family: 4 | 6, text: string): IPv4 | IPv6 {
  return family === 4 ? parseIPv4(text) : parseIPv6(text);
}

function inNet(net: NfNet, ip: IPv4 | IPv6): boolean {
  if (net instanceof IPv4Net) return typeof ip === 'number' && net.contains(ip);
  return typeof ip === 'bigint' && net.contains(ip);
}

function nameMatches(n: NfIfName, name: string): boolean {
  return n.prefix ? name.startsWith(n.name) : name === n.name;
}

/** Whether the packet's field is among the match's values; undefined when the packet does not say. */
function valueMatches(m: Exclude<NfMatch, { on: 'unknown' }>, w: Walk): boolean | undefined {
  const p = w.packet;
  switch (m.on) {
    case 'family':
      return p.family === m.family;
    case 'src':
    case 'dst':
      return m.nets.some((n) => inNet(n, w[m.on]));
    case 'iif':
    case 'oif': {
      const name = p[m.on];
      return name === undefined ? undefined : m.names.some((n) => nameMatches(n, name));
    }
    case 'proto':
      return p.proto === undefined ? undefined : m.protos.includes(p.proto);
    case 'dport':
      return portMatches(m.ports, p);
    case 'ctstate':
      return m.states.includes('new');
  }
}

const hasPorts = (proto: NfProto) => proto === 'udp' || proto === 'tcp';

function portMatches(ports: NfPortRange[], p: NfPacket): boolean | undefined {
  if (p.proto === undefined || p.dport === undefined) return undefined;
  const port = p.dport;
  return ports.some((r) => r.from <= port && port <= r.to);
}

function matchHolds(m: NfMatch, w: Walk): boolean | undefined {
  if (m.on === 'unknown') return undefined;
  // A port match implies a protocol with ports: an ICMP packet fails it, negated or not.
  if (m.on === 'dport' && w.packet.proto !== undefined && !hasPorts(w.packet.proto)) return false;
  const v = valueMatches(m, w);
  if (v === undefined) return undefined;
  return m.negate ? !v : v;
}

/** A rule applies when every match holds; one that fails decides even next to an undecidable one. */
function ruleApplies(rule: NfRule, w: Walk): boolean {
  const results = rule.matches.map((m) => matchHolds(m, w));
  if (results.includes(false)) return false;
  if (!results.includes(undefined)) return true;
  // An undecidable rule that only logs or marks cannot change the verdict: not worth reporting.
  if (rule.verdict.type !== 'continue') w.uncertain.add(rule.text);
  return false;
}

function ruleRef(chain: NfChain, rule: NfRule, index: number): NfRuleRef {
  const ref: NfRuleRef = { source: chain.source, family: chain.family, table: chain.table, chain: chain.name };
  ref.rule = rule.text;
  ref.index = index + 1;
  if (rule.packets !== undefined) ref.packets = rule.packets;
  return ref;
}

function policyRef(chain: NfChain): NfRuleRef {
  const ref: NfRuleRef = { source: chain.source, family: chain.family, table: chain.table, chain: chain.name };
  if (chain.policyPackets !== undefined) ref.packets = chain.policyPackets;
  return ref;
}

type Terminal = { verdict: NfFinal; by: NfRuleRef };

/** Runs a chain's rules; undefined when it returns or falls through (to the caller, or the base chain's policy). */
function runChain(chain: NfChain, w: Walk, depth: number): Terminal | undefined {
  for (const [i, rule] of chain.rules.entries()) {
    if (!ruleApplies(rule, w)) continue;
    const v = rule.verdict;
    if (v.type === 'continue') continue;
    if (v.type === 'return') return undefined;
    if (v.type === 'jump' || v.type === 'goto') {
      const target = w.chains.get(chainKey(chain, v.chain));
      if (!target || depth >= MAX_DEPTH) {
        w.uncertain.add(rule.text);
        continue;
      }
      const t = runChain(target, w, depth + 1);
      if (t) return t;
      // goto leaves no way back: the target's return is this chain's return.
      if (v.type === 'goto') return undefined;
      continue;
    }
    return { verdict: v.type, by: ruleRef(chain, rule, i) };
  }
  return undefined;
}

function runBase(base: NfChain, w: Walk): NfDecision {
  const t = runChain(base, w, 0);
  if (t) return { ...t, policy: false };
  return { verdict: base.policy ?? 'accept', by: policyRef(base), policy: true };
}

function seesFamily(family: NfFamily, packet: 4 | 6): boolean {
  return family === 'inet' || family === (packet === 4 ? 'ip' : 'ip6');
}

/** The base chains at the hook for the packet's family, lowest priority first (ties keep the given order). */
export function baseChains(chains: readonly NfChain[], hook: NfHook, family: 4 | 6): NfChain[] {
  return chains
    .filter((c) => c.hook === hook && seesFamily(c.family, family))
    .map((c, i) => ({ c, i }))
    .sort((a, b) => (a.c.priority ?? 0) - (b.c.priority ?? 0) || a.i - b.i)
    .map(({ c }) => c);
}

function walkOf(chains: readonly NfChain[], hook: NfHook, packet: NfPacket): Walk {
  // Before routing there is no output interface yet: oifname is empty there.
  const p = hook === 'prerouting' || hook === 'input' ? { ...packet, oif: '' } : packet;
  const byKey = new Map(chains.map((c) => [chainKey(c, c.name), c]));
  const [src, dst] = [address(p.family, p.src), address(p.family, p.dst)];
  return { chains: byKey, packet: p, src, dst, uncertain: new Set() };
}

/**
 * The verdict a NEW packet gets at the hook: every base chain there runs in priority order; `accept` ends only its own
 * chain, `drop` and `reject` end the walk, so the packet passes only when every base chain accepts it.
 */
export function verdictAt(chains: readonly NfChain[], hook: NfHook, packet: NfPacket): NfVerdict {
  const w = walkOf(chains, hook, packet);
  const decisions: NfDecision[] = [];
  for (const base of baseChains(chains, hook, packet.family)) {
    const d = runBase(base, w);
    decisions.push(d);
    if (d.verdict !== 'accept') break;
  }
  const last = decisions.at(-1);
  const uncertain = [...w.uncertain];
  if (!last) return { verdict: 'accept', uncertain, decisions };
  return { verdict: last.verdict, by: last.by, policy: last.policy, uncertain, decisions };
}
