// Runs iptables / iptables-restore through an ExecFn (optionally inside a named netns: tests) and detects binary features.
import type { ExecFn, ExecResult } from '../../util/exec.ts';
import { chainCleanupPayload } from './restore.ts';
import { ruleText, type IpFamily, type IptRule, type Table } from './rules.ts';

/** A failed command, with the command line and stderr for the log. */
export class IptablesError extends Error {
  readonly code = 'EIPTABLES';
  constructor(
    readonly command: string,
    readonly result: ExecResult,
  ) {
    super(`running "${command}" failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`);
    this.name = 'IptablesError';
  }
}

export interface IptablesFeatures {
  /** `iptables --version`, e.g. [1, 8, 9]; undefined when unknown. */
  version?: [number, number, number];
  /** MASQUERADE --random-fully: iptables ≥ 1.6.2. */
  randomFully: boolean;
  /** `iptables -w`: ≥ 1.4.20. */
  wait: boolean;
  /** `iptables-restore --wait`: restore ≥ 1.6.2. */
  restoreWait: boolean;
}

export function parseVersion(text: string): [number, number, number] | undefined {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

function atLeast(v: [number, number, number] | undefined, want: [number, number, number]): boolean {
  if (!v) return false;
  for (let i = 0; i < 3; i++) if (v[i] !== want[i]) return v[i]! > want[i]!;
  return true;
}

export function featuresOf(iptablesVersion: string, restoreVersion: string): IptablesFeatures {
  const version = parseVersion(iptablesVersion);
  // Older iptables-restore has no --version; it ships with iptables, so fall back to that version.
  const restore = parseVersion(restoreVersion) ?? version;
  return {
    version,
    randomFully: atLeast(version, [1, 6, 2]),
    wait: atLeast(version, [1, 4, 20]),
    restoreWait: atLeast(restore, [1, 6, 2]),
  };
}

/** iptables (IPv4) or ip6tables (IPv6) commands flanneld needs. */
export class Iptables {
  /** `iptables` or `ip6tables`. */
  readonly bin: string;
  readonly restoreBin: string;

  constructor(
    private readonly exec: ExecFn,
    readonly features: IptablesFeatures,
    readonly family: IpFamily = 'ipv4',
  ) {
    this.bin = family === 'ipv6' ? 'ip6tables' : 'iptables';
    this.restoreBin = `${this.bin}-restore`;
  }

  static async detect(exec: ExecFn): Promise<Iptables> {
    const ipt = await exec('iptables', ['--version']);
    const restore = await exec('iptables-restore', ['--version']);
    return new Iptables(
      exec,
      featuresOf(ipt.stdout + ipt.stderr, restore.code === 0 ? restore.stdout + restore.stderr : ''),
    );
  }

  /** The same commands for the other family; iptables and ip6tables ship together, so the features carry over. */
  forFamily(family: IpFamily): Iptables {
    return family === this.family ? this : new Iptables(this.exec, this.features, family);
  }

  private async iptables(args: string[]): Promise<ExecResult> {
    return this.exec(this.bin, this.features.wait ? ['--wait', ...args] : args);
  }

  /** `iptables-restore --noflush`; throws IptablesError with the payload's first failing line in stderr. */
  async restore(payload: string): Promise<void> {
    const args = this.features.restoreWait ? ['--noflush', '--wait'] : ['--noflush'];
    const res = await this.exec(this.restoreBin, args, payload);
    if (res.code !== 0) throw new IptablesError(`${this.restoreBin} ${args.join(' ')}`, res);
  }

  /** `iptables -t <table> -C …`: exit 1 means absent; anything else but 0 is an error. */
  async exists(rule: IptRule): Promise<boolean> {
    const args = ['-t', rule.table, '-C', rule.chain, ...rule.spec];
    const res = await this.iptables(args);
    if (res.code === 0) return true;
    if (res.code === 1) return false;
    throw new IptablesError(`${this.bin} ${args.join(' ')}`, res);
  }

  /** `iptables -t <table> -S <chain>` lines; empty when the chain does not exist. */
  async listChain(table: Table, chain: string): Promise<string[]> {
    const res = await this.iptables(['-t', table, '-S', chain]);
    return res.code === 0 ? res.stdout.split('\n').filter(Boolean) : [];
  }

  /**
   * Deletes `chain` with its rules and every jump to it, in one restore transaction: 'absent' when there is no such
   * chain, 'unavailable' when the binary is missing (a host without it holds no such chain either).
   */
  async deleteChain(table: Table, chain: string): Promise<'deleted' | 'absent' | 'unavailable'> {
    const probe = await this.iptables(['-t', table, '-S', chain]);
    if (probe.code === 127) return 'unavailable';
    if (probe.code !== 0) return 'absent';
    const all = await this.iptables(['-t', table, '-S']);
    if (all.code !== 0) throw new IptablesError(`${this.bin} -t ${table} -S`, all);
    await this.restore(chainCleanupPayload(table, chain, all.stdout.split('\n')));
    return 'deleted';
  }

  /** Copies of each rule currently present: exact `-S` text matches, else 1 when `-C` still finds it. */
  async countCopies(rules: readonly IptRule[]): Promise<Map<IptRule, number>> {
    const listings = new Map<string, string[]>();
    const counts = new Map<IptRule, number>();
    for (const r of rules) {
      const key = `${r.table}/${r.chain}`;
      if (!listings.has(key)) listings.set(key, await this.listChain(r.table, r.chain));
      const text = ruleText(r);
      let n = listings.get(key)!.filter((l) => l === text).length;
      // iptables may print a rule differently from how it was given; -C compares semantically.
      // An error here (e.g. the jump's target chain is missing) means the rule cannot be present.
      if (n === 0 && listings.get(key)!.length > 0 && (await this.exists(r).catch(() => false))) n = 1;
      counts.set(r, n);
    }
    return counts;
  }
}
