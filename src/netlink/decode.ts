// Our own rtnetlink decoder for the tables flanneld reads by the thousand (route, neighbour and FDB dumps, and their
// notifications): the fixed struct and the few attributes RouteInfo / NeighbourInfo / FdbEntry carry, read straight
// from the message payload. The library's generic parser builds an object per attribute and per flag bit, which at
// 15,000 entries is most of a startup sweep. Pure: no I/O. Layouts from linux/rtnetlink.h and linux/neighbour.h.
import { rt } from './library.ts';
import { bufferToIp, bufferToMac, enumName, scopeName } from './codec.ts';
import { RTNH_F_ONLINK } from './encode.ts';
import type { FdbEntry, NeighbourInfo, RouteInfo } from './types.ts';

const RTMSG_LEN = 12;
const NDMSG_LEN = 12;

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_PREFSRC = 7;
const RTA_TABLE = 15;
const NDA_DST = 1;
const NDA_LLADDR = 2;
const NDA_MASTER = 9;

const NTF_SELF = 0x02;
const NUD_PERMANENT = 0x80;
/** NUD_* bits in the order `ip neigh` (and the library) name them. */
const NUD_NAMES: [number, string][] = [
  [0x01, 'incomplete'],
  [0x02, 'reachable'],
  [0x04, 'stale'],
  [0x08, 'delay'],
  [0x10, 'probe'],
  [0x20, 'failed'],
  [0x40, 'noarp'],
  [0x80, 'permanent'],
];

/** The family byte every rtmsg and ndmsg starts with. */
export function messageFamily(payload: Buffer): number {
  return payload[0] ?? 0;
}

/** Each attribute after the fixed struct, by type (nested and byte-order bits masked); a later duplicate wins. */
function attributes(payload: Buffer, from: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let at = from;
  while (at + 4 <= payload.length) {
    const len = payload.readUInt16LE(at);
    if (len < 4 || at + len > payload.length) break;
    out.set(payload.readUInt16LE(at + 2) & 0x3fff, payload.subarray(at + 4, at + len));
    at += (len + 3) & ~3;
  }
  return out;
}

const u32 = (b: Buffer | undefined) => (b && b.length >= 4 ? b.readUInt32LE(0) : undefined);

function tooShort(what: string, payload: Buffer, min: number): Error {
  return new Error(`${what} message of ${payload.length} bytes is shorter than its ${min}-byte header`);
}

/** An RTM_NEWROUTE / RTM_DELROUTE payload (struct rtmsg + attributes). */
export function decodeRoute(payload: Buffer): RouteInfo {
  if (payload.length < RTMSG_LEN) throw tooShort('route', payload, RTMSG_LEN);
  const a = attributes(payload, RTMSG_LEN);
  const dst = a.get(RTA_DST);
  const protocol = payload[5]!;
  const type = payload[7]!;
  const r: RouteInfo = {
    dst: dst ? `${bufferToIp(dst)}/${payload[1]}` : null,
    scope: scopeName(payload[6]),
    protocol: enumName(rt.RouteProtocol[protocol] ?? protocol),
    onlink: (payload.readUInt32LE(8) & RTNH_F_ONLINK) !== 0,
    table: u32(a.get(RTA_TABLE)) ?? payload[4]!,
    type: enumName(rt.RouteType[type] ?? type),
  };
  const gateway = a.get(RTA_GATEWAY);
  if (gateway) r.gateway = bufferToIp(gateway);
  const oif = u32(a.get(RTA_OIF));
  if (oif !== undefined) r.oif = oif;
  const prefsrc = a.get(RTA_PREFSRC);
  if (prefsrc) r.prefsrc = bufferToIp(prefsrc);
  const priority = u32(a.get(RTA_PRIORITY));
  if (priority !== undefined) r.priority = priority;
  return r;
}

interface Ndmsg {
  ifindex: number;
  state: number;
  flags: number;
  attrs: Map<number, Buffer>;
}

function ndmsg(payload: Buffer): Ndmsg {
  if (payload.length < NDMSG_LEN) throw tooShort('neighbour', payload, NDMSG_LEN);
  return {
    ifindex: payload.readInt32LE(4),
    state: payload.readUInt16LE(8),
    flags: payload[10]!,
    attrs: attributes(payload, NDMSG_LEN),
  };
}

/** An RTM_NEWNEIGH / RTM_DELNEIGH payload of family AF_INET or AF_INET6; undefined without an address. */
export function decodeNeighbour(payload: Buffer): NeighbourInfo | undefined {
  const m = ndmsg(payload);
  const dst = m.attrs.get(NDA_DST);
  if (!dst) return undefined;
  const lladdr = m.attrs.get(NDA_LLADDR);
  return {
    index: m.ifindex,
    ip: bufferToIp(dst),
    mac: lladdr && lladdr.length === 6 ? bufferToMac(lladdr) : null,
    permanent: (m.state & NUD_PERMANENT) !== 0,
    state: NUD_NAMES.filter(([bit]) => (m.state & bit) !== 0).map(([, name]) => name),
  };
}

/** An RTM_NEWNEIGH / RTM_DELNEIGH payload of family AF_BRIDGE (an FDB entry); undefined without a MAC. */
export function decodeFdb(payload: Buffer): FdbEntry | undefined {
  const m = ndmsg(payload);
  const lladdr = m.attrs.get(NDA_LLADDR);
  if (lladdr?.length !== 6) return undefined;
  const e: FdbEntry = {
    index: m.ifindex,
    mac: bufferToMac(lladdr),
    self: (m.flags & NTF_SELF) !== 0,
    permanent: (m.state & NUD_PERMANENT) !== 0,
  };
  const dst = m.attrs.get(NDA_DST);
  if (dst) e.dst = bufferToIp(dst);
  const master = u32(m.attrs.get(NDA_MASTER));
  if (master !== undefined) e.master = master;
  return e;
}
