// Keeps one set of rules applied: apply once, then compare with the kernel every period and re-apply on any
// difference. Shared by the iptables and nftables modes; failures are logged, never thrown.
import { errorMessage, type Logger } from '../log/log.ts';
import { afterAll } from '../util/tasks.ts';
import { sleep } from '../util/time.ts';

export interface RuleSetKeeper {
  /** For log lines, e.g. "nat FLANNEL-POSTRTG". */
  name: string;
  apply(): Promise<void>;
  /** What differs from the wanted rules; empty when all is in place. Throws when the state cannot be read. */
  differences(): Promise<string[]>;
  /** Logged before a re-apply. */
  missingMessage: string;
  /** The IP family of the rules (repairs are counted per family). */
  family: 'ipv4' | 'ipv6';
}

/** Told of each rule set that a resync found missing or changed and applied again (flanneld's /metrics). */
export type OnRuleRepair = (family: 'ipv4' | 'ipv6') => void;

async function keepApplied(
  k: RuleSetKeeper,
  resyncSeconds: number,
  signal: AbortSignal,
  log: Logger,
  onFirstApply?: () => void,
  onRepair?: OnRuleRepair,
): Promise<void> {
  if (signal.aborted) return;
  const applyLogged = async (): Promise<boolean> => {
    try {
      await k.apply();
      return true;
    } catch (e) {
      log.error(`Failed to apply ${k.name} rules: ${errorMessage(e)}`);
      return false;
    }
  };
  await applyLogged();
  onFirstApply?.();
  // A zero or negative period would spin; flannel's flag default is 5 s.
  const periodMs = Math.max(1, resyncSeconds) * 1000;
  while (!signal.aborted) {
    await sleep(periodMs, signal);
    if (signal.aborted) break;
    let diffs: string[];
    let unreadable = false;
    try {
      diffs = await k.differences();
    } catch (e) {
      log.error(`Failed to check ${k.name} rules: ${errorMessage(e)}`);
      diffs = ['unreadable'];
      unreadable = true;
    }
    if (diffs.length > 0) {
      log.info(k.missingMessage);
      log.v(1, `${k.name}: ${diffs.join('; ')}`);
      // A repair is a difference seen and put right; a re-apply after a failed check is not one.
      if ((await applyLogged()) && !unreadable) onRepair?.(k.family);
    }
  }
  // Nothing is removed on shutdown (docs/COMPATIBILITY.md, "Startup, health and shutdown"): traffic keeps flowing
  // across a restart.
}

/** Keeps every rule set applied side by side (one per IP family); `onFirstApply` once each had its first apply. */
export async function keepAllApplied(
  keepers: RuleSetKeeper[],
  resyncSeconds: number,
  signal: AbortSignal,
  log: Logger,
  onFirstApply?: () => void,
  onRepair?: OnRuleRepair,
): Promise<void> {
  const firsts = afterAll(keepers.length, onFirstApply);
  await Promise.all(keepers.map((k, i) => keepApplied(k, resyncSeconds, signal, log, firsts[i], onRepair)));
}
