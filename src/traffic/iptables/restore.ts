// Payloads for `iptables-restore --noflush`: one atomic transaction per table, so a rule set never shows half-applied.
import { ruleText, type IptRule, type RuleSet, type Table } from './rules.ts';

/** What one table's transaction does, in this order: declare chains, delete rules, append rules. */
export interface TablePlan {
  table: Table;
  /** `:CHAIN - [0:0]` creates the chain, or flushes it when it exists (even under --noflush). */
  chains: readonly string[];
  deletes: readonly IptRule[];
  appends: readonly IptRule[];
}

/** How many copies of `rule` the kernel currently holds (0 when absent or its chain does not exist). */
export type CopyCount = (rule: IptRule) => number;

/**
 * Bootstrap of a rule set: flush (or create) the flannel chain, delete every present copy of the rules that live in
 * other chains (the jump), then append all rules, so repeated runs never duplicate a rule and the jump ends up last.
 */
export function setupPlan(set: RuleSet, copies: CopyCount): TablePlan {
  const outside = set.rules.filter((r) => r.chain !== set.chain);
  return {
    table: set.table,
    chains: [set.chain],
    deletes: outside.flatMap((r) => Array<IptRule>(copies(r)).fill(r)),
    appends: set.rules,
  };
}

/** Deletes every present copy of a rule set's rules (used when the network or subnet changed); chains are kept. */
export function deletePlan(set: RuleSet, copies: CopyCount): TablePlan {
  return {
    table: set.table,
    chains: [],
    deletes: set.rules.flatMap((r) => Array<IptRule>(copies(r)).fill(r)),
    appends: [],
  };
}

/**
 * Deletes `chain` whatever it holds: every rule jumping to it first (a referenced chain cannot be deleted), then its
 * rules, then the chain. `tableRules` is `iptables -t <table> -S` output. Used for a mode or an IP family not in use.
 */
export function chainCleanupPayload(table: Table, chain: string, tableRules: readonly string[]): string {
  const jumps = tableRules.filter(
    (l) =>
      l.startsWith('-A ') &&
      !l.startsWith(`-A ${chain} `) &&
      (l.endsWith(` -j ${chain}`) || l.endsWith(` -g ${chain}`)),
  );
  return [`*${table}`, ...jumps.map((l) => `-D ${l.slice(3)}`), `-F ${chain}`, `-X ${chain}`, 'COMMIT', ''].join('\n');
}

export function isEmptyPlan(plan: TablePlan): boolean {
  return plan.chains.length === 0 && plan.deletes.length === 0 && plan.appends.length === 0;
}

/** The text fed to `iptables-restore --noflush`. */
export function restorePayload(plan: TablePlan): string {
  const lines = [`*${plan.table}`];
  for (const c of plan.chains) lines.push(`:${c} - [0:0]`);
  for (const r of plan.deletes) lines.push(ruleText(r, '-D'));
  for (const r of plan.appends) lines.push(ruleText(r, '-A'));
  lines.push('COMMIT', '');
  return lines.join('\n');
}
