// --ip-blackhole-route: keep `blackhole <own subnet>` in the main table, so traffic to the own subnet is dropped here
// instead of following the default route out while cni0 is absent. A high metric keeps it behind the bridge's own
// route (metric 0) and makes sure it can never replace that route.
import type { IPv4Net } from '../ip/ipv4.ts';
import { IPv6Net } from '../ip/ipv6.ts';
import { errorMessage, logger } from '../log/log.ts';
import { RT_TABLE_MAIN, type Netlink } from '../netlink/index.ts';
import { sleep } from '../util/time.ts';

const log = logger('blackhole');
export const BLACKHOLE_METRIC = 4242;

export async function ensureBlackholeRoute(
  nl: Netlink,
  subnet: IPv4Net | IPv6Net,
  periodSeconds: number,
  signal: AbortSignal,
): Promise<void> {
  const dst = subnet.toString();
  const family = subnet instanceof IPv6Net ? 6 : 4;
  while (!signal.aborted) {
    try {
      const present = (await nl.routes(family, { table: RT_TABLE_MAIN, dst })).some(
        (r) => r.type === 'blackhole' && r.priority === BLACKHOLE_METRIC,
      );
      if (!present) {
        await nl.replaceRoute({ dst, type: 'blackhole', priority: BLACKHOLE_METRIC });
        log.info(`Added blackhole route for ${dst}`);
      }
    } catch (e) {
      log.error(`Failed to ensure the blackhole route for ${dst}: ${errorMessage(e)}`);
    }
    await sleep(periodSeconds * 1000, signal);
  }
}
