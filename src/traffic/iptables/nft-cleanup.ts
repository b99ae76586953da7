// iptables mode removes what nftables mode (spec §6.3) leaves behind: the tables `ip flannel-ipv4` / `ip6 flannel-ipv6`.
import { logger } from '../../log/log.ts';
import type { ExecFn } from './runner.ts';

const log = logger('traffic/iptables');

export const NFT_TABLES: ReadonlyArray<{ family: 'ip' | 'ip6'; name: string }> = [
  { family: 'ip', name: 'flannel-ipv4' },
  { family: 'ip6', name: 'flannel-ipv6' },
];

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
  for (const t of NFT_TABLES) {
    if (!present.has(`table ${t.family} ${t.name}`)) continue;
    log.info(`Deleting nftables table ${t.family} ${t.name} left by nftables mode`);
    const res = await exec('nft', ['delete', 'table', t.family, t.name]);
    if (res.code !== 0) log.error(`running "nft delete table ${t.family} ${t.name}" failed (exit ${res.code}): ${res.stderr.trim()}`);
  }
}
