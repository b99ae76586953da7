// Reads `nft -j list chain …` back into the text form of ruleset.ts, so the resync compares like with like.
import { isObject } from '../../util/json.ts';
import type { NftChain } from './ruleset.ts';

/** A chain as the kernel holds it: base-chain settings and rules rendered as `nft list` would print them. */
export interface ListedChain {
  type?: string;
  hook?: string;
  prio?: number;
  policy?: string;
  rules: string[];
}

type Json = unknown;

/** Anything outside the handful of expressions flannel writes renders as `?{json}`, which never matches a wanted rule. */
function unknown(v: Json): string {
  return `?${JSON.stringify(v)}`;
}

function renderLeft(left: Json): string {
  if (isObject(left) && isObject(left.payload)) return `${String(left.payload.protocol)} ${String(left.payload.field)}`;
  if (isObject(left) && isObject(left.meta)) return `meta ${String(left.meta.key)}`;
  return unknown(left);
}

function renderRight(right: Json, left: string): string {
  if (typeof right === 'string') return right;
  if (typeof right === 'number')
    return left === 'meta mark' ? `0x${right.toString(16).padStart(8, '0')}` : String(right);
  if (isObject(right) && isObject(right.prefix)) return `${String(right.prefix.addr)}/${String(right.prefix.len)}`;
  return unknown(right);
}

function renderStatement(st: Json): string {
  if (!isObject(st)) return unknown(st);
  if (isObject(st.match)) {
    const { op, left, right } = st.match;
    const l = renderLeft(left);
    // `nft list` leaves out the implicit `==`.
    const o = op === '==' ? '' : `${String(op)} `;
    return `${l} ${o}${renderRight(right, l)}`;
  }
  for (const verdict of ['accept', 'drop', 'return', 'continue'])
    if (verdict in st && st[verdict] === null) return verdict;
  if ('masquerade' in st) {
    const m = st.masquerade;
    if (m === null) return 'masquerade';
    // Newer nft versions list flags as an array, older ones as a single string.
    if (isObject(m) && Object.keys(m).length === 1 && m.flags !== undefined) {
      const flags = Array.isArray(m.flags) ? m.flags : [m.flags];
      return ['masquerade', ...flags.map(String)].join(' ');
    }
  }
  return unknown(st);
}

/** The chain from `nft -j list chain <family> <table> <name>` output; undefined when the output holds no chain. */
export function parseChainJson(text: string, chainName: string): ListedChain | undefined {
  const doc: Json = JSON.parse(text);
  if (!isObject(doc) || !Array.isArray(doc.nftables)) throw new Error('nft -j output has no "nftables" array');
  let chain: ListedChain | undefined;
  for (const entry of doc.nftables as Json[]) {
    if (!isObject(entry)) continue;
    if (isObject(entry.chain) && entry.chain.name === chainName) {
      const c = entry.chain;
      chain = {
        type: typeof c.type === 'string' ? c.type : undefined,
        hook: typeof c.hook === 'string' ? c.hook : undefined,
        prio: typeof c.prio === 'number' ? c.prio : undefined,
        policy: typeof c.policy === 'string' ? c.policy : undefined,
        rules: chain?.rules ?? [],
      };
    }
    if (isObject(entry.rule) && entry.rule.chain === chainName) {
      const exprs = Array.isArray(entry.rule.expr) ? entry.rule.expr : [];
      chain ??= { rules: [] };
      chain.rules.push(exprs.map(renderStatement).join(' '));
    }
  }
  return chain;
}

/** What differs between the wanted chain and the listed one; empty when they match (comments are not listed by -j). */
export function chainDifferences(want: NftChain, got: ListedChain | undefined): string[] {
  if (!got) return [`chain ${want.name} is missing`];
  const diffs: string[] = [];
  if (got.type !== want.type || got.hook !== want.hook || got.prio !== want.prio || got.policy !== want.policy) {
    diffs.push(`chain ${want.name} is "type ${got.type} hook ${got.hook} priority ${got.prio} policy ${got.policy}"`);
  }
  const n = Math.max(want.rules.length, got.rules.length);
  for (let i = 0; i < n; i++) {
    if (want.rules[i] === got.rules[i]) continue;
    diffs.push(
      `rule ${i + 1} of ${want.name} is ${got.rules[i] === undefined ? 'missing' : `"${got.rules[i]}"`}, want ${want.rules[i] === undefined ? 'none' : `"${want.rules[i]}"`}`,
    );
  }
  return diffs;
}
