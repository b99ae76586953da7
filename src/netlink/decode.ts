// Our own rtnetlink decoder for the tables flanneld reads by the thousand (route, neighbour and FDB dumps, and their
// notifications): the fixed struct and the few attributes RouteInfo / NeighbourInfo / FdbEntry carry, read straight
// from the message payload. The library's generic parser builds an object per attribute and per flag bit, which at
// 15,000 entries is most of a startup sweep. Pure: no I/O. Layouts from linux/rtnetlink.h and linux/neighbour.h.
import { rt } from './library.ts';
import { bufferToIp, bufferToMac, enumName, scopeName } from './codec.ts';
import {
  NDA_DST,
  NDA_LLADDR,
  NDA_MASTER,
  NDMSG_LEN,
  NTF_SELF,
  NUD_PERMANENT,
  RTA_DST,
  RTA_GATEWAY,
  RTA_OIF,
  RTA_PREFSRC,
  RTA_PRIORITY,
  RTA_TABLE,
  RTMSG_LEN,
  RTNH_F_ONLINK,
} from './rtnl.ts';
import type { FdbEntry, NeighbourInfo, RouteInfo } from './types.ts';

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

/**
 * Calls `on` for each attribute after the fixed struct (type with the nested and byte-order bits masked, and where
 * its value lies), without a Buffer or Map per attribute: a dump at 5,000 peers has 15,000 messages.
 */
function eachAttribute(payload: Buffer, from: number, on: (type: number, start: number, len: number) => void): void {
  let at = from;
  while (at + 4 <= payload.length) {
    const len = payload.readUInt16LE(at);
    if (len < 4 || at + len > payload.length) break;
    on(payload.readUInt16LE(at + 2) & 0x3fff, at + 4, len - 4);
    at += (len + 3) & ~3;
  }
}

function ipAt(payload: Buffer, start: number, len: number): string {
  return len === 4
    ? `${payload[start]}.${payload[start + 1]}.${payload[start + 2]}.${payload[start + 3]}`
    : bufferToIp(payload.subarray(start, start + len));
}

const u32At = (payload: Buffer, start: number, len: number) => (len >= 4 ? payload.readUInt32LE(start) : undefined);

function tooShort(what: string, payload: Buffer, min: number): Error {
  return new Error(`${what} message of ${payload.length} bytes is shorter than its ${min}-byte header`);
}

/** An RTM_NEWROUTE / RTM_DELROUTE payload (struct rtmsg + attributes). */
export function decodeRoute(payload: Buffer): RouteInfo {
  if (payload.length < RTMSG_LEN) throw tooShort('route', payload, RTMSG_LEN);
  let dst: string | undefined;
  let gateway: string | undefined;
  let prefsrc: string | undefined;
  let oif: number | undefined;
  let priority: number | undefined;
  let table: number | undefined;
  eachAttribute(payload, RTMSG_LEN, (type, start, len) => {
    if (type === RTA_DST) dst = ipAt(payload, start, len);
    else if (type === RTA_GATEWAY) gateway = ipAt(payload, start, len);
    else if (type === RTA_OIF) oif = u32At(payload, start, len);
    else if (type === RTA_PREFSRC) prefsrc = ipAt(payload, start, len);
    else if (type === RTA_PRIORITY) priority = u32At(payload, start, len);
    else if (type === RTA_TABLE) table = u32At(payload, start, len);
  });
  const protocol = payload[5]!;
  const type = payload[7]!;
  const r: RouteInfo = {
    dst: dst !== undefined ? `${dst}/${payload[1]}` : null,
    scope: scopeName(payload[6]),
    protocol: enumName(rt.RouteProtocol[protocol] ?? protocol),
    onlink: (payload.readUInt32LE(8) & RTNH_F_ONLINK) !== 0,
    table: table ?? payload[4]!,
    type: enumName(rt.RouteType[type] ?? type),
  };
  if (gateway !== undefined) r.gateway = gateway;
  if (oif !== undefined) r.oif = oif;
  if (prefsrc !== undefined) r.prefsrc = prefsrc;
  if (priority !== undefined) r.priority = priority;
  return r;
}

interface Ndmsg {
  ifindex: number;
  state: number;
  flags: number;
  dst?: string;
  mac?: string;
  master?: number;
}

function ndmsg(payload: Buffer): Ndmsg {
  if (payload.length < NDMSG_LEN) throw tooShort('neighbour', payload, NDMSG_LEN);
  const m: Ndmsg = {
    ifindex: payload.readInt32LE(4),
    state: payload.readUInt16LE(8),
    flags: payload[10]!,
  };
  eachAttribute(payload, NDMSG_LEN, (type, start, len) => {
    if (type === NDA_DST) m.dst = ipAt(payload, start, len);
    // Only a 6-byte link-layer address is a MAC.
    else if (type === NDA_LLADDR && len === 6) m.mac = bufferToMac(payload.subarray(start, start + 6));
    else if (type === NDA_MASTER) m.master = u32At(payload, start, len);
  });
  return m;
}

/** An RTM_NEWNEIGH / RTM_DELNEIGH payload of family AF_INET or AF_INET6; undefined without an address. */
export function decodeNeighbour(payload: Buffer): NeighbourInfo | undefined {
  const m = ndmsg(payload);
  if (m.dst === undefined) return undefined;
  return {
    index: m.ifindex,
    ip: m.dst,
    mac: m.mac ?? null,
    permanent: (m.state & NUD_PERMANENT) !== 0,
    state: NUD_NAMES.filter(([bit]) => (m.state & bit) !== 0).map(([, name]) => name),
  };
}

/** An RTM_NEWNEIGH / RTM_DELNEIGH payload of family AF_BRIDGE (an FDB entry); undefined without a MAC. */
export function decodeFdb(payload: Buffer): FdbEntry | undefined {
  const m = ndmsg(payload);
  if (m.mac === undefined) return undefined;
  const e: FdbEntry = {
    index: m.ifindex,
    mac: m.mac,
    self: (m.flags & NTF_SELF) !== 0,
    permanent: (m.state & NUD_PERMANENT) !== 0,
  };
  if (m.dst !== undefined) e.dst = m.dst;
  if (m.master !== undefined) e.master = m.master;
  return e;
}
