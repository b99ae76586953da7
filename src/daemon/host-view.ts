// Reads what interface selection needs from the kernel, through our netlink facade.
import { RT_TABLE_MAIN, type Netlink } from '../netlink/index.ts';
import type { HostAddress, HostView } from './interface-selection.ts';

type RouteRow = Awaited<ReturnType<Netlink['routes']>>[number];
type AddressRow = Awaited<ReturnType<Netlink['addresses']>>[number];

/** The first default route of the main table that names an output interface. */
function defaultRouteIndex(routes: RouteRow[], any: string): number | undefined {
  const def = routes.find(
    (r) =>
      (r.dst === null || r.dst === any) && r.oif !== undefined && (r.table === undefined || r.table === RT_TABLE_MAIN),
  );
  return def?.oif;
}

function hostAddresses(rows: AddressRow[]): HostAddress[] {
  return rows.map((a) => ({
    index: a.index,
    address: a.address,
    scope: a.scope,
    permanent: a.permanent,
    deprecated: a.deprecated,
    temporary: a.temporary,
  }));
}

/** `ipv6` (dual stack) also reads the IPv6 addresses and the `::/0` default route. */
export async function hostView(nl: Netlink, opts: { ipv6?: boolean } = {}): Promise<HostView> {
  const links = await nl.links();
  const view: HostView = {
    links: links.map((l) => ({ index: l.index, name: l.name, mtu: l.mtu })),
    addresses: hostAddresses(await nl.addresses(4)),
    defaultRouteIndex: defaultRouteIndex(await nl.routes(4), '0.0.0.0/0'),
    routeGet: async (dst) => {
      const r = await nl.routeGet(dst);
      if (r.oif === undefined) throw new Error(`the route to ${dst} has no output interface`);
      return { index: r.oif, prefsrc: r.prefsrc };
    },
  };
  if (opts.ipv6) {
    view.addressesV6 = hostAddresses(await nl.addresses(6));
    view.defaultRouteIndexV6 = defaultRouteIndex(await nl.routes(6), '::/0');
  }
  return view;
}
