// Reads what interface selection needs from the kernel, through our netlink facade.
import type { Netlink } from '../netlink/index.ts';
import type { HostView } from './interface-selection.ts';

export async function hostView(nl: Netlink): Promise<HostView> {
  const links = await nl.links();
  const addresses = await nl.addresses(4);
  const routes = await nl.routes(4);
  const def = routes.find((r) => (r.dst === null || r.dst === '0.0.0.0/0') && r.oif !== undefined && (r.table === undefined || r.table === 254));
  return {
    links: links.map((l) => ({ index: l.index, name: l.name, mtu: l.mtu })),
    addresses: addresses.map((a) => ({
      index: a.index,
      address: a.address,
      scope: a.scope,
      permanent: a.permanent,
      deprecated: a.deprecated,
      temporary: a.temporary,
    })),
    defaultRouteIndex: def?.oif,
    routeGet: async (dst) => {
      const r = await nl.routeGet(dst);
      if (r.oif === undefined) throw new Error(`the route to ${dst} has no output interface`);
      return { index: r.oif, prefsrc: r.prefsrc };
    },
  };
}
