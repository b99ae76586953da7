// The set of known remote leases (docs/COMPATIBILITY.md, "Watching leases"): turns snapshots and raw changes into the
// events backends act on.
import { leaseName, type Lease, type LeaseAttrs, type LeaseEvent } from './lease.ts';

function sameAttrs(a: LeaseAttrs, b: LeaseAttrs): boolean {
  return (
    a.publicIP === b.publicIP &&
    a.publicIPv6 === b.publicIPv6 &&
    a.backendType === b.backendType &&
    JSON.stringify(a.backendData) === JSON.stringify(b.backendData) &&
    JSON.stringify(a.backendV6Data) === JSON.stringify(b.backendV6Data)
  );
}

/** A dual-stack peer whose v6 subnet changed under the same v4 subnet needs new v6 routes. */
function sameV6(a: Lease, b: Lease): boolean {
  return a.ipv6Subnet?.toString() === b.ipv6Subnet?.toString();
}

function compareLeases(a: Lease, b: Lease): number {
  if (a.subnet && b.subnet) return a.subnet.ip - b.subnet.ip || a.subnet.prefix - b.subnet.prefix;
  if (a.subnet || b.subnet) return a.subnet ? -1 : 1;
  const x = a.ipv6Subnet!;
  const y = b.ipv6Subnet!;
  return x.ip < y.ip ? -1 : x.ip > y.ip ? 1 : x.prefix - y.prefix;
}

export class LeaseWatcher {
  private readonly known = new Map<string, Lease>();

  private readonly own: string;

  /** `own` is never reported: a host does not route to itself. Leases are known by leaseName (v4, else v6 subnet). */
  constructor(own: Pick<Lease, 'subnet' | 'ipv6Subnet'>) {
    this.own = leaseName(own);
  }

  private isOwn(l: Lease): boolean {
    return leaseName(l) === this.own;
  }

  /** The current set of remote leases, in subnet order (IPv4, then IPv6-only ones). */
  leases(): Lease[] {
    return [...this.known.values()].sort(compareLeases);
  }

  /**
   * Replaces the set with a full snapshot: 'added' for new leases and for ones whose attrs changed meanwhile
   * (e.g. a peer's new VTEP MAC), 'removed' (with the old attrs) for ones that are gone.
   */
  reset(snapshot: Lease[]): LeaseEvent[] {
    const events: LeaseEvent[] = [];
    const next = new Map<string, Lease>();
    for (const l of snapshot) {
      if (this.isOwn(l)) continue;
      const k = leaseName(l);
      next.set(k, l);
      const old = this.known.get(k);
      if (!old || !sameAttrs(old.attrs, l.attrs) || !sameV6(old, l)) events.push({ type: 'added', lease: l });
    }
    for (const [k, old] of this.known) {
      if (!next.has(k)) events.push({ type: 'removed', lease: old });
    }
    this.known.clear();
    for (const [k, l] of next) this.known.set(k, l);
    return events;
  }

  /** Applies incremental changes; 'removed' events carry the last known attrs of the lease. */
  update(changes: LeaseEvent[]): LeaseEvent[] {
    const events: LeaseEvent[] = [];
    for (const ev of changes) {
      if (this.isOwn(ev.lease)) continue;
      const k = leaseName(ev.lease);
      if (ev.type === 'added') {
        this.known.set(k, ev.lease);
        events.push(ev);
      } else {
        const old = this.known.get(k);
        this.known.delete(k);
        events.push({ type: 'removed', lease: old ?? ev.lease });
      }
    }
    return events;
  }
}
