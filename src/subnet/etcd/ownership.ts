// Who wrote this node's own subnet key: pure checks the renewal watch and lease acquisition act on (issue: a lease
// overwritten by hand heals; two nodes with one public IP do not silently share a subnet).
import { decodeLeaseValue, LeaseJsonError } from '../lease-json.ts';
import type { LeaseAttrs } from '../lease.ts';
import type { KeyMeta } from './registry.ts';

/** What this node last wrote to its key. */
export interface HeldLease {
  attrs: LeaseAttrs;
  /** The etcd lease the key should be attached to; '0' for a reservation. */
  leaseId: string;
  /** The store revision of our last write. */
  revision: string;
}

export type OwnKeyState =
  /** Our own write, or an identical value on our etcd lease. */
  | { kind: 'ours' }
  /** A value that is no lease at all (garbage): nobody's, so ours to rewrite. */
  | { kind: 'malformed'; error: string }
  /** Our value, but no longer attached to our etcd lease (a plain `etcdctl put`): it would never expire. */
  | { kind: 'detached' }
  /** A valid lease written by someone else: another node (one public IP on two nodes?) or an admin. */
  | { kind: 'foreign'; attrs: LeaseAttrs };

function sameAttrs(a: LeaseAttrs, b: LeaseAttrs): boolean {
  return (
    JSON.stringify([a.publicIP, a.publicIPv6, a.backendType, a.backendData, a.backendV6Data]) ===
    JSON.stringify([b.publicIP, b.publicIPv6, b.backendType, b.backendData, b.backendV6Data])
  );
}

export function classifyOwnKey(key: string, kv: KeyMeta & { value: string }, held: HeldLease): OwnKeyState {
  if (kv.modRevision === held.revision) return { kind: 'ours' };
  let attrs: LeaseAttrs;
  try {
    attrs = decodeLeaseValue(kv.value, key);
  } catch (e) {
    if (!(e instanceof LeaseJsonError)) throw e;
    return { kind: 'malformed', error: e.message };
  }
  if (sameAttrs(attrs, held.attrs)) {
    if (kv.leaseId === held.leaseId) return { kind: 'ours' };
    if (kv.leaseId === '0') return { kind: 'detached' };
  }
  return { kind: 'foreign', attrs };
}

/** The VtepMAC in a lease's backend data (vxlan), for messages; 'none' when the backend has none. */
export function vtepMacOf(attrs: LeaseAttrs): string {
  const d = attrs.backendData ?? attrs.backendV6Data;
  const mac = d && typeof d === 'object' ? (d as { VtepMAC?: unknown }).VtepMAC : undefined;
  return typeof mac === 'string' ? mac : 'none';
}

/** The same node data, but for the etcd lease: a restart of this node on the same device. */
export function sameBackend(a: LeaseAttrs, b: LeaseAttrs): boolean {
  return (
    JSON.stringify([a.backendType, a.backendData, a.backendV6Data]) ===
    JSON.stringify([b.backendType, b.backendData, b.backendV6Data])
  );
}

const FIX = 'give each node its own address with --iface, --iface-regex, --iface-can-reach or --public-ip';

/** Two nodes claim one lease: the public IP they share, both VtepMACs and the fix. */
export function duplicatePublicIPMessage(key: string, ours: LeaseAttrs, theirs: LeaseAttrs): string {
  const ip = ours.publicIP !== '0.0.0.0' ? ours.publicIP : (ours.publicIPv6 ?? ours.publicIP);
  const theirIP = ours.publicIP !== '0.0.0.0' ? theirs.publicIP : (theirs.publicIPv6 ?? theirs.publicIP);
  const who = theirIP === ip ? `another node with the same public IP ${ip}` : `another writer (public IP ${theirIP})`;
  return (
    `${key} is held by ${who}: its VtepMAC is ${vtepMacOf(theirs)}, this node's is ${vtepMacOf(ours)}. ` +
    `Two nodes share one public IP (Vagrant's NAT address 10.0.2.15 on every VM does this); ${FIX}`
  );
}
