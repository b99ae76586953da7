// Picks the external interface (docs/COMPATIBILITY.md, "Interface selection"): --iface, --iface-regex,
// --iface-can-reach, --public-ip or the default route; in dual stack also the IPv6 address on the same interface. Pure
// over a HostView so every rule is testable without root.
import type { ExternalInterface } from '../backend/backend.ts';
import { isIPv4 } from '../ip/ipv4.ts';
import { formatIPv6, isIPv6, parseIPv6 } from '../ip/ipv6.ts';
import { errorMessage, logger } from '../log/log.ts';

const log = logger('interface-selection');

export interface HostLink {
  index: number;
  name: string;
  mtu: number;
}

export interface HostAddress {
  index: number;
  address: string;
  scope: 'universe' | 'link' | 'host' | string;
  permanent: boolean;
  deprecated: boolean;
  temporary: boolean;
}

export interface HostView {
  links: HostLink[];
  /** IPv4 addresses of every link. */
  addresses: HostAddress[];
  /** Interface index of the first IPv4 default route, if any. */
  defaultRouteIndex?: number;
  /** IPv6 addresses of every link (read for dual stack). */
  addressesV6?: HostAddress[];
  /** Interface index of the first IPv6 default route (`::/0`), if any. */
  defaultRouteIndexV6?: number;
  /** Kernel route lookup (`ip route get`). */
  routeGet(dst: string): Promise<{ index: number; prefsrc?: string }>;
}

export interface SelectionOptions {
  iface: string[];
  ifaceRegex: string[];
  ifaceCanReach: string;
  publicIP: string;
  /** Pick an IPv4 address (default true; false on an IPv6-only network). */
  ipv4?: boolean;
  /** Dual stack / IPv6-only: also (or only) pick an IPv6 address on the same interface. */
  ipv6?: boolean;
  /** `--public-ipv6` (dual stack). */
  publicIPv6?: string;
}

class InterfaceSelectionError extends Error {}

/** Usable address of a link: global before link-local, permanent before dynamic, stable before temporary. */
export function interfaceAddress(host: HostView, index: number, family: 4 | 6 = 4): string | undefined {
  const rank = (a: HostAddress) => (a.scope === 'universe' ? 0 : 4) + (a.permanent ? 0 : 2) + (a.temporary ? 1 : 0);
  const list = family === 6 ? (host.addressesV6 ?? []) : host.addresses;
  const usable = list.filter((a) => a.index === index && !a.deprecated && a.scope !== 'host');
  usable.sort((a, b) => rank(a) - rank(b));
  return usable[0]?.address;
}

function linkByIndex(host: HostView, index: number): HostLink {
  const l = host.links.find((x) => x.index === index);
  if (!l) throw new InterfaceSelectionError(`no interface with index ${index}`);
  return l;
}

/** Same address whatever its spelling (`FC00::1` and `fc00:0::1`). */
function sameIPv6(a: string, b: string): boolean {
  return isIPv6(a) && isIPv6(b) && parseIPv6(a) === parseIPv6(b);
}

function ownerV6(host: HostView, ip: string): HostAddress | undefined {
  return (host.addressesV6 ?? []).find((a) => sameIPv6(a.address, ip));
}

interface Match {
  link: HostLink;
  addr?: string;
  addrV6?: string;
}

const v4Wanted = (o: SelectionOptions) => o.ipv4 !== false;

function finish(host: HostView, o: SelectionOptions, m: Match): ExternalInterface {
  const { link } = m;
  if (link.mtu === 0) throw new InterfaceSelectionError(`failed to determine MTU for ${link.name} interface`);
  let ifaceAddr = '';
  let extAddr = '';
  if (v4Wanted(o)) {
    const publicIP = o.publicIP;
    ifaceAddr = m.addr ?? interfaceAddress(host, link.index) ?? '';
    if (!ifaceAddr) throw new InterfaceSelectionError(`failed to find IPv4 address for interface ${link.name}`);
    if (publicIP && !isIPv4(publicIP)) {
      throw new InterfaceSelectionError(
        `invalid public IP address "${publicIP}": pass an IPv4 address such as --public-ip=192.168.1.11`,
      );
    }
    extAddr = publicIP || ifaceAddr;
    log.info(`Using interface with name ${link.name} and address ${ifaceAddr}`);
    log.info(`Using ${extAddr} as external address`);
  }
  if (!o.ipv6) return { name: link.name, index: link.index, mtu: link.mtu, ifaceAddr, extAddr };
  const publicIPv6 = o.publicIPv6 ?? '';
  if (publicIPv6 && !isIPv6(publicIPv6)) {
    throw new InterfaceSelectionError(
      `invalid public IPv6 address "${publicIPv6}": pass an IPv6 address such as --public-ipv6=fc00::11`,
    );
  }
  const ifaceAddrV6 = m.addrV6 ?? interfaceAddress(host, link.index, 6);
  if (!ifaceAddrV6) throw new InterfaceSelectionError(`failed to find IPv6 address for interface ${link.name}`);
  // Peers and the lease get Go's canonical form.
  const extAddrV6 = formatIPv6(parseIPv6(publicIPv6 || ifaceAddrV6));
  log.info(`Using interface with name ${link.name} and v6 address ${ifaceAddrV6}`);
  log.info(`Using ${extAddrV6} as external IPv6 address`);
  return { name: link.name, index: link.index, mtu: link.mtu, ifaceAddr, extAddr, ifaceAddrV6, extAddrV6 };
}

function byIpOrName(host: HostView, value: string, ipv6: boolean): Match {
  if (isIPv4(value)) {
    const a = host.addresses.find((x) => x.address === value);
    if (!a) throw new InterfaceSelectionError(`no interface with IP address ${value} found`);
    return { link: linkByIndex(host, a.index), addr: value };
  }
  if (ipv6 && isIPv6(value)) {
    const a = ownerV6(host, value);
    if (!a) throw new InterfaceSelectionError(`no interface with IPv6 address ${value} found`);
    return { link: linkByIndex(host, a.index), addrV6: a.address };
  }
  const link = host.links.find((l) => l.name === value);
  if (!link) throw new InterfaceSelectionError(`no interface named "${value}" found`);
  return { link };
}

function byRegex(host: HostView, pattern: string, ipv6: boolean, ipv4: boolean): Match | undefined {
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (e) {
    throw new InterfaceSelectionError(
      `--iface-regex "${pattern}" is not a valid regular expression: ${errorMessage(e)}`,
    );
  }
  // First every address, then every name: an address match wins over a name match.
  if (!ipv4) {
    // IPv6-only: the v6 addresses are the ones that count.
    for (const a of host.addressesV6 ?? [])
      if (re.test(a.address)) return { link: linkByIndex(host, a.index), addrV6: a.address };
  } else if (ipv6) {
    // Dual stack: one interface must match with a v4 and a v6 address.
    for (const a of host.addresses) {
      if (!re.test(a.address)) continue;
      const v6 = (host.addressesV6 ?? []).find((b) => b.index === a.index && re.test(b.address));
      if (v6) return { link: linkByIndex(host, a.index), addr: a.address, addrV6: v6.address };
    }
  } else {
    for (const a of host.addresses)
      if (re.test(a.address)) return { link: linkByIndex(host, a.index), addr: a.address };
  }
  for (const l of host.links) if (re.test(l.name)) return { link: l };
  return undefined;
}

function describeInterfaces(host: HostView): string {
  const all = [...host.addresses, ...(host.addressesV6 ?? [])];
  return host.links
    .map(
      (l) =>
        `${l.name}:[${all
          .filter((a) => a.index === l.index)
          .map((a) => a.address)
          .join(' ')}]`,
    )
    .join(' ');
}

/** No interface flags: the owner of --public-ip(v6), else the default route's interface (both families on one). */
function byPublicIPOrDefaultRoute(o: SelectionOptions, host: HostView): ExternalInterface {
  const ipv6 = o.ipv6 === true;
  if (!v4Wanted(o)) return byPublicIPv6OrDefaultRoute(o, host);
  if (o.publicIP) {
    const owner = host.addresses.find((a) => a.address === o.publicIP);
    if (owner) {
      const ownerV6Addr = ipv6 && o.publicIPv6 ? ownerV6(host, o.publicIPv6) : undefined;
      if (ownerV6Addr && ownerV6Addr.index !== owner.index) {
        throw new InterfaceSelectionError(
          `public IP ${o.publicIP} is on ${linkByIndex(host, owner.index).name} but public IPv6 ${o.publicIPv6} is on ` +
            `${linkByIndex(host, ownerV6Addr.index).name}: both must be on the same interface`,
        );
      }
      return finish(host, o, { link: linkByIndex(host, owner.index), addr: o.publicIP, addrV6: ownerV6Addr?.address });
    }
    log.info(`No interface owns the public IP ${o.publicIP}; using the default route's interface`);
  }
  if (host.defaultRouteIndex === undefined) {
    throw new InterfaceSelectionError('no default route found: pass --iface, --iface-regex or --iface-can-reach');
  }
  const link = linkByIndex(host, host.defaultRouteIndex);
  if (ipv6) {
    if (host.defaultRouteIndexV6 === undefined) {
      throw new InterfaceSelectionError(
        'no IPv6 default route (::/0) found: add one on the IPv4 default route interface or pass --iface',
      );
    }
    if (host.defaultRouteIndexV6 !== host.defaultRouteIndex) {
      throw new InterfaceSelectionError(
        `v6 default route interface ${linkByIndex(host, host.defaultRouteIndexV6).name} must be the same with v4 default route interface ${link.name}`,
      );
    }
  }
  return finish(host, o, { link });
}

/** IPv6-only: the owner of --public-ipv6, else the `::/0` default route's interface. */
function byPublicIPv6OrDefaultRoute(o: SelectionOptions, host: HostView): ExternalInterface {
  if (o.publicIPv6) {
    const owner = ownerV6(host, o.publicIPv6);
    if (owner) return finish(host, o, { link: linkByIndex(host, owner.index), addrV6: owner.address });
    log.info(`No interface owns the public IPv6 ${o.publicIPv6}; using the IPv6 default route's interface`);
  }
  if (host.defaultRouteIndexV6 === undefined) {
    throw new InterfaceSelectionError(
      'no IPv6 default route (::/0) found: add one, or pass --iface, --iface-regex or --iface-can-reach',
    );
  }
  return finish(host, o, { link: linkByIndex(host, host.defaultRouteIndexV6) });
}

export async function selectExternalInterface(o: SelectionOptions, host: HostView): Promise<ExternalInterface> {
  if (o.iface.length === 0 && o.ifaceRegex.length === 0 && !o.ifaceCanReach) {
    try {
      return byPublicIPOrDefaultRoute(o, host);
    } catch (e) {
      throw new InterfaceSelectionError(`Failed to find any valid interface to use: ${errorMessage(e)}`);
    }
  }
  for (const value of o.iface) {
    try {
      return finish(host, o, byIpOrName(host, value, o.ipv6 === true));
    } catch (e) {
      log.error(`Could not find valid interface matching ${value}: ${errorMessage(e)}`);
    }
  }
  for (const pattern of o.ifaceRegex) {
    const m = byRegex(host, pattern, o.ipv6 === true, v4Wanted(o));
    if (m) {
      try {
        return finish(host, o, m);
      } catch (e) {
        log.error(`Interface matching regex ${pattern} is not usable: ${errorMessage(e)}`);
      }
    } else {
      log.error(`Could not match regex ${pattern} against any address or name of: ${describeInterfaces(host)}`);
    }
  }
  if (o.ifaceCanReach) {
    const v6 = o.ipv6 === true && isIPv6(o.ifaceCanReach);
    if (!v4Wanted(o) && !v6) {
      throw new InterfaceSelectionError(
        `--iface-can-reach "${o.ifaceCanReach}" is not an IPv6 address (the network is IPv6-only)`,
      );
    }
    if (!isIPv4(o.ifaceCanReach) && !v6) {
      throw new InterfaceSelectionError(`--iface-can-reach "${o.ifaceCanReach}" is not an IPv4 address`);
    }
    try {
      const r = await host.routeGet(o.ifaceCanReach);
      const link = linkByIndex(host, r.index);
      return finish(host, o, v6 ? { link, addrV6: r.prefsrc } : { link, addr: r.prefsrc });
    } catch (e) {
      log.error(`No route to ${o.ifaceCanReach}: ${errorMessage(e)}`);
    }
  }
  throw new InterfaceSelectionError(
    'Failed to find interface to use that matches the interfaces and/or regexes provided',
  );
}
