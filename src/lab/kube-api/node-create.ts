// What the fake API server accepts as a new Node (POST /api/v1/nodes) and the pod CIDR rules it shares with
// updates; pure. Mirrors the checks of the real server that matter to flannel: names, string maps, pod CIDRs.
import { isIPv4 } from '../../ip/ipv4.ts';
import { isIPv6 } from '../../ip/ipv6.ts';
import { isObject } from '../../util/json.ts';
import type { ApiNode } from './types.ts';

/** A refused body: `code` is the HTTP status the real server answers with (400 undecodable, 422 invalid). */
export class NodeCreateError extends Error {
  constructor(
    readonly code: 400 | 422 | 500,
    message: string,
  ) {
    super(message);
  }
}

const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function isCIDR(text: unknown): boolean {
  if (typeof text !== 'string') return false;
  const m = /^(.+)\/(\d{1,3})$/.exec(text);
  if (!m) return false;
  const bits = Number(m[2]);
  return (isIPv4(m[1]!) && bits <= 32) || (isIPv6(m[1]!) && bits <= 128);
}

/** The pod CIDR fields made consistent (podCIDR = podCIDRs[0]), or the reason they are invalid. */
export function normalizePodCIDRs(spec: Record<string, unknown>): string | null {
  const one = spec.podCIDR;
  const list = spec.podCIDRs;
  if (one !== undefined && one !== '' && !isCIDR(one))
    return `spec.podCIDR: Invalid value: ${JSON.stringify(one)}: must be a valid CIDR, e.g. 10.244.1.0/24`;
  if (list !== undefined && (!Array.isArray(list) || list.some((c) => !isCIDR(c)))) {
    return `spec.podCIDRs: Invalid value: ${JSON.stringify(list)}: must be a list of valid CIDRs`;
  }
  const cidrs = (list as string[] | undefined) ?? (one ? [one as string] : []);
  if (cidrs.length > 2) return `spec.podCIDRs: Too many: ${cidrs.length}: must have at most 2 items`;
  if (cidrs.length === 2 && cidrs[0]!.includes(':') === cidrs[1]!.includes(':'))
    return 'spec.podCIDRs: Invalid value: may specify no more than one CIDR for each IP family';
  if (one && cidrs.length > 0 && one !== cidrs[0])
    return `spec.podCIDRs[0]: Invalid value: ${JSON.stringify(cidrs[0])}: must match spec.podCIDR ${JSON.stringify(one)}`;
  if (cidrs.length > 0) {
    spec.podCIDR = cidrs[0];
    spec.podCIDRs = [...cidrs];
  }
  return null;
}

/** Why an update's pod CIDRs are refused: once set they may not change (only "" → a CIDR is allowed). */
export function podCIDRChange(before: Record<string, unknown>, after: Record<string, unknown>): string | null {
  const was = (before.podCIDRs as string[] | undefined) ?? [];
  const now = (after.podCIDRs as string[] | undefined) ?? [];
  if (was.length === 0 || JSON.stringify(was) === JSON.stringify(now)) return null;
  return 'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid';
}

/** Where and why `v` (metadata.annotations or .labels, when given) is not a map of strings; undefined when it is. */
export function stringMapProblem(v: unknown, what: string): { at: string; problem: string } | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) return { at: what, problem: 'must be a map of strings' };
  for (const [k, x] of Object.entries(v))
    if (typeof x !== 'string') return { at: `${what}.${k}`, problem: `must be a string, got ${JSON.stringify(x)}` };
  return undefined;
}

/** The node to store for a POST body (uid, creationTimestamp and resourceVersion are the server's to set). */
export function validateNewNode(body: unknown): ApiNode {
  if (!isObject(body)) throw new NodeCreateError(400, 'the request body must be a JSON object (a v1 Node)');
  if (body.kind !== undefined && body.kind !== 'Node')
    throw new NodeCreateError(
      400,
      `the kind in the data (${String(body.kind)}) does not match the expected kind (Node)`,
    );
  if (body.apiVersion !== undefined && body.apiVersion !== 'v1') {
    throw new NodeCreateError(
      400,
      `the API version in the data (${String(body.apiVersion)}) does not match the expected API version (v1)`,
    );
  }
  const meta = isObject(body.metadata) ? structuredClone(body.metadata) : {};
  const name = meta.name;
  const invalid = (what: string) =>
    new NodeCreateError(422, `Node "${typeof name === 'string' ? name : ''}" is invalid: ${what}`);
  if (name === undefined || name === '')
    throw invalid('metadata.name: Required value: name or generateName is required');
  if (typeof name !== 'string' || name.length > 253 || !NAME_RE.test(name)) {
    throw invalid(
      `metadata.name: Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`,
    );
  }
  if (meta.resourceVersion !== undefined && meta.resourceVersion !== '') {
    throw new NodeCreateError(500, 'resourceVersion should not be set on objects to be created');
  }
  for (const [v, what] of [
    [meta.annotations, 'metadata.annotations'],
    [meta.labels, 'metadata.labels'],
  ] as const) {
    const bad = stringMapProblem(v, what);
    if (bad) throw invalid(`${bad.at}: Invalid value: ${bad.problem}`);
  }
  const spec = isObject(body.spec) ? structuredClone(body.spec) : {};
  const bad = normalizePodCIDRs(spec);
  if (bad) throw invalid(bad);
  delete meta.uid;
  delete meta.creationTimestamp;
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { ...meta, name, resourceVersion: '', uid: '', creationTimestamp: '' },
    spec,
    status: isObject(body.status) ? structuredClone(body.status) : {},
  };
}
