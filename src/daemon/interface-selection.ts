// Picks the external interface (§1.3 of the spec): --iface, --iface-regex, --iface-can-reach, --public-ip or the
// default route. Pure over a HostView so every rule is testable without root.
import type { ExternalInterface } from '../backend/backend.ts';
import { isIPv4 } from '../ip/ipv4.ts';
import { logger } from '../log/log.ts';

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
  /** Kernel route lookup (`ip route get`). */
  routeGet(dst: string): Promise<{ index: number; prefsrc?: string }>;
}

export interface SelectionOptions {
  iface: string[];
  ifaceRegex: string[];
  ifaceCanReach: string;
  publicIP: string;
}

export class InterfaceSelectionError extends Error {}

/** Usable address of a link: global before link-local, permanent before dynamic, stable before temporary. */
export function interfaceAddress(host: HostView, index: number): string | undefined {
  const rank = (a: HostAddress) => (a.scope === 'universe' ? 0 : 4) + (a.permanent ? 0 : 2) + (a.temporary ? 1 : 0);
  const usable = host.addresses.filter((a) => a.index === index && !a.deprecated && a.scope !== 'host');
  usable.sort((a, b) => rank(a) - rank(b));
  return usable[0]?.address;
}

function linkByIndex(host: HostView, index: number): HostLink {
  const l = host.links.find((x) => x.index === index);
  if (!l) throw new InterfaceSelectionError(`no interface with index ${index}`);
  return l;
}

function finish(host: HostView, link: HostLink, addr: string | undefined, publicIP: string): ExternalInterface {
  const ifaceAddr = addr ?? interfaceAddress(host, link.index);
  if (!ifaceAddr) throw new InterfaceSelectionError(`failed to find IPv4 address for interface ${link.name}`);
  if (link.mtu === 0) throw new InterfaceSelectionError(`failed to determine MTU for ${link.name} interface`);
  if (publicIP && !isIPv4(publicIP)) {
    throw new InterfaceSelectionError(`invalid public IP address "${publicIP}": pass an IPv4 address such as --public-ip=192.168.1.11`);
  }
  const extAddr = publicIP || ifaceAddr;
  log.info(`Using interface with name ${link.name} and address ${ifaceAddr}`);
  log.info(`Using ${extAddr} as external address`);
  return { name: link.name, index: link.index, mtu: link.mtu, ifaceAddr, extAddr };
}

function byIpOrName(host: HostView, value: string): { link: HostLink; addr?: string } {
  if (isIPv4(value)) {
    const a = host.addresses.find((x) => x.address === value);
    if (!a) throw new InterfaceSelectionError(`no interface with IP address ${value} found`);
    return { link: linkByIndex(host, a.index), addr: value };
  }
  const link = host.links.find((l) => l.name === value);
  if (!link) throw new InterfaceSelectionError(`no interface named "${value}" found`);
  return { link };
}

function byRegex(host: HostView, pattern: string): { link: HostLink; addr?: string } | undefined {
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (e) {
    throw new InterfaceSelectionError(`--iface-regex "${pattern}" is not a valid regular expression: ${(e as Error).message}`);
  }
  // First every address, then every name: an address match wins over a name match.
  for (const a of host.addresses) if (re.test(a.address)) return { link: linkByIndex(host, a.index), addr: a.address };
  for (const l of host.links) if (re.test(l.name)) return { link: l };
  return undefined;
}

function describeInterfaces(host: HostView): string {
  return host.links.map((l) => `${l.name}:[${host.addresses.filter((a) => a.index === l.index).map((a) => a.address).join(' ')}]`).join(' ');
}

export async function selectExternalInterface(o: SelectionOptions, host: HostView): Promise<ExternalInterface> {
  if (o.iface.length === 0 && o.ifaceRegex.length === 0 && !o.ifaceCanReach) {
    try {
      if (o.publicIP) {
        const owner = host.addresses.find((a) => a.address === o.publicIP);
        if (owner) return finish(host, linkByIndex(host, owner.index), o.publicIP, o.publicIP);
        log.info(`No interface owns the public IP ${o.publicIP}; using the default route's interface`);
      }
      if (host.defaultRouteIndex === undefined) {
        throw new InterfaceSelectionError('no default route found: pass --iface, --iface-regex or --iface-can-reach');
      }
      return finish(host, linkByIndex(host, host.defaultRouteIndex), undefined, o.publicIP);
    } catch (e) {
      throw new InterfaceSelectionError(`Failed to find any valid interface to use: ${(e as Error).message}`);
    }
  }
  for (const value of o.iface) {
    try {
      const m = byIpOrName(host, value);
      return finish(host, m.link, m.addr, o.publicIP);
    } catch (e) {
      log.error(`Could not find valid interface matching ${value}: ${(e as Error).message}`);
    }
  }
  for (const pattern of o.ifaceRegex) {
    const m = byRegex(host, pattern);
    if (m) {
      try {
        return finish(host, m.link, m.addr, o.publicIP);
      } catch (e) {
        log.error(`Interface matching regex ${pattern} is not usable: ${(e as Error).message}`);
      }
    } else {
      log.error(`Could not match regex ${pattern} against any address or name of: ${describeInterfaces(host)}`);
    }
  }
  if (o.ifaceCanReach) {
    if (!isIPv4(o.ifaceCanReach)) {
      throw new InterfaceSelectionError(`--iface-can-reach "${o.ifaceCanReach}" is not an IPv4 address`);
    }
    try {
      const r = await host.routeGet(o.ifaceCanReach);
      return finish(host, linkByIndex(host, r.index), r.prefsrc, o.publicIP);
    } catch (e) {
      log.error(`No route to ${o.ifaceCanReach}: ${(e as Error).message}`);
    }
  }
  throw new InterfaceSelectionError('Failed to find interface to use that matches the interfaces and/or regexes provided');
}
