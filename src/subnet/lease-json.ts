// The etcd wire format of leases: subnet keys (`10.5.52.0-24`) and lease values (flannel's LeaseAttrs JSON).
import { IPv4Net, isIPv4 } from '../ip/ipv4.ts';
import { IPv6Net, formatIPv6, isIPv6, parseIPv6 } from '../ip/ipv6.ts';
import { goEscape } from '../util/json.ts';
import { isObject, jsonSnippet } from '../util/json.ts';
import type { LeaseAttrs } from './lease.ts';

export interface SubnetKey {
  /** Absent in an IPv6-only key (`0.0.0.0-0&<v6>-<len>`). */
  subnet?: IPv4Net;
  /** Dual stack and IPv6-only: the `&<v6>-<len>` part. */
  ipv6Subnet?: IPv6Net;
}

/**
 * The IPv4 half of an IPv6-only key. flannel's key always starts with an IPv4 part (its regex requires one) and
 * writes the zero IP4Net there when a lease has no IPv4 subnet.
 */
const NO_IPV4 = '0.0.0.0-0';

// Real flannel's regex, unescaped dots and end-only anchor included, so we accept exactly the keys it accepts.
const KEY_RE = /(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/;

/**
 * Parses the last path segment of a subnet key (`10.5.52.0-24` or `10.5.1.0-24&fc00::-64`).
 * Returns null for keys real flannel would skip ("not a subnet, skipping").
 */
export function parseSubnetKey(key: string): SubnetKey | null {
  const name = key.slice(key.lastIndexOf('/') + 1);
  const m = KEY_RE.exec(name);
  if (!m) return null;
  const prefix = Number(m[2]);
  // The constructors reject a bad address or prefix length (such keys are skipped).
  let subnet: IPv4Net;
  try {
    subnet = IPv4Net.parse(`${m[1]}/${prefix}`);
  } catch {
    return null;
  }
  // A /0 would make every host route the whole IPv4 space to one peer: only valid as the IPv6-only marker.
  if (m[3] === undefined) return prefix === 0 ? null : { subnet };
  const v6prefix = Number(m[4]);
  let ipv6Subnet: IPv6Net;
  try {
    ipv6Subnet = new IPv6Net(parseIPv6(m[3]), v6prefix);
  } catch {
    return null;
  }
  if (prefix === 0) return m[1] === '0.0.0.0' ? { ipv6Subnet } : null;
  return { subnet, ipv6Subnet };
}

/**
 * `10.5.52.0/24` → `10.5.52.0-24`; dual stack appends `&<v6>-<len>` with the v6 address in Go's canonical form;
 * IPv6-only writes `0.0.0.0-0&<v6>-<len>`.
 */
export function formatSubnetKey(subnet: IPv4Net | undefined, ipv6Subnet?: IPv6Net): string {
  const v4 = subnet ? subnet.toString().replace('/', '-') : NO_IPV4;
  if (!ipv6Subnet) {
    if (!subnet) throw new Error('a subnet key needs an IPv4 or an IPv6 subnet');
    return v4;
  }
  return `${v4}&${formatIPv6(ipv6Subnet.ip)}-${ipv6Subnet.prefix}`;
}

// Go's encoding/json escapes these even inside RawMessage; they can only occur inside JSON strings.
function rawJson(value: unknown, field: string): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new Error(`lease ${field} is not JSON-serialisable`);
  return text;
}

/**
 * The value flannel stores under a subnet key, byte for byte: fields in Go struct order, PublicIPv6 always present
 * (null when unset), BackendType omitted when "", BackendData/BackendV6Data omitted when absent.
 */
export function encodeLeaseValue(attrs: LeaseAttrs): string {
  let out = `{"PublicIP":${JSON.stringify(attrs.publicIP)},"PublicIPv6":${JSON.stringify(attrs.publicIPv6 ?? null)}`;
  if (attrs.backendType !== '') out += `,"BackendType":${JSON.stringify(attrs.backendType)}`;
  if (attrs.backendData !== undefined) out += `,"BackendData":${rawJson(attrs.backendData, 'BackendData')}`;
  if (attrs.backendV6Data !== undefined) {
    out += `,"BackendV6Data":${rawJson(attrs.backendV6Data, 'BackendV6Data')}`;
  }
  return goEscape(`${out}}`);
}

export class LeaseJsonError extends Error {
  readonly code = 'EBADLEASE';
}

/** Go's json is case-insensitive on keys; an exact match wins. */
function field(obj: Record<string, unknown>, name: string): unknown {
  if (name in obj) return obj[name];
  const lower = name.toLowerCase();
  const k = Object.keys(obj).find((key) => key.toLowerCase() === lower);
  return k === undefined ? undefined : obj[k];
}

/**
 * Parses a lease value. Tolerates OLD leases (no PublicIPv6, BackendData without VNI, no BackendType);
 * throws LeaseJsonError naming the key for anything that is not a lease object.
 */
export function decodeLeaseValue(text: string, key = 'lease'): LeaseAttrs {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new LeaseJsonError(
      `${key}: lease value is not valid JSON (${(e as Error).message}): ${jsonSnippet(text.slice(0, 200))}`,
    );
  }
  if (!isObject(obj)) {
    throw new LeaseJsonError(
      `${key}: lease value must be a JSON object like {"PublicIP":"192.168.1.2",...}, got ${jsonSnippet(text.slice(0, 200))}`,
    );
  }
  const publicIP = field(obj, 'PublicIP') ?? '0.0.0.0';
  if (typeof publicIP !== 'string' || !isIPv4(publicIP)) {
    throw new LeaseJsonError(`${key}: PublicIP must be a dotted IPv4 string, got ${jsonSnippet(publicIP)}`);
  }
  const publicIPv6 = field(obj, 'PublicIPv6') ?? null;
  if (publicIPv6 !== null && (typeof publicIPv6 !== 'string' || !isIPv6(publicIPv6))) {
    throw new LeaseJsonError(`${key}: PublicIPv6 must be an IPv6 string or null, got ${jsonSnippet(publicIPv6)}`);
  }
  const backendType = field(obj, 'BackendType') ?? '';
  if (typeof backendType !== 'string') {
    throw new LeaseJsonError(`${key}: BackendType must be a string, got ${jsonSnippet(backendType)}`);
  }
  const attrs: LeaseAttrs = { publicIP, publicIPv6, backendType };
  const data = field(obj, 'BackendData');
  if (data !== undefined) attrs.backendData = data;
  const v6data = field(obj, 'BackendV6Data');
  if (v6data !== undefined) attrs.backendV6Data = v6data;
  return attrs;
}
