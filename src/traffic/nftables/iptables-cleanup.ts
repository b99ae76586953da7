// nftables mode removes what iptables mode (spec §6.1, §6.2) leaves behind: FLANNEL-POSTRTG in nat and FLANNEL-FWD
// in filter, for IPv4 and IPv6. Upstream looks for FLANNEL-FWD in the nat table, where it never is; we delete it from
// filter, where iptables mode creates it.
import { errorMessage, logger } from '../../log/log.ts';
import { FWD_CHAIN, MASQ_CHAIN, type Table } from '../iptables/rules.ts';
import { Iptables, IptablesError, type ExecFn } from '../iptables/runner.ts';

const log = logger('traffic/nftables');

const CHAINS: ReadonlyArray<{ table: Table; chain: string }> = [
  { table: 'nat', chain: MASQ_CHAIN },
  { table: 'filter', chain: FWD_CHAIN },
];

const FAMILIES = [
  { list: 'iptables', restore: 'iptables-restore' },
  { list: 'ip6tables', restore: 'ip6tables-restore' },
] as const;

/**
 * The `iptables-restore --noflush` payload that deletes `chain`: every rule jumping to it first (a referenced chain
 * cannot be deleted), then its rules, then the chain. `tableRules` is `iptables -t <table> -S` output.
 */
export function chainCleanupPayload(table: Table, chain: string, tableRules: readonly string[]): string {
  const jumps = tableRules.filter((l) => l.startsWith('-A ') && !l.startsWith(`-A ${chain} `) && (l.endsWith(` -j ${chain}`) || l.endsWith(` -g ${chain}`)));
  return [`*${table}`, ...jumps.map((l) => `-D ${l.slice(3)}`), `-F ${chain}`, `-X ${chain}`, 'COMMIT', ''].join('\n');
}

/** Deletes iptables mode's chains and jumps where present; a host without ip(6)tables has none, so that is fine. */
export async function deleteFlannelIptablesChains(exec: ExecFn): Promise<void> {
  // The v4 binary's features stand for both families: iptables and ip6tables ship together.
  const { features } = await Iptables.detect(exec);
  const wait = features.wait ? ['--wait'] : [];
  const restoreArgs = features.restoreWait ? ['--noflush', '--wait'] : ['--noflush'];
  for (const fam of FAMILIES) {
    for (const { table, chain } of CHAINS) {
      try {
        const probe = await exec(fam.list, [...wait, '-t', table, '-S', chain]);
        if (probe.code === 127) {
          log.v(1, `${fam.list} not available (${probe.stderr.trim()}); no ${fam.list} chains to clean up`);
          break;
        }
        if (probe.code !== 0) continue; // no such chain
        const all = await exec(fam.list, [...wait, '-t', table, '-S']);
        if (all.code !== 0) throw new IptablesError(`${fam.list} -t ${table} -S`, all);
        log.info(`Deleting ${fam.list} chain ${chain} (${table}) left by iptables mode`);
        const res = await exec(fam.restore, restoreArgs, chainCleanupPayload(table, chain, all.stdout.split('\n')));
        if (res.code !== 0) throw new IptablesError(`${fam.restore} ${restoreArgs.join(' ')}`, res);
      } catch (e) {
        log.error(`Failed to delete ${fam.list} chain ${chain} (${table}): ${errorMessage(e)}`);
      }
    }
  }
}
