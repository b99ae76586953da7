// iptables mode of the traffic manager: bootstrap the rule sets, then keep them present (docs/COMPATIBILITY.md,
// "iptables rules"); a family not in use keeps no flannel chain.
import { errorMessage, logger } from '../../log/log.ts';
import type { ForwardRulesParams, MasqRulesParams, TrafficManager } from '../traffic-manager.ts';
import { deleteFlannelNftTables } from './nft-cleanup.ts';
import { deletePlan, isEmptyPlan, restorePayload, setupPlan, type TablePlan } from './restore.ts';
import {
  forwardRuleSet,
  FWD_CHAIN,
  MASQ_CHAIN,
  masqRuleSet,
  type IpFamily,
  type RuleSet,
  type Table,
} from './rules.ts';
import { Iptables } from './runner.ts';
import { processExec, type ExecFn } from '../../util/exec.ts';
import { Serial } from '../../util/tasks.ts';
import { keepAllApplied, type OnRuleRepair } from '../resync.ts';
import { forwardFamilies, masqFamilies, unusedFamilyReason } from '../families.ts';

const log = logger('traffic/iptables');

export interface IptablesTrafficManagerOptions {
  /** Runs the binaries; defaults to spawning them (inside `netns` when given). */
  exec?: ExecFn;
  /** Named network namespace to run every command in (tests). */
  netns?: string;
}

export class IptablesTrafficManager implements TrafficManager {
  private readonly exec: ExecFn;
  private iptables?: Promise<Iptables>;
  /** Masq and forward loops run concurrently; one iptables transaction at a time keeps check-then-restore honest. */
  private readonly serial = new Serial();

  constructor(opts: IptablesTrafficManagerOptions = {}) {
    this.exec = opts.exec ?? processExec(opts.netns);
  }

  private ipt(family: IpFamily = 'ipv4'): Promise<Iptables> {
    this.iptables ??= Iptables.detect(this.exec).then((ipt) => {
      const f = ipt.features;
      log.info(
        `iptables ${f.version?.join('.') ?? 'version unknown'}: --random-fully ${f.randomFully ? 'supported' : 'not supported'}, restore --wait ${f.restoreWait ? 'supported' : 'not supported'}`,
      );
      return ipt;
    });
    return this.iptables.then((ipt) => ipt.forFamily(family));
  }

  async init(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    await this.ipt();
    await this.serial.run(() => deleteFlannelNftTables(this.exec));
  }

  async setupAndEnsureMasqRules(p: MasqRulesParams): Promise<void> {
    const { v4, v6 } = masqFamilies(p);
    const ipt = await this.ipt();
    const randomFully = p.randomFully && ipt.features.randomFully;
    const sets: RuleSet[] = [];
    if (v4) {
      if (p.prevNetwork && p.prevSubnet && (!p.prevNetwork.equals(v4.network) || !p.prevSubnet.equals(v4.subnet))) {
        log.info(
          `Network or subnet changed (was ${p.prevNetwork} / ${p.prevSubnet}); deleting the masquerade rules built from them`,
        );
        // The old daemon may have run with or without --random-fully; delete either form.
        await this.deleteRuleSets([
          masqRuleSet(p.prevNetwork, p.prevSubnet, true),
          masqRuleSet(p.prevNetwork, p.prevSubnet, false),
        ]);
      }
      log.info(`Setting up masking rules for network ${v4.network}, subnet ${v4.subnet}`);
      sets.push(masqRuleSet(v4.network, v4.subnet, randomFully));
    } else {
      await this.deleteUnusedFamily('ipv4', 'nat', MASQ_CHAIN);
    }
    if (v6) {
      if (
        p.prevIpv6Network &&
        p.prevIpv6Subnet &&
        !(p.prevIpv6Network.equals(v6.network) && p.prevIpv6Subnet.equals(v6.subnet))
      ) {
        log.info(
          `IPv6 network or subnet changed (was ${p.prevIpv6Network} / ${p.prevIpv6Subnet}); deleting the ip6tables masquerade rules built from them`,
        );
        await this.deleteRuleSets([
          masqRuleSet(p.prevIpv6Network, p.prevIpv6Subnet, true),
          masqRuleSet(p.prevIpv6Network, p.prevIpv6Subnet, false),
        ]);
      }
      log.info(`Setting up IPv6 masking rules for network ${v6.network}, subnet ${v6.subnet}`);
      sets.push(masqRuleSet(v6.network, v6.subnet, randomFully));
    } else {
      // Not only the set built from prevIpv6*: whatever an earlier run left in the chain goes with it.
      await this.deleteUnusedFamily('ipv6', 'nat', MASQ_CHAIN);
    }
    await this.keepAll(sets, p.resyncSeconds, p.signal, p.onFirstApply, p.onRepair);
  }

  async setupAndEnsureForwardRules(p: ForwardRulesParams): Promise<void> {
    const { v4, v6 } = forwardFamilies(p);
    const sets: RuleSet[] = [];
    if (v4) {
      log.info(`Setting up forward rules for network ${v4} (the FORWARD policy is left unchanged)`);
      sets.push(forwardRuleSet(v4));
    } else {
      await this.deleteUnusedFamily('ipv4', 'filter', FWD_CHAIN);
    }
    if (v6) {
      log.info(`Setting up IPv6 forward rules for network ${v6}`);
      sets.push(forwardRuleSet(v6));
    } else {
      await this.deleteUnusedFamily('ipv6', 'filter', FWD_CHAIN);
    }
    await this.keepAll(sets, p.resyncSeconds, p.signal, p.onFirstApply, p.onRepair);
  }

  /**
   * A family the network does not use keeps none of flannel's rules: the chain goes with every jump to it, whatever
   * network or subnet an earlier run built it from. Failures are logged; the other family's rules still go in.
   */
  private async deleteUnusedFamily(family: IpFamily, table: Table, chain: string): Promise<void> {
    const ipt = await this.ipt(family);
    const why = unusedFamilyReason(family === 'ipv6');
    try {
      const result = await this.serial.run(() => ipt.deleteChain(table, chain));
      if (result === 'deleted') log.info(`Deleted the ${ipt.bin} ${table} chain ${chain} and the jumps to it: ${why}`);
      if (result === 'unavailable') log.v(1, `${ipt.bin} not available; no ${chain} chain to delete (${why})`);
    } catch (e) {
      log.error(`Failed to delete the ${ipt.bin} ${table} chain ${chain} (${why}): ${errorMessage(e)}`);
    }
  }

  private keepAll(
    sets: RuleSet[],
    resyncSeconds: number,
    signal: AbortSignal,
    onFirstApply?: () => void,
    onRepair?: OnRuleRepair,
  ): Promise<void> {
    const keepers = sets.map((set) => ({
      name: `${set.family === 'ipv6' ? 'ip6tables ' : ''}${set.table} ${set.chain}`,
      apply: () => this.apply(set),
      differences: async () => ((await this.serial.run(() => this.isComplete(set))) ? [] : ['rules or chain missing']),
      missingMessage: 'Some iptables rules are missing; deleting and recreating rules',
      family: set.family,
    }));
    return keepAllApplied(keepers, resyncSeconds, signal, log, onFirstApply, onRepair);
  }

  /** One iptables-restore transaction: flush/create the chain, drop present copies of the jump, append everything. */
  async apply(set: RuleSet): Promise<void> {
    const ipt = await this.ipt(set.family);
    await this.serial.run(async () => {
      const counts = await ipt.countCopies(set.rules);
      await ipt.restore(restorePayload(setupPlan(set, (r) => counts.get(r) ?? 0)));
    });
  }

  /** True when every rule of `set` exists (a missing chain lists no rules): each chain listed once, -C only on a text mismatch. */
  private async isComplete(set: RuleSet): Promise<boolean> {
    const ipt = await this.ipt(set.family);
    const counts = await ipt.countCopies(set.rules);
    return set.rules.every((r) => (counts.get(r) ?? 0) >= 1);
  }

  private async deleteRuleSets(sets: RuleSet[]): Promise<void> {
    for (const set of sets) {
      const ipt = await this.ipt(set.family);
      try {
        await this.serial.run(async () => {
          const counts = await ipt.countCopies(set.rules);
          const plan: TablePlan = deletePlan(set, (r) => counts.get(r) ?? 0);
          if (!isEmptyPlan(plan)) await ipt.restore(restorePayload(plan));
        });
      } catch (e) {
        log.error(`Failed to delete the previous ${ipt.bin} ${set.table} ${set.chain} rules: ${errorMessage(e)}`);
      }
    }
  }
}
