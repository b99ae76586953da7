// nftables mode removes what iptables mode (docs/COMPATIBILITY.md, "iptables rules") leaves behind: FLANNEL-POSTRTG in
// nat and FLANNEL-FWD in filter, for IPv4 and IPv6. Upstream looks for FLANNEL-FWD in the nat table, where it never is;
// we delete it from filter, where iptables mode creates it.
import { errorMessage, logger } from '../../log/log.ts';
import { FWD_CHAIN, MASQ_CHAIN, type IpFamily, type Table } from '../iptables/rules.ts';
import { Iptables } from '../iptables/runner.ts';
import type { ExecFn } from '../../util/exec.ts';

const log = logger('traffic/nftables');

const CHAINS: ReadonlyArray<{ table: Table; chain: string }> = [
  { table: 'nat', chain: MASQ_CHAIN },
  { table: 'filter', chain: FWD_CHAIN },
];

const FAMILIES: readonly IpFamily[] = ['ipv4', 'ipv6'];

/** Deletes iptables mode's chains and jumps where present; a host without ip(6)tables has none, so that is fine. */
export async function deleteFlannelIptablesChains(exec: ExecFn): Promise<void> {
  // The v4 binary's features stand for both families: iptables and ip6tables ship together.
  const v4 = await Iptables.detect(exec);
  for (const family of FAMILIES) {
    const ipt = v4.forFamily(family);
    for (const { table, chain } of CHAINS) {
      try {
        const result = await ipt.deleteChain(table, chain);
        if (result === 'unavailable') {
          log.v(1, `${ipt.bin} not available; no ${ipt.bin} chains to clean up`);
          break;
        }
        if (result === 'deleted') log.info(`Deleted ${ipt.bin} chain ${chain} (${table}) left by iptables mode`);
      } catch (e) {
        log.error(`Failed to delete ${ipt.bin} chain ${chain} (${table}): ${errorMessage(e)}`);
      }
    }
  }
}
