// nftables mode of the traffic manager (spec §6.3): one table, two base chains, each written in one `nft -f -`
// transaction. Upstream writes them once; we also re-apply a chain whose content drifted, every resync period.
import { errorMessage, logger } from '../../log/log.ts';
import { sleep } from '../../util/sleep.ts';
import { processExec, type ExecFn } from '../iptables/runner.ts';
import type { ForwardRulesParams, MasqRulesParams, TrafficManager } from '../traffic-manager.ts';
import { deleteFlannelIptablesChains } from './iptables-cleanup.ts';
import { chainDifferences } from './listing.ts';
import { Nft } from './nft.ts';
import { applyScript, FAMILY, forwardChain, masqChain, TABLE, tableScript, type NftChain } from './ruleset.ts';

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
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: NftablesTrafficManagerOptions = {}) {
    this.exec = opts.exec ?? processExec(opts.netns);
    this.nft = new Nft(this.exec);
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => {});
    return next;
  }

  /** Removes iptables mode's chains and creates the flannel table; throws NftError when nft is unusable. */
  async init(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    log.info(`Using nftables (${await this.nft.version()})`);
    await this.serialized(() => deleteFlannelIptablesChains(this.exec));
    await this.serialized(() => this.nft.apply(tableScript()));
    await this.probeFullyRandom();
  }

  /** Probed once; init() does it so the masquerade chain is queued before the forward chain, as upstream lists them. */
  private probeFullyRandom(): Promise<boolean> {
    this.fullyRandom ??= this.serialized(() => this.nft.supportsFullyRandom()).then((ok) => {
      log.info(`nftables masquerade fully-random ${ok ? 'supported' : 'not supported'}`);
      this.fullyRandomKnown = ok;
      return ok;
    });
    return this.fullyRandom;
  }

  async setupAndEnsureMasqRules(p: MasqRulesParams): Promise<void> {
    // Stay synchronous up to the first apply when the probe already ran, so it queues ahead of the forward chain.
    const supported = this.fullyRandomKnown ?? (await this.probeFullyRandom());
    const randomFully = p.randomFully && supported;
    // No recycling step for a previous network/subnet (p.prevNetwork/p.prevSubnet): the chain flush in every apply
    // already removes the rules built from them.
    log.info(`Setting up masking rules for network ${p.network}, subnet ${p.subnet}`);
    await this.ensureLoop(masqChain(p.network, p.subnet, randomFully), p.resyncSeconds, p.signal, p.onFirstApply);
  }

  async setupAndEnsureForwardRules(p: ForwardRulesParams): Promise<void> {
    log.info(`Setting up forward rules for network ${p.network}`);
    await this.ensureLoop(forwardChain(p.network), p.resyncSeconds, p.signal, p.onFirstApply);
  }

  /** Applies `chain`, then compares it with the kernel every `resyncSeconds` until `signal` aborts; never throws. */
  private async ensureLoop(chain: NftChain, resyncSeconds: number, signal: AbortSignal, onFirstApply?: () => void): Promise<void> {
    if (signal.aborted) return;
    await this.applyLogged(chain);
    onFirstApply?.();
    // A zero or negative period would spin; flannel's flag default is 5 s.
    const periodMs = Math.max(1, resyncSeconds) * 1000;
    while (!signal.aborted) {
      await sleep(periodMs, signal);
      if (signal.aborted) break;
      let diffs: string[];
      try {
        diffs = chainDifferences(chain, await this.serialized(() => this.nft.listChain(chain.name)));
      } catch (e) {
        log.error(`Failed to read nftables chain ${FAMILY} ${TABLE} ${chain.name}: ${errorMessage(e)}`);
        diffs = ['unreadable'];
      }
      if (diffs.length > 0) {
        log.info('Some nftables rules are missing; recreating rules');
        log.v(1, `${FAMILY} ${TABLE} ${chain.name}: ${diffs.join('; ')}`);
        await this.applyLogged(chain);
      }
    }
    // Nothing is removed on shutdown (spec §6.3): traffic keeps flowing across a restart.
  }

  private async applyLogged(chain: NftChain): Promise<void> {
    try {
      await this.apply(chain);
    } catch (e) {
      log.error(`Failed to apply nftables chain ${FAMILY} ${TABLE} ${chain.name}: ${errorMessage(e)}`);
    }
  }

  /** One transaction: table and chain created when absent, chain flushed, rules added. */
  async apply(chain: NftChain): Promise<void> {
    await this.serialized(() => this.nft.apply(applyScript(chain)));
  }
}

export { forwardChain, masqChain, chainListing, applyScript } from './ruleset.ts';
