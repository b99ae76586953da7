// host-gw: each peer lease against its `<subnet> via <public IP> dev <ext>` route (the backend's own plan), and
// gateway routes into Network that no lease asks for.
import {
  adjacencyReason,
  describeRoute,
  missingRoutes,
  routeForLease,
  routeForLeaseV6,
  staleRoutes,
  type DesiredRoute,
} from '../../backend/hostgw/plan.ts';
import { leaseName } from '../../subnet/lease.ts';
import type { Check, Finding } from '../findings.ts';
import type { NodeSnapshot } from '../snapshot.ts';
import { ownLease } from './subnet.ts';
import { ownInterface } from './underlay.ts';

/** Peers host-gw cannot reach directly are underlay findings (hostgw-not-adjacent), not missing routes. */
function adjacent(s: NodeSnapshot, gateway: string, ext: { index: number; name: string }): boolean {
  const u = s.underlay.find((x) => x.ip === gateway)?.lookup;
  return adjacencyReason(gateway, ext.name, ext.index, u) === null;
}

export const hostgwPeersCheck: Check = {
  ids: ['peer-unprogrammed', 'peer-stale'],
  run(s) {
    const env = s.subnetEnv.env;
    if (s.backend?.type !== 'host-gw' || !env || !Array.isArray(s.leases)) return [];
    const own = ownLease(s);
    const out: Finding[] = [];
    const families = [
      {
        me: ownInterface(s, 4),
        network: env.networks[0],
        subnet: env.subnet,
        route: (l: Parameters<typeof routeForLeaseV6>[0], ext: number) => {
          const r = routeForLease(l, ext);
          return r.ok ? r.route : null;
        },
      },
      { me: ownInterface(s, 6), network: env.ipv6Networks[0], subnet: env.ipv6Subnet, route: routeForLeaseV6 },
    ];
    const stale: string[] = [];
    for (const f of families) {
      if (!f.me || !f.network || !f.subnet) continue;
      const dev = f.me.link.name;
      const desired: DesiredRoute[] = [];
      for (const lease of s.leases) {
        if (lease === own) continue;
        const d = f.route(lease, f.me.link.index);
        if (!d) continue;
        desired.push(d);
        if (!adjacent(s, d.gateway, f.me.link) || missingRoutes([d], s.routes).length === 0) continue;
        out.push({
          id: 'peer-unprogrammed',
          severity: 'error',
          summary: `peer ${leaseName(lease)} (${d.gateway}) has a lease but no route: pods there are unreachable`,
          evidence: [`lease ${leaseName(lease)}: public IP ${d.gateway}`, `missing: route ${describeRoute(d, dev)}`],
          fix: `check flanneld's log on this node for ${d.dst}; flanneld restores the route within 10 s while it runs (by hand: ip route replace ${describeRoute(d, dev)})`,
        });
      }
      for (const r of staleRoutes({
        network: f.network,
        subnetLen: f.subnet.prefix,
        extIndex: f.me.link.index,
        desired,
        routes: s.routes,
      }))
        stale.push(`route ${describeRoute(r, dev)}`);
    }
    if (stale.length > 0) {
      out.push({
        id: 'peer-stale',
        severity: 'warning',
        summary: `${stale.length} host-gw route${stale.length > 1 ? 's belong' : ' belongs'} to no current lease (a node that left)`,
        evidence: stale,
        fix: 'restart flanneld on this node (it sweeps them at start), or delete them: ip route del <subnet> as listed',
      });
    }
    return out;
  },
};
