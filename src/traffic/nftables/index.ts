// nftables mode of the traffic manager (docs/COMPATIBILITY.md, "nftables rules"): a table per IP family, two base
// chains in each family in use, each written in one `nft -f -` transaction. Upstream writes them once; we also re-apply
// a chain whose content drifted, every resync period.
import { errorMessage, logger } from '../../log/log.ts';
import { processExec, type ExecFn } from '../../util/exec.ts';
import type { ForwardRulesParams, MasqRulesParams, TrafficManager } from '../traffic-manager.ts';
import { deleteFlannelIptablesChains } from './iptables-cleanup.ts';
import { chainDifferences } from './listing.ts';
import { Nft } from './nft.ts';
import {
  applyScript,
  forwardChain,
  masqChain,
  TABLE_V4,
  TABLE_V6,
  tableScript,
  type NftChain,
  type NftTable,
} from './ruleset.ts';
import { Serial } from '../../util/tasks.ts';
import { keepAllApplied, type OnRuleRepair } from '../resync.ts';
import { forwardFamilies, masqFamilies, unusedFamilyReason } from '../families.ts';

const log = logger('traffic/nftables');

export interface NftablesTrafficManagerOptions {
  /** Runs the binaries; defaults to spawning them (inside `netns` when given). */
  exec?: ExecFn;
  /** Named network namespace to run every command in (tests). */
  netns?: string;
}

export class NftablesTrafficManager implements TrafficManager {
  private readonly exec: ExecFn;
  private readonly nft: Nft;
  private fullyRandom?: Promise<boolean>;
  private fullyRandomKnown?: boolean;
  /** Masq and forward loops run concurrently; one nft command at a time keeps check-then-apply honest. */
  private readonly serial = new Serial();

  constructor(opts: NftablesTrafficManagerOptions = {}) {
    this.exec = opts.exec ?? processExec(opts.netns);
    this.nft = new Nft(this.exec);
  }

  /** Removes iptables mode's chains and creates both flannel tables; throws NftError when nft is unusable. */
  async init(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    log.info(`Using nftables (${await this.nft.version()})`);
    await this.serial.run(() => deleteFlannelIptablesChains(this.exec));
    await this.serial.run(() => this.nft.apply(tableScript(TABLE_V4) + tableScript(TABLE_V6)));
    await this.probeFullyRandom();
  }

  /** Probed once; init() does it so the masquerade chain is queued before the forward chain, as upstream lists them. */
  private probeFullyRandom(): Promise<boolean> {
    this.fullyRandom ??= this.serial
      .run(() => this.nft.supportsFullyRandom())
      .then((ok) => {
        log.info(`nftables masquerade fully-random ${ok ? 'supported' : 'not supported'}`);
        this.fullyRandomKnown = ok;
        return ok;
      });
    return this.fullyRandom;
  }

  async setupAndEnsureMasqRules(p: MasqRulesParams): Promise<void> {
    const { v4, v6 } = masqFamilies(p);
    const removed = [
      !v4 && this.deleteUnusedChain(TABLE_V4, 'postrtg'),
      !v6 && this.deleteUnusedChain(TABLE_V6, 'postrtg'),
    ];
    // Stay synchronous up to the first apply when the probe already ran, so it queues ahead of the forward chain.
    const supported = this.fullyRandomKnown ?? (await this.probeFullyRandom());
    const randomFully = p.randomFully && supported;
    // No recycling step for a previous network/subnet (p.prevNetwork/p.prevSubnet, and the v6 ones): the chain flush
    // in every apply already removes the rules built from them.
    const chains: NftChain[] = [];
    if (v4) {
      log.info(`Setting up masking rules for network ${v4.network}, subnet ${v4.subnet}`);
      chains.push(masqChain(v4.network, v4.subnet, randomFully));
    }
    if (v6) {
      log.info(`Setting up IPv6 masking rules for network ${v6.network}, subnet ${v6.subnet}`);
      chains.push(masqChain(v6.network, v6.subnet, randomFully));
    }
    await Promise.all([...removed, this.keepAll(chains, p.resyncSeconds, p.signal, p.onFirstApply, p.onRepair)]);
  }

  async setupAndEnsureForwardRules(p: ForwardRulesParams): Promise<void> {
    const { v4, v6 } = forwardFamilies(p);
    const removed = [
      !v4 && this.deleteUnusedChain(TABLE_V4, 'forward'),
      !v6 && this.deleteUnusedChain(TABLE_V6, 'forward'),
    ];
    const chains: NftChain[] = [];
    if (v4) {
      log.info(`Setting up forward rules for network ${v4}`);
      chains.push(forwardChain(v4));
    }
    if (v6) {
      log.info(`Setting up IPv6 forward rules for network ${v6}`);
      chains.push(forwardChain(v6));
    }
    await Promise.all([...removed, this.keepAll(chains, p.resyncSeconds, p.signal, p.onFirstApply, p.onRepair)]);
  }

  /**
   * A family the network does not use keeps no flannel chain (an earlier run may have written one); its table stays,
   * as init() creates both. Queued at once, so it runs before this call's first apply; never rejects.
   */
  private deleteUnusedChain(table: NftTable, name: NftChain['name']): Promise<void> {
    const why = unusedFamilyReason(table === TABLE_V6);
    return this.serial
      .run(() => this.nft.deleteChain(table, name))
      .then(
        (deleted) => {
          if (deleted) log.info(`Deleted chain ${name} of nftables table ${table.family} ${table.name}: ${why}`);
        },
        (e) =>
          log.error(
            `Failed to delete chain ${name} of nftables table ${table.family} ${table.name} (${why}): ${errorMessage(e)}`,
          ),
      );
  }

  private keepAll(
    chains: NftChain[],
    resyncSeconds: number,
    signal: AbortSignal,
    onFirstApply?: () => void,
    onRepair?: OnRuleRepair,
  ): Promise<void> {
    const keepers = chains.map((chain) => ({
      name: `nftables ${chain.table.family} ${chain.table.name} ${chain.name}`,
      apply: () => this.apply(chain),
      differences: async () =>
        chainDifferences(chain, await this.serial.run(() => this.nft.listChain(chain.table, chain.name))),
      missingMessage: 'Some nftables rules are missing; recreating rules',
      family: chain.table.family === 'ip6' ? ('ipv6' as const) : ('ipv4' as const),
    }));
    return keepAllApplied(keepers, resyncSeconds, signal, log, onFirstApply, onRepair);
  }

  /** One transaction: table and chain created when absent, chain flushed, rules added. */
  async apply(chain: NftChain): Promise<void> {
    await this.serial.run(() => this.nft.apply(applyScript(chain)));
  }
}
