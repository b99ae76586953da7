// Where each peer stands (flanneld's `GET /peers`): one record per peer, whose `since` moves only when its state,
// reason, subnet or public IP changes. host-gw, vxlan and udp keep theirs here.
import type { PeerStatus } from './backend.ts';

/** A peer's status as a backend reports it; the book adds `since`. */
export type PeerReport = Omit<PeerStatus, 'since'>;

export class PeerStatusBook {
  private readonly byKey = new Map<string, PeerStatus>();

  /** `now` is the clock `since` is read from (tests pass their own). */
  constructor(private readonly now: () => Date = () => new Date()) {}

  /** A copy of the record under the backend's key (a lease name, a route's destination …), or undefined. */
  get(key: string): PeerStatus | undefined {
    const s = this.byKey.get(key);
    return s && { ...s };
  }

  /** Records the peer's state; the same state, reason, subnet and public IP as before keep the old `since`. */
  set(key: string, report: PeerReport): void {
    const reason = report.state === 'failed' ? report.reason : undefined;
    const prev = this.byKey.get(key);
    const same =
      prev &&
      prev.state === report.state &&
      prev.reason === reason &&
      prev.subnet === report.subnet &&
      prev.publicIP === report.publicIP;
    if (same) return;
    const s: PeerStatus = {
      subnet: report.subnet,
      publicIP: report.publicIP,
      state: report.state,
      since: this.now().toISOString(),
    };
    if (reason !== undefined) s.reason = reason;
    this.byKey.set(key, s);
  }

  /** The peer is gone (its lease removed, or it stopped being one of this backend's peers). */
  delete(key: string): void {
    this.byKey.delete(key);
  }

  /** Copies of every record, sorted by subnet (numerically: 10.244.9.0/24 before 10.244.10.0/24). */
  list(): PeerStatus[] {
    // Plain string order over zero-padded numbers: localeCompare's numeric collation costs ~100 ms at 5,000 peers,
    // and /metrics reads the list after every lease batch.
    const keyed = [...this.byKey.values()].map((s) => ({ s: { ...s }, k: sortKey(s.subnet) }));
    return keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0)).map((x) => x.s);
  }
}

function sortKey(subnet: string): string {
  return subnet.replace(/\d+/g, (d) => d.padStart(10, '0'));
}
