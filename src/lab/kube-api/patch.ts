// JSON merge patch (RFC 7386) and the strategic-merge subset flannel uses (status.conditions merged by `type`),
// plus what the nodes and nodes/status endpoints let a patch change; pure.
import { isObject } from '../../util/json.ts';
import { stringMapProblem } from './node-create.ts';

export type PatchType = 'merge' | 'strategic';

export class PatchError extends Error {}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Lists that strategic merge combines by a key instead of replacing (Node's patchMergeKey tags). */
const MERGE_KEYS: Record<string, string> = {
  'status.conditions': 'type',
  'status.addresses': 'type',
};

function mergeList(cur: Json[], patch: Json[], key: string, path: string): Json[] {
  const out = cur.map((x) => structuredClone(x));
  for (const item of patch) {
    if (!isObject<Json>(item) || typeof item[key] !== 'string')
      throw new PatchError(`${path}: every element needs a string "${key}"`);
    const i = out.findIndex((x) => isObject<Json>(x) && x[key] === item[key]);
    if (item.$patch === 'delete') {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) out[i] = merge(out[i]!, item, 'strategic', `${path}[${key}=${item[key]}]`);
    else out.push(merge({}, item, 'strategic', path));
  }
  return out;
}

function merge(cur: Json, patch: Json, type: PatchType, path: string): Json {
  if (!isObject<Json>(patch)) return structuredClone(patch);
  const out: Record<string, Json> = isObject<Json>(cur) ? structuredClone(cur) : {};
  for (const [k, v] of Object.entries(patch)) {
    const p = path ? `${path}.${k}` : k;
    if (v === null) delete out[k];
    else if (type === 'strategic' && MERGE_KEYS[p] && Array.isArray(v))
      out[k] = mergeList(Array.isArray(out[k]) ? (out[k] as Json[]) : [], v, MERGE_KEYS[p]!, p);
    else out[k] = merge(out[k] ?? null, v, type, p);
  }
  return out;
}

function checkStringMap(v: unknown, what: string): void {
  const bad = stringMapProblem(v, what);
  if (bad) throw new PatchError(bad.at === what ? `${what} ${bad.problem}` : `${bad.at}: ${bad.problem}`);
}

/**
 * The node after `patch`. The status subresource keeps the spec; the main resource keeps the status (as the real
 * API server's node strategies do). Name and uid cannot change.
 */
export function applyPatch<T extends { metadata: { name: string; uid?: string }; spec?: unknown; status?: unknown }>(
  node: T,
  patch: unknown,
  type: PatchType,
  subresource: 'status' | '',
): T {
  if (!isObject<Json>(patch)) throw new PatchError('a patch must be a JSON object');
  const next = merge(node as unknown as Json, patch, type, '') as unknown as T;
  if (
    !isObject<Json>(next.metadata) ||
    next.metadata.name !== node.metadata.name ||
    next.metadata.uid !== node.metadata.uid
  ) {
    throw new PatchError('metadata.name and metadata.uid cannot be changed');
  }
  const meta = next.metadata as unknown as Record<string, unknown>;
  checkStringMap(meta.annotations, 'metadata.annotations');
  checkStringMap(meta.labels, 'metadata.labels');
  if (subresource === 'status') next.spec = structuredClone(node.spec);
  else next.status = structuredClone(node.status);
  return next;
}
