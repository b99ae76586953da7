// Reads `nft -j list ruleset` into the netfilter model; no I/O. Rules render roughly as `nft list` prints them.
import { isObject } from '../util/json.ts';
import {
  NetfilterParseError,
  netOf,
  protoName,
  type NfChain,
  type NfFamily,
  type NfHook,
  type NfIfName,
  type NfMatch,
  type NfNet,
  type NfPortRange,
  type NfRule,
  type NfRuleVerdict,
} from './netfilter.ts';

type Json = unknown;

/**
 * The tables iptables-nft creates show up in `nft -j` too, as `xt` expressions nft cannot decide on; iptables-save
 * reads them exactly, so they come from there and are skipped here.
 */
const IPTABLES_TABLES = new Set(['filter', 'nat', 'mangle', 'raw', 'security']);
/** bridge, arp and netdev hooks are not the IP stack's input and forward: only these families are kept. */
const FAMILIES = new Set<NfFamily>(['ip', 'ip6', 'inet']);
const HOOKS = new Set<string>(['prerouting', 'input', 'forward', 'output', 'postrouting']);
/** Statements that act on the packet and go on to the next one (the verdict is somebody else's). */
const ACTIONS = new Set(['counter', 'log', 'mangle', 'masquerade', 'snat', 'dnat', 'redirect', 'notrack']);
/** `tcp dport < 1024` and friends, as ranges. */
const COMPARISONS: Record<string, (n: number) => [number, number]> = {
  '<': (n) => [0, n - 1],
  '<=': (n) => [0, n],
  '>': (n) => [n + 1, 65535],
  '>=': (n) => [n, 65535],
};

const unknown = (what: string): NfMatch => ({ on: 'unknown', what });

/** The values a match compares with: one, or the members of an anonymous set; undefined for a named set (`@x`). */
function values(right: Json): Json[] | undefined {
  if (typeof right === 'string' && right.startsWith('@')) return undefined;
  if (Array.isArray(right)) return right;
  if (isObject(right) && Array.isArray(right.set)) return right.set;
  return [right];
}

function netValue(v: Json): NfNet | undefined {
  if (typeof v === 'string') return netOf(v);
  if (isObject(v) && isObject(v.prefix)) return netOf(`${String(v.prefix.addr)}/${String(v.prefix.len)}`);
  return undefined;
}

function portValue(v: Json): NfPortRange | undefined {
  if (typeof v === 'number') return { from: v, to: v };
  const r = isObject(v) ? v.range : undefined;
  if (Array.isArray(r) && typeof r[0] === 'number' && typeof r[1] === 'number') return { from: r[0], to: r[1] };
  return undefined;
}

/** nft's wildcard is a trailing `*`; an escaped `\*` is a literal star. */
function ifNameValue(v: Json): NfIfName | undefined {
  if (typeof v !== 'string') return undefined;
  const prefix = v.endsWith('*') && !v.endsWith('\\*');
  return { name: (prefix ? v.slice(0, -1) : v).replace(/\\(.)/g, '$1'), prefix };
}

/** Every value converted, or undefined when one of them cannot be. */
function all<T>(vs: Json[], convert: (v: Json) => T | undefined): T[] | undefined {
  const out = vs.map(convert);
  return out.every((x) => x !== undefined) ? (out as T[]) : undefined;
}

/** `ip saddr` and `udp dport` also test the family or protocol they read: that part holds even for a named set. */
function payloadMatches(payload: Record<string, Json>, vs: Json[] | undefined, negate: boolean): NfMatch[] {
  const { protocol, field } = payload;
  const what = unknown(`${String(protocol)} ${String(field)}${vs ? '' : ' in a named set'}`);
  if ((protocol === 'ip' || protocol === 'ip6') && (field === 'saddr' || field === 'daddr')) {
    // `ip saddr` in an inet chain tests IPv4 packets only.
    const family: NfMatch = { on: 'family', family: protocol === 'ip' ? 4 : 6, negate: false };
    const nets = vs && all(vs, netValue);
    return [family, nets ? { on: field === 'saddr' ? 'src' : 'dst', nets, negate } : what];
  }
  if ((protocol === 'udp' || protocol === 'tcp' || protocol === 'th') && field === 'dport') {
    const ports = vs && all(vs, portValue);
    const dport: NfMatch = ports ? { on: 'dport', ports, negate } : what;
    return protocol === 'th' ? [dport] : [{ on: 'proto', protos: [protocol], negate: false }, dport];
  }
  return [what];
}

function metaMatch(key: Json, vs: Json[], negate: boolean): NfMatch {
  if (key === 'l4proto') {
    const protos = all(vs, (v) => (typeof v === 'string' || typeof v === 'number' ? protoName(v) : undefined));
    return protos ? { on: 'proto', protos, negate } : unknown('meta l4proto');
  }
  if (key === 'nfproto' && vs.length === 1 && (vs[0] === 'ipv4' || vs[0] === 'ipv6')) {
    return { on: 'family', family: vs[0] === 'ipv4' ? 4 : 6, negate };
  }
  if (key === 'iifname' || key === 'oifname' || key === 'iif' || key === 'oif') {
    const names = all(vs, ifNameValue);
    return names ? { on: key.startsWith('i') ? 'iif' : 'oif', names, negate } : unknown(`meta ${key}`);
  }
  return unknown(`meta ${String(key)}`);
}

function matchesOf(m: Record<string, Json>): NfMatch[] {
  let { op, right } = m;
  const { left } = m;
  const compare = typeof op === 'string' ? COMPARISONS[op] : undefined;
  if (compare && typeof right === 'number') [op, right] = ['==', { range: compare(right) }];
  if (op !== '==' && op !== '!=' && op !== 'in') return [unknown(`match op ${String(op)}`)];
  const vs = values(right);
  const negate = op === '!=';
  if (isObject(left) && isObject(left.payload)) return payloadMatches(left.payload, vs, negate);
  if (!vs) return [unknown(`named set ${String(right)}`)];
  if (isObject(left) && isObject(left.meta)) return [metaMatch(left.meta.key, vs, negate)];
  if (isObject(left) && isObject(left.ct) && left.ct.key === 'state') {
    const states = all(vs, (v) => (typeof v === 'string' ? v.toLowerCase() : undefined));
    return [states ? { on: 'ctstate', states, negate } : unknown('ct state')];
  }
  return [unknown(`match ${JSON.stringify(left)}`)];
}

function verdictOf(key: string, value: Json): NfRuleVerdict | undefined {
  if ((key === 'accept' || key === 'drop' || key === 'return' || key === 'continue') && value === null) {
    return { type: key };
  }
  if (key === 'reject') return { type: 'reject' };
  if ((key === 'jump' || key === 'goto') && isObject(value) && typeof value.target === 'string') {
    return { type: key, chain: value.target };
  }
  return undefined;
}

// ---- rendering, roughly as `nft list` prints a rule ----

function renderLeft(left: Json): string {
  if (isObject(left) && isObject(left.payload)) return `${String(left.payload.protocol)} ${String(left.payload.field)}`;
  if (isObject(left) && isObject(left.meta)) {
    const key = String(left.meta.key);
    return /^[io]if(name)?$/.test(key) ? key : `meta ${key}`;
  }
  if (isObject(left) && isObject(left.ct)) return `ct ${String(left.ct.key)}`;
  return JSON.stringify(left);
}

function renderValue(v: Json, quoted: boolean): string {
  if (typeof v === 'string') return quoted ? `"${v}"` : v;
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return v.map((x) => renderValue(x, quoted)).join(',');
  if (isObject(v) && isObject(v.prefix)) return `${String(v.prefix.addr)}/${String(v.prefix.len)}`;
  if (isObject(v) && Array.isArray(v.range)) return v.range.map((x) => renderValue(x, quoted)).join('-');
  if (isObject(v) && Array.isArray(v.set)) return `{ ${v.set.map((x) => renderValue(x, quoted)).join(', ')} }`;
  return JSON.stringify(v);
}

function renderMatch(m: Record<string, Json>): string {
  const left = renderLeft(m.left);
  const op = m.op === '==' || m.op === 'in' ? '' : `${String(m.op)} `;
  return `${left} ${op}${renderValue(m.right, /^[io]if(name)?$/.test(left))}`;
}

function renderStatement(key: string, value: Json): string {
  if (key === 'match' && isObject(value)) return renderMatch(value);
  if (value === null) return key;
  if (key === 'counter' && isObject(value)) {
    return `counter packets ${String(value.packets)} bytes ${String(value.bytes)}`;
  }
  if ((key === 'jump' || key === 'goto') && isObject(value)) return `${key} ${String(value.target)}`;
  if (key === 'log' && isObject(value) && typeof value.prefix === 'string') return `log prefix "${value.prefix}"`;
  if (key === 'reject' && isObject(value)) {
    const how = [value.type, value.expr].filter((x) => typeof x === 'string').join(' ');
    return how ? `reject with ${how}` : 'reject';
  }
  if (key === 'xt' && isObject(value)) return `xt ${String(value.type)} "${String(value.name)}"`;
  // Newer nft versions list masquerade flags as an array, older ones as a single string.
  if (key === 'masquerade' && isObject(value) && value.flags !== undefined) return [key, value.flags].flat().join(' ');
  return `${key} ${JSON.stringify(value)}`;
}

// ---- entries ----

function ruleOf(rule: Record<string, Json>, where: string): NfRule {
  if (!Array.isArray(rule.expr)) throw new NetfilterParseError(`${where}: rule has no "expr" array`);
  const out: NfRule = { text: '', matches: [], verdict: { type: 'continue' } };
  const words: string[] = [];
  for (const stmt of rule.expr as Json[]) {
    const key = isObject(stmt) ? Object.keys(stmt)[0] : undefined;
    if (!isObject(stmt) || key === undefined) throw new NetfilterParseError(`${where}: expression is not an object`);
    const value = stmt[key];
    words.push(renderStatement(key, value));
    const verdict = verdictOf(key, value);
    if (verdict) out.verdict = verdict;
    else if (key === 'match' && isObject(value)) out.matches.push(...matchesOf(value));
    else if (key === 'counter' && isObject(value) && typeof value.packets === 'number') out.packets = value.packets;
    // Anything else may be a condition (limit, quota, xt match …) the packet cannot answer.
    else if (!ACTIONS.has(key)) out.matches.push(unknown(key));
  }
  if (typeof rule.comment === 'string') words.push(`comment "${rule.comment}"`);
  out.text = words.join(' ');
  return out;
}

function chainOf(c: Record<string, Json>, family: NfFamily, table: string, name: string): NfChain {
  const chain: NfChain = { source: 'nftables', family, table, name, rules: [] };
  if (typeof c.hook === 'string' && HOOKS.has(c.hook)) chain.hook = c.hook as NfHook;
  if (typeof c.prio === 'number') chain.priority = c.prio;
  if (typeof c.type === 'string') chain.type = c.type;
  if (c.policy === 'accept' || c.policy === 'drop') chain.policy = c.policy;
  return chain;
}

/** Family, table and name of a chain or rule entry, or undefined when its table is not one this model reads. */
function place(e: Record<string, Json>, where: string, nameKey: 'name' | 'chain') {
  const { family, table } = e;
  const name = e[nameKey];
  if (typeof family !== 'string' || typeof table !== 'string' || typeof name !== 'string') {
    throw new NetfilterParseError(`${where}: needs string "family", "table", "${nameKey}"`);
  }
  if (!FAMILIES.has(family as NfFamily)) return undefined;
  if (family !== 'inet' && IPTABLES_TABLES.has(table)) return undefined;
  return { family: family as NfFamily, table, name };
}

function parseDocument(text: string): Json[] {
  let doc: Json;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new NetfilterParseError(`nft -j output is not JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc) || !Array.isArray(doc.nftables)) {
    throw new NetfilterParseError('nft -j output has no "nftables" array (is it `nft -j list ruleset`?)');
  }
  return doc.nftables as Json[];
}

/**
 * The chains of `nft -j list ruleset` in the ip, ip6 and inet families, the iptables-nft tables left out (they are
 * read from iptables-save). Throws NetfilterParseError when the text is not nft's JSON.
 */
export function parseNftRuleset(text: string): NfChain[] {
  const chains = new Map<string, NfChain>();
  for (const [i, entry] of parseDocument(text).entries()) {
    const where = `nft -j entry ${i + 1}`;
    if (!isObject(entry)) throw new NetfilterParseError(`${where}: is not an object`);
    if (isObject(entry.chain)) {
      const at = place(entry.chain, where, 'name');
      if (at) chains.set(`${at.family} ${at.table} ${at.name}`, chainOf(entry.chain, at.family, at.table, at.name));
    } else if (isObject(entry.rule)) {
      const at = place(entry.rule, where, 'chain');
      if (!at) continue;
      const key = `${at.family} ${at.table} ${at.name}`;
      // nft lists a chain before its rules; a rule of an unlisted chain still belongs to a (regular) chain.
      if (!chains.has(key)) chains.set(key, chainOf({}, at.family, at.table, at.name));
      chains.get(key)!.rules.push(ruleOf(entry.rule, where));
    }
  }
  return [...chains.values()];
}
