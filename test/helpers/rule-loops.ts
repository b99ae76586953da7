// Both rule setup loops of a traffic manager (masquerade and forward), running until stopped.
import type { MasqRulesParams, TrafficManager } from '../../src/traffic/traffic-manager.ts';

/** The masquerade loop's parameters a test chooses; the forward loop gets the same networks. */
export type LoopParams = Partial<Omit<MasqRulesParams, 'signal' | 'onFirstApply'>>;

/** Starts pairs of setup loops and remembers their stops, so `after` ends them even when a test fails half-way. */
export class RuleLoops {
  private readonly stops: Array<() => Promise<void>> = [];

  /**
   * Runs both loops of `mgr` with `p` (resync every second, random-fully unless `p` says otherwise) until `stop()`;
   * `firstApplies()` counts the loops' first-apply callbacks.
   */
  start(mgr: TrafficManager, p: LoopParams): { stop: () => Promise<void>; firstApplies: () => number } {
    const ac = new AbortController();
    let firstApplies = 0;
    const done = Promise.all([
      mgr.setupAndEnsureMasqRules({
        resyncSeconds: 1,
        randomFully: true,
        ...p,
        signal: ac.signal,
        onFirstApply: () => firstApplies++,
      }),
      mgr.setupAndEnsureForwardRules({
        network: p.network,
        ipv6Network: p.ipv6Network,
        resyncSeconds: 1,
        signal: ac.signal,
        onFirstApply: () => firstApplies++,
      }),
    ]);
    const stop = async () => {
      ac.abort();
      await done;
    };
    this.stops.push(stop);
    return { stop, firstApplies: () => firstApplies };
  }

  /** Runs one loop `fn` until stopAll(), or until the returned controller aborts it. */
  run(fn: (signal: AbortSignal) => Promise<void>): AbortController {
    const ac = new AbortController();
    const done = fn(ac.signal);
    this.add(async () => {
      ac.abort();
      await done;
    });
    return ac;
  }

  /** Has stopAll() also run `stop` (for a loop a test starts by hand). */
  add(stop: () => Promise<void>): void {
    this.stops.push(stop);
  }

  /** Stops every pair started, and every stop added (failures ignored). */
  async stopAll(): Promise<void> {
    await Promise.allSettled(this.stops.splice(0).map((s) => s()));
  }
}
