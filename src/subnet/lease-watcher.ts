// The set of known remote leases (spec §3.7): turns snapshots and raw changes into the events backends act on.
import type { IPv4Net } from '../ip/ipv4.ts';
import type { Lease, LeaseAttrs, LeaseEvent } from './lease.ts';

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

export class LeaseWatcher {
  private readonly known = new Map<string, Lease>();

  /** `own` is never reported: a host does not route to itself. */
  constructor(private readonly own: IPv4Net) {}

  private isOwn(l: Lease): boolean {
    return l.subnet.equals(this.own);
  }

  /** The current set of remote leases, in subnet order. */
  leases(): Lease[] {
    return [...this.known.values()].sort((a, b) => a.subnet.ip - b.subnet.ip || a.subnet.prefix - b.subnet.prefix);
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
      const k = l.subnet.toString();
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
      const k = ev.lease.subnet.toString();
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
