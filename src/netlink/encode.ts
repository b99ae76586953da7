// Our own rtnetlink encoder for the entries flanneld writes by the thousand (routes, neighbours, FDB entries): each
// request is one nlmsghdr + fixed struct + attributes built straight into a Buffer, so many go in one datagram.
// Pure: no I/O. Layouts from linux/netlink.h, linux/rtnetlink.h and linux/neighbour.h.
import { afOf, familyOf, ipToBuffer, macToBuffer, parseCidr, scopeNumber } from './codec.ts';
import { RT_TABLE_MAIN, type FdbSpec, type NeighbourSpec, type RouteSpec } from './types.ts';

import {
  AF_BRIDGE,
  NDA_DST,
  NDA_LLADDR,
  NDMSG_LEN,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLM_F_ACK,
  NLM_F_APPEND,
  NLM_F_CREATE,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  NTF_SELF,
  NUD_PERMANENT,
  RTA_DST,
  RTA_GATEWAY,
  RTA_OIF,
  RTA_PRIORITY,
  RTA_TABLE,
  RTMSG_LEN,
  RTM_DELNEIGH,
  RTM_DELROUTE,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RTNH_F_ONLINK,
  RTN_BLACKHOLE,
  RTN_UNICAST,
  RT_TABLE_COMPAT,
} from './rtnl.ts';

const PROTOCOLS: Record<string, number> = { unspec: 0, redirect: 1, kernel: 2, boot: 3, static: 4 };

/** One request before its header: message type, extra header flags, the body after nlmsghdr. */
export interface Request {
  type: number;
  flags: number;
  body: Buffer;
}

type Attr = [type: number, value: Buffer];

const align4 = (n: number) => (n + 3) & ~3;

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}

/** The fixed struct followed by rtattrs (each 4-byte aligned, zero padded). */
function body(fixed: Buffer, attrs: Attr[]): Buffer {
  let len = fixed.length;
  for (const [, v] of attrs) len += align4(4 + v.length);
  // From the shared pool (a request is copied into its datagram right away); the padding must still be zero.
  const out = Buffer.allocUnsafe(len).fill(0);
  fixed.copy(out, 0);
  let at = fixed.length;
  for (const [type, v] of attrs) {
    out.writeUInt16LE(4 + v.length, at);
    out.writeUInt16LE(type, at + 2);
    v.copy(out, at + 4);
    at += align4(4 + v.length);
  }
  return out;
}

/** RTM_NEWROUTE (replace) or RTM_DELROUTE, the same fields as `ip route replace|del`. */
export function routeRequest(spec: RouteSpec, forDelete: boolean): Request {
  const c = parseCidr(spec.dst);
  const table = spec.table ?? RT_TABLE_MAIN;
  const blackhole = spec.type === 'blackhole';
  const fixed = Buffer.allocUnsafe(RTMSG_LEN).fill(0);
  fixed[0] = afOf(c.family);
  fixed[1] = c.prefixLen;
  fixed[4] = table < 256 ? table : RT_TABLE_COMPAT;
  if (forDelete) {
    // Scope NOWHERE and protocol/type 0 match any: the kernel deletes by the fields given.
    fixed[6] = 255;
    fixed[7] = blackhole ? RTN_BLACKHOLE : 0;
  } else {
    const protocol = PROTOCOLS[spec.protocol ?? 'boot'];
    if (protocol === undefined) throw new Error(`unknown route protocol "${spec.protocol}"`);
    fixed[5] = protocol;
    fixed[6] = scopeNumber(spec.scope ?? (spec.gateway || blackhole ? 'universe' : 'link'));
    fixed[7] = blackhole ? RTN_BLACKHOLE : RTN_UNICAST;
  }
  fixed.writeUInt32LE(spec.onlink ? RTNH_F_ONLINK : 0, 8);
  const attrs: Attr[] = [[RTA_DST, ipToBuffer(c.ip)]];
  if (table >= 256) attrs.push([RTA_TABLE, u32(table)]);
  if (spec.gateway) attrs.push([RTA_GATEWAY, ipToBuffer(spec.gateway)]);
  if (spec.oif !== undefined) attrs.push([RTA_OIF, u32(spec.oif)]);
  if (spec.priority !== undefined) attrs.push([RTA_PRIORITY, u32(spec.priority)]);
  return forDelete
    ? { type: RTM_DELROUTE, flags: 0, body: body(fixed, attrs) }
    : { type: RTM_NEWROUTE, flags: NLM_F_CREATE | NLM_F_REPLACE, body: body(fixed, attrs) };
}

function ndmsg(family: number, index: number, state: number, flags: number): Buffer {
  const fixed = Buffer.allocUnsafe(NDMSG_LEN).fill(0);
  fixed[0] = family;
  fixed.writeInt32LE(index, 4);
  fixed.writeUInt16LE(state, 8);
  fixed[10] = flags;
  return fixed;
}

/** `ip neigh replace <ip> lladdr <mac> dev <index> nud permanent`. */
export function neighbourReplace(n: NeighbourSpec): Request {
  const fixed = ndmsg(afOf(familyOf(n.ip)), n.index, NUD_PERMANENT, 0);
  return {
    type: RTM_NEWNEIGH,
    flags: NLM_F_CREATE | NLM_F_REPLACE,
    body: body(fixed, [
      [NDA_DST, ipToBuffer(n.ip)],
      [NDA_LLADDR, macToBuffer(n.mac)],
    ]),
  };
}

/** `ip neigh del <ip> dev <index>`. */
export function neighbourDelete(n: { index: number; ip: string }): Request {
  return {
    type: RTM_DELNEIGH,
    flags: 0,
    body: body(ndmsg(afOf(familyOf(n.ip)), n.index, 0, 0), [[NDA_DST, ipToBuffer(n.ip)]]),
  };
}

function fdbAttrs(e: FdbSpec): Attr[] {
  const attrs: Attr[] = [[NDA_LLADDR, macToBuffer(e.mac)]];
  if (e.dst) attrs.push([NDA_DST, ipToBuffer(e.dst)]);
  return attrs;
}

/** `bridge fdb append|replace <mac> dev <index> [dst <ip>] self permanent`. */
export function fdbWrite(e: FdbSpec, how: 'append' | 'replace'): Request {
  return {
    type: RTM_NEWNEIGH,
    flags: NLM_F_CREATE | (how === 'append' ? NLM_F_APPEND : NLM_F_REPLACE),
    body: body(ndmsg(AF_BRIDGE, e.index, NUD_PERMANENT, NTF_SELF), fdbAttrs(e)),
  };
}

/** `bridge fdb del <mac> dev <index> [dst <ip>] self`. */
export function fdbDelete(e: FdbSpec): Request {
  return { type: RTM_DELNEIGH, flags: 0, body: body(ndmsg(AF_BRIDGE, e.index, 0, NTF_SELF), fdbAttrs(e)) };
}

/** Writes the request with its nlmsghdr (REQUEST|ACK set) at `at` in `out`; returns the bytes written. */
export function writeMessage(out: Buffer, at: number, r: Request, seq: number, port: number): number {
  const len = NLMSG_HDRLEN + r.body.length;
  out.writeUInt32LE(len, at);
  out.writeUInt16LE(r.type, at + 4);
  out.writeUInt16LE(r.flags | NLM_F_REQUEST | NLM_F_ACK, at + 6);
  out.writeUInt32LE(seq >>> 0, at + 8);
  out.writeUInt32LE(port >>> 0, at + 12);
  r.body.copy(out, at + NLMSG_HDRLEN);
  return align4(len);
}

/** The size writeMessage takes for the request. */
export function messageSize(r: Request): number {
  return align4(NLMSG_HDRLEN + r.body.length);
}

/** An NLMSG_ERROR message's errno (0 is the ACK), or undefined when the message is something else. */
export function ackErrno(type: number, data: Buffer): number | undefined {
  if (type !== NLMSG_ERROR || data.length < 4) return undefined;
  const error = data.readInt32LE(0);
  return error === 0 ? 0 : -error;
}
