// iptables mode removes what nftables mode (docs/COMPATIBILITY.md, "nftables rules") leaves behind: the tables
// `ip flannel-ipv4` / `ip6 flannel-ipv6`.
import { logger } from '../../log/log.ts';
import type { ExecFn } from '../../util/exec.ts';
import { TABLE_V4, TABLE_V6 } from '../nftables/ruleset.ts';

const log = logger('traffic/iptables');

/** Deletes flannel's nft tables when present; a host without `nft` has none, so that is not an error. */
export async function deleteFlannelNftTables(exec: ExecFn): Promise<void> {
  const list = await exec('nft', ['list', 'tables']);
  if (list.code === 127) {
    log.v(1, `nft not available (${list.stderr.trim()}); no nftables tables to clean up`);
    return;
  }
  if (list.code !== 0) {
    log.error(`running "nft list tables" failed (exit ${list.code}): ${list.stderr.trim()}`);
    return;
  }
  const present = new Set(list.stdout.split('\n').map((l) => l.trim()));
  for (const t of [TABLE_V4, TABLE_V6]) {
    if (!present.has(`table ${t.family} ${t.name}`)) continue;
    log.info(`Deleting nftables table ${t.family} ${t.name} left by nftables mode`);
    const res = await exec('nft', ['delete', 'table', t.family, t.name]);
    if (res.code !== 0)
      log.error(`running "nft delete table ${t.family} ${t.name}" failed (exit ${res.code}): ${res.stderr.trim()}`);
  }
}
