// A vxlan peer's status for `GET /peers`: one record per peer lease, combined from how each family's entries came
// out at their last programming or repair; programmed only when every family's are in.
import type { PeerStatus } from '../backend.ts';
import { PeerStatusBook } from '../peer-status.ts';
import type { PeerPlan } from './plan.ts';

/** One family's entries of a peer: their subnet and public IP, and why the kernel lacks them (null: all in). */
export interface FamilyOutcome {
  subnet: string;
  publicIP: string;
  refusal: string | null;
}

/** The outcome of programming or repairing `plan`. */
export function outcomeOf(plan: PeerPlan, refusal: string | null): FamilyOutcome {
  return { subnet: plan.subnet.toString(), publicIP: plan.publicIP, refusal };
}

export class VxlanPeerStatus {
  private readonly outcomes = new Map<4 | 6, Map<string, FamilyOutcome>>();
  private readonly book = new PeerStatusBook();

  /** `families` in the network's order: a peer is listed by the first one it has (IPv4 before IPv6). */
  constructor(families: readonly (4 | 6)[]) {
    for (const f of families) this.outcomes.set(f, new Map());
  }

  /** Notes how the family's entries of the lease `key` came out (undefined: the family has no peer there). */
  record(family: 4 | 6, key: string, outcome: FamilyOutcome | undefined): void {
    if (outcome) this.outcomes.get(family)?.set(key, outcome);
    else this.outcomes.get(family)?.delete(key);
  }

  /** Makes the lease's record what its families' outcomes add up to; with none left it is no peer any more. */
  publish(key: string): void {
    const all = [...this.outcomes.values()].flatMap((m) => m.get(key) ?? []);
    const first = all[0];
    if (!first) return this.book.delete(key);
    const refusals = all.flatMap((o) => (o.refusal === null ? [] : [o.refusal]));
    const peer = { subnet: first.subnet, publicIP: first.publicIP };
    if (refusals.length === 0) this.book.set(key, { ...peer, state: 'programmed' });
    else this.book.set(key, { ...peer, state: 'failed', reason: refusals.join('; ') });
  }

  list(): PeerStatus[] {
    return this.book.list();
  }
}
