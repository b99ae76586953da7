// The `nft` commands nftables mode needs, run through an ExecFn (same netns and timeout handling as iptables).
import type { ExecFn, ExecResult } from '../../util/exec.ts';
import { parseChainJson, type ListedChain } from './listing.ts';
import type { NftTable } from './ruleset.ts';

/** A failed `nft` command, with stderr for the log. */
export class NftError extends Error {
  readonly code = 'ENFT';
  constructor(
    readonly command: string,
    readonly result: ExecResult,
  ) {
    super(
      result.code === 127
        ? `running "${command}" failed: nft not found (${result.stderr.trim()}); install nftables, or set "EnableNFTables": false in the network config`
        : `running "${command}" failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`,
    );
    this.name = 'NftError';
  }
}

/** A check-only (`nft -c`) transaction: nothing is created, but the kernel validates the masquerade flag. */
const FULLY_RANDOM_PROBE = [
  'add table ip flannel-probe',
  'add chain ip flannel-probe p { type nat hook postrouting priority srcnat ; }',
  'add rule ip flannel-probe p masquerade fully-random',
  '',
].join('\n');

export class Nft {
  constructor(private readonly exec: ExecFn) {}

  /** `nft --version`; throws NftError when the binary is missing. */
  async version(): Promise<string> {
    const res = await this.exec('nft', ['--version']);
    if (res.code !== 0) throw new NftError('nft --version', res);
    return res.stdout.trim();
  }

  /** Applies `script` as one atomic transaction (`nft -f -`). */
  async apply(script: string): Promise<void> {
    const res = await this.exec('nft', ['-f', '-'], script);
    if (res.code !== 0) throw new NftError('nft -f -', res); // nft's stderr quotes the failing line of the script
  }

  /** True when nft and the kernel accept `masquerade fully-random`. */
  async supportsFullyRandom(): Promise<boolean> {
    return (await this.exec('nft', ['-c', '-f', '-'], FULLY_RANDOM_PROBE)).code === 0;
  }

  /** Deletes a chain of a flannel table with its rules (the table stays); false when there is no such chain. */
  async deleteChain(table: NftTable, name: string): Promise<boolean> {
    if (!(await this.listChain(table, name))) return false;
    const at = `${table.family} ${table.name} ${name}`;
    // Flushed first: older kernels refuse to delete a chain that still holds rules.
    await this.apply(`flush chain ${at}\ndelete chain ${at}\n`);
    return true;
  }

  /** The chain of a flannel table as the kernel holds it; undefined when the table or chain does not exist. */
  async listChain(table: NftTable, name: string): Promise<ListedChain | undefined> {
    const args = ['-j', 'list', 'chain', table.family, table.name, name];
    const res = await this.exec('nft', args);
    if (res.code === 1 && /No such file or directory/.test(res.stderr)) return undefined;
    if (res.code !== 0) throw new NftError(`nft ${args.join(' ')}`, res);
    return parseChainJson(res.stdout, name);
  }
}
