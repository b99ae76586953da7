// Programs one peer's entries (neighbour, FDB, route, or one direct route) with retry and rollback.
import { errorMessage, logger } from '../../log/log.ts';
import { NetlinkError, isGone, isNetlinkCode, type Netlink } from '../../netlink/index.ts';
import { sleep } from '../../util/time.ts';
import { entriesOf, type Entry, type PeerPlan } from './plan.ts';

const log = logger('vxlan');

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Like retry-go's defaults (10 attempts, 100 ms growing with jitter), but capped so a bad peer cannot stall long. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 10, baseDelayMs: 100, maxDelayMs: 2000 };

async function retry(fn: () => Promise<void>, policy: RetryPolicy, signal: AbortSignal): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      // ENODEV: the device is gone; its recreation re-adds every peer, so waiting here only delays that.
      if (attempt >= policy.attempts || signal.aborted || isNetlinkCode(e, 'ENODEV')) throw e;
      const delay =
        Math.min(policy.baseDelayMs * 2 ** (attempt - 1), policy.maxDelayMs) + Math.random() * policy.baseDelayMs;
      await sleep(delay, signal);
    }
  }
}

export class PeerProgrammer {
  constructor(
    private readonly nl: Netlink,
    /** Current index of flannel.<VNI> (it changes when the device is recreated). */
    private readonly vxlanIndex: () => number,
    private readonly policy: RetryPolicy = DEFAULT_RETRY,
  ) {}

  /**
   * Adds every entry of the plan in order; on a failure removes what it added. Returns null when all went in, else
   * why not (see refusal).
   */
  async add(plan: PeerPlan, signal: AbortSignal): Promise<string | null> {
    if (plan.mode === 'direct') log.info(`Adding direct route to subnet: ${plan.subnet} PublicIP: ${plan.publicIP}`);
    else log.v(2, `adding subnet: ${plan.subnet} PublicIP: ${plan.publicIP} VtepMAC: ${plan.vtepMac}`);
    const done: Entry[] = [];
    for (const e of entriesOf(plan)) {
      try {
        await retry(() => this.apply(e), this.policy, signal);
        done.push(e);
      } catch (err) {
        log.error(`${failureText(e)}: ${errorMessage(err)}`);
        for (const d of done.reverse()) await this.delete(d);
        return refusal(e, err);
      }
    }
    return null;
  }

  /** Deletes every entry of the plan; each independently, missing entries count as deleted. */
  async remove(plan: PeerPlan): Promise<void> {
    if (plan.mode === 'direct') log.info(`Removing direct route to subnet: ${plan.subnet} PublicIP: ${plan.publicIP}`);
    for (const e of entriesOf(plan)) await this.delete(e);
  }

  async delete(e: Entry): Promise<void> {
    try {
      const vx = this.vxlanIndex();
      switch (e.kind) {
        case 'neighbour':
          return await this.nl.deleteNeighbour({ index: vx, ip: e.ip });
        case 'fdb':
          return await this.nl.deleteFdb({ index: vx, mac: e.mac, dst: e.dst });
        case 'route':
          return await this.nl.deleteRoute(
            e.onVxlan ? { dst: e.dst, gateway: e.gateway, oif: vx } : { dst: e.dst, gateway: e.gateway },
          );
      }
    } catch (err) {
      if (!isGone(err)) log.error(`failed to delete ${describe(e)}: ${errorMessage(err)}`);
    }
  }

  /** One attempt at one entry, with no retry and no rollback (the repair check tries again at its next round). */
  async apply(e: Entry): Promise<void> {
    const vx = this.vxlanIndex();
    switch (e.kind) {
      case 'neighbour':
        return this.nl.replaceNeighbour({ index: vx, ip: e.ip, mac: e.mac });
      case 'fdb':
        return this.nl.replaceFdb({ index: vx, mac: e.mac, dst: e.dst });
      case 'route':
        return this.nl.replaceRoute(
          e.onVxlan ? { dst: e.dst, gateway: e.gateway, oif: vx, onlink: true } : { dst: e.dst, gateway: e.gateway },
        );
    }
  }
}

function failureText(e: Entry): string {
  switch (e.kind) {
    case 'neighbour':
      return 'AddARP failed';
    case 'fdb':
      return 'AddFDB failed';
    case 'route':
      return e.onVxlan ? `failed to add vxlanRoute (${e.dst} -> ${e.gateway})` : `Error adding route to ${e.dst}`;
  }
}

/**
 * A peer's failure as `GET /peers` reports it, the same words whether its first programming or a later repair failed
 * (so a refusal that persists keeps its `since`): `the kernel refused the route … onlink: ENETDOWN`.
 */
export function refusal(e: Entry, err: unknown): string {
  // A netlink error names the request again (`netlink newRoute …: ENETDOWN`); the entry already says what it was.
  const why = err instanceof NetlinkError ? err.message.slice(`netlink ${err.op}: `.length) : errorMessage(err);
  return `the kernel refused the ${describe(e)}: ${why}`;
}

export function describe(e: Entry): string {
  switch (e.kind) {
    case 'neighbour':
      return `neighbour ${e.ip} lladdr ${e.mac}`;
    case 'fdb':
      return `FDB entry ${e.mac} dst ${e.dst}`;
    case 'route':
      return `route ${e.dst} via ${e.gateway}${e.onVxlan ? ' onlink' : ''}`;
  }
}
