// Library messages (netlink@0.3.0 shapes) → our plain values: links, addresses and single route lookups (the tables
// read by the thousand are decoded by decode.ts).
import { ifla, rt } from './library.ts';
import { bufferToIp, bufferToMac, enumName, scopeName } from './codec.ts';
import { RTNH_F_ONLINK } from './rtnl.ts';
import type { AddressInfo, LinkInfo, RouteInfo, VxlanInfo } from './types.ts';

export function toLink(m: rt.LinkMessage): LinkInfo {
  const a = m.attrs;
  const link: LinkInfo = {
    index: m.data.index ?? 0,
    name: a.ifname ?? '',
    mtu: a.mtu ?? 0,
    mac: a.address && a.address.length === 6 ? bufferToMac(a.address) : null,
    up: m.data.flags?.up === true,
  };
  if (a.master !== undefined) link.master = a.master;
  if (a.linkinfo) {
    const info = ifla.parseInfo(a.linkinfo);
    if (info.kind) link.kind = info.kind;
    if (info.kind === 'vxlan' && info.data) link.vxlan = toVxlan(ifla.parseVxlan(info.data));
  }
  return link;
}

function toVxlan(v: ifla.Vxlan): VxlanInfo {
  const ip = (b?: Buffer) =>
    b && (b.length === 4 || b.length === 16) && !b.every((x) => x === 0) ? bufferToIp(b) : null;
  return {
    id: v.id ?? 0,
    local: ip(v.local) ?? ip(v.local6),
    link: v.link ? v.link : null,
    port: v.port && v.port.length === 2 ? v.port.readUInt16BE(0) : 0,
    learning: (v.learning ?? 0) !== 0,
    gbp: v.gbp === true,
    group: ip(v.group) ?? ip(v.group6),
    l2miss: (v.l2miss ?? 0) !== 0,
    l3miss: (v.l3miss ?? 0) !== 0,
  };
}

export function toAddress(m: rt.AddressMessage): AddressInfo | undefined {
  const raw = m.attrs.local ?? m.attrs.address;
  if (!raw) return undefined;
  // IFA_FLAGS (32 bit) supersedes the 8-bit flags of the header when present.
  const flags = m.attrs.flags ?? m.data.flags ?? {};
  const out: AddressInfo = {
    index: m.data.index ?? 0,
    family: m.data.family === 10 ? 6 : 4,
    address: bufferToIp(raw),
    prefixLen: m.data.prefixlen ?? 0,
    scope: scopeName(m.data.scope),
    permanent: flags.permanent === true,
    deprecated: flags.deprecated === true,
    // IFA_F_SECONDARY and IFA_F_TEMPORARY share a bit: for IPv6 it means a privacy (temporary) address.
    temporary: m.data.family === 10 && flags.secondary === true,
  };
  if (m.attrs.label) out.label = m.attrs.label;
  return out;
}

export function toRoute(m: rt.RouteMessage): RouteInfo {
  const d = m.data;
  const a = m.attrs;
  const r: RouteInfo = {
    dst: a.dst ? `${bufferToIp(a.dst)}/${d.dstLen ?? 0}` : null,
    scope: scopeName(d.scope as number | string | undefined),
    protocol: enumName(d.protocol as number | string | undefined),
    onlink: (rt.formatRouteFlags(d.flags ?? {}) & RTNH_F_ONLINK) !== 0,
    table: a.table ?? d.table ?? 0,
    type: enumName(d.type as number | string | undefined),
  };
  if (a.gateway) r.gateway = bufferToIp(a.gateway);
  if (a.oif !== undefined) r.oif = a.oif;
  if (a.prefsrc) r.prefsrc = bufferToIp(a.prefsrc);
  if (a.priority !== undefined) r.priority = a.priority;
  return r;
}
