// Our rtnetlink handle: reads, writes and events over netlink@0.3.0, with timeouts, errno codes and a window.
import { AttrStream, createRtNetlink, FlagsNew, ifla, type RtNetlinkSocket } from './library.ts';
import { logger } from '../log/log.ts';
import { inNetns } from '../native/index.ts';
import { afOf, familyOf, ipToBuffer, macToBuffer, parseCidr } from './codec.ts';
import { WriteBatcher } from './batch.ts';
import { fdbDelete, fdbWrite, neighbourDelete, neighbourReplace, routeRequest, type Request } from './encode.ts';
import { NetlinkError, toNetlinkError } from './errors.ts';
import { RequestGate } from './gate.ts';
import { AF_BRIDGE, NDMSG_LEN, NLM_F_DUMP, RTM_GETNEIGH, RTM_GETROUTE } from './rtnl.ts';
import { decodeFdb, decodeNeighbour, decodeRoute, messageFamily } from './decode.ts';
import { toAddress, toLink, toRoute } from './parse.ts';
import { watchEntryEvents, watchLinkEvents } from './watch.ts';
import type {
  AddressInfo,
  EntryWatchEvent,
  Family,
  FdbEntry,
  FdbSpec,
  LinkInfo,
  LinkWatchEvent,
  NeighbourInfo,
  NeighbourSpec,
  RouteFilter,
  RouteInfo,
  RouteLookup,
  RouteSpec,
  VxlanSpec,
} from './types.ts';

const log = logger('netlink');
const CREATE_EXCL = FlagsNew.CREATE | FlagsNew.EXCL;

export interface OpenOptions {
  /** A name from `ip netns list` or a path such as /proc/PID/ns/net; default: the current namespace. */
  netns?: string;
  /** Per request; default 5000 ms. */
  timeoutMs?: number;
  /** Requests in flight at once; default 256. */
  window?: number;
}

/** Builds a socket in the current thread's namespace, or inside `netns` through setns. */
export function createSocket(netns: string | undefined, ref: boolean): RtNetlinkSocket {
  const make = () => {
    const sock = createRtNetlink({ ref, recvBufferSize: 4 << 20, sendBufferSize: 1 << 20 });
    // The library decodes every unclaimed message into rt 'message' events, which nothing here reads: the ACKs of
    // batched writes (each a thrown "Unsupported message type") and the watch's notifications, thousands at startup.
    // Requests are answered before that step; the raw 'message' events below it are what this module listens to.
    sock.socket.removeAllListeners('message');
    return sock;
  };
  return inNetns(netns, make);
}

export class Netlink {
  private readonly gate: RequestGate;
  /** Route, neighbour and FDB writes: our own encoding, many per datagram. */
  private readonly writes: WriteBatcher;
  private closed = false;
  /** The socket's netlink port id (it does not change once bound). */
  private port: number | undefined;

  constructor(
    private readonly sock: RtNetlinkSocket,
    private readonly opts: { netns?: string; timeoutMs: number; window: number },
  ) {
    this.gate = new RequestGate(opts.window);
    // Without a listener an 'error' (e.g. ENOBUFS) would crash the process; lost ACKs end as request timeouts.
    sock.socket.on('error', (err) => log.warn(`netlink socket error: ${err.message}`));
    this.writes = new WriteBatcher(
      {
        send: (datagram, done) => sock.socket.socket.send(datagram, { port: 0 }, done),
        port: () => this.localPort(),
      },
      opts.timeoutMs,
    );
    // Answers no library request waits for: our batched writes' ACKs.
    sock.socket.on('message', (msgs) => this.writes.receive(msgs));
  }

  private localPort(): number {
    this.port ??= this.sock.socket.address().port;
    return this.port;
  }

  /** One batched write, counted in the window like any request (so a dump still waits for the socket to be idle). */
  private write(op: string, request: () => Request): Promise<void> {
    if (this.closed) return Promise.reject(new NetlinkError(op, 'ECLOSED', 'the netlink handle was closed'));
    return this.gate
      .run(false, () => this.writes.submit(op, request()))
      .catch((e: unknown) => {
        throw toNetlinkError(op, e);
      });
  }

  /** The namespace this handle lives in (as given to openNetlink), undefined for the current one. */
  get netns(): string | undefined {
    return this.opts.netns;
  }

  private req<T>(
    op: string,
    exclusive: boolean,
    fn: (o: { timeout: number; flags?: number; localPort?: number }) => Promise<T>,
    flags?: number,
  ): Promise<T> {
    if (this.closed) return Promise.reject(new NetlinkError(op, 'ECLOSED', 'the netlink handle was closed'));
    // localPort given: the library would otherwise ask the kernel (getsockname) for it before every message.
    const localPort = this.localPort();
    const o =
      flags === undefined
        ? { timeout: this.opts.timeoutMs, localPort }
        : { timeout: this.opts.timeoutMs, flags, localPort };
    return this.gate
      .run(exclusive, () => fn(o))
      .catch((e: unknown) => {
        throw toNetlinkError(op, e);
      });
  }

  // ---- reads -------------------------------------------------------------------------------------------------

  async links(): Promise<LinkInfo[]> {
    const msgs = await this.req('getLinks', true, (o) => this.sock.getLinks(undefined, undefined, o));
    return msgs.map(toLink);
  }

  async linkByName(name: string): Promise<LinkInfo | undefined> {
    return (await this.links()).find((l) => l.name === name);
  }

  async addresses(family: Family, index?: number): Promise<AddressInfo[]> {
    const msgs = await this.req(`getAddresses ipv${family}`, true, (o) =>
      this.sock.getAddresses({ family: afOf(family) }, undefined, o),
    );
    return msgs
      .map(toAddress)
      .filter(
        (a): a is AddressInfo => a !== undefined && a.family === family && (index === undefined || a.index === index),
      );
  }

  /** All routes of the family (every table unless filtered). */
  async routes(family: Family, filter: RouteFilter = {}): Promise<RouteInfo[]> {
    const payloads = await this.dump(`getRoutes ipv${family}`, RTM_GETROUTE, afOf(family));
    return payloads
      .filter((p) => messageFamily(p) === afOf(family))
      .map(decodeRoute)
      .filter(
        (r) =>
          (filter.table === undefined || r.table === filter.table) &&
          (filter.oif === undefined || r.oif === filter.oif) &&
          (filter.dst === undefined || r.dst === filter.dst),
      );
  }

  /**
   * `ip route get <dst>`; with `from` and `iif`, `ip route get <dst> from <from> iif <dev>`: the kernel's decision for a
   * packet arriving on that device (forwarded), as a pod's packet entering from cni0 meets it.
   */
  async routeGet(dst: string, as: { from?: string; iif?: number } = {}): Promise<RouteLookup> {
    const family = familyOf(dst);
    const bits = family === 4 ? 32 : 128;
    const what = `getRoute ${dst}${as.from ? ` from ${as.from}` : ''}${as.iif !== undefined ? ` iif ${as.iif}` : ''}`;
    const attrs = {
      dst: ipToBuffer(dst),
      ...(as.from ? { src: ipToBuffer(as.from) } : {}),
      ...(as.iif !== undefined ? { iif: as.iif } : {}),
    };
    const msgs = await this.req(what, false, (o) =>
      this.sock.getRoute({ family: afOf(family), dstLen: bits, srcLen: as.from ? bits : 0 }, attrs, o),
    );
    const m = msgs[0];
    if (!m) throw new NetlinkError(what, 'ENOENT', 'no route in the answer');
    const r = toRoute(m);
    const out: RouteLookup = { type: r.type };
    if (r.oif !== undefined) out.oif = r.oif;
    if (r.gateway) out.gateway = r.gateway;
    if (r.prefsrc) out.prefsrc = r.prefsrc;
    return out;
  }

  async neighbours(index?: number, family: Family = 4): Promise<NeighbourInfo[]> {
    const payloads = await this.dump(`getNeighbors ipv${family}`, RTM_GETNEIGH, afOf(family));
    return payloads
      .filter((p) => messageFamily(p) === afOf(family))
      .map(decodeNeighbour)
      .filter((n): n is NeighbourInfo => n !== undefined && (index === undefined || n.index === index));
  }

  /** Bridge forwarding database entries (family AF_BRIDGE) of one device. */
  async fdb(index: number): Promise<FdbEntry[]> {
    return (await this.fdbAll()).filter((e) => e.index === index);
  }

  /** The entries learnt on the ports of a bridge (`bridge fdb show br <bridge>`): which MAC sits behind which port. */
  async fdbOfBridge(bridgeIndex: number): Promise<FdbEntry[]> {
    return (await this.fdbAll()).filter((e) => e.master === bridgeIndex);
  }

  private async fdbAll(): Promise<FdbEntry[]> {
    const payloads = await this.dump('getNeighbors bridge', RTM_GETNEIGH, AF_BRIDGE);
    return payloads
      .filter((p) => messageFamily(p) === AF_BRIDGE)
      .map(decodeFdb)
      .filter((e): e is FdbEntry => e !== undefined);
  }

  /**
   * A dump of one rtnetlink table (routes or neighbours of `family`): the payloads of its messages, decoded by
   * decode.ts rather than the library's generic parser. rtmsg and ndmsg are both 12 bytes with the family first.
   */
  private async dump(op: string, type: number, family: number): Promise<Buffer[]> {
    const header = Buffer.alloc(NDMSG_LEN);
    header[0] = family;
    const [msgs] = await this.req(op, true, (o) =>
      this.sock.socket.request(type, [header], { ...o, flags: NLM_F_DUMP }),
    );
    return msgs.map((m) => m.data);
  }

  // ---- links -------------------------------------------------------------------------------------------------

  /** `ip link add <name> type vxlan id … local … dev … [dstport …] [nolearning] [gbp]`; fails with EEXIST. */
  async createVxlan(spec: VxlanSpec): Promise<void> {
    const vx: ifla.Vxlan = { id: spec.id, learning: spec.learning ? 1 : 0 };
    // An IPv6 local address goes in IFLA_VXLAN_LOCAL6 (the device then encapsulates over IPv6).
    if (spec.local) {
      if (familyOf(spec.local) === 6) vx.local6 = ipToBuffer(spec.local);
      else vx.local = ipToBuffer(spec.local);
    }
    if (spec.link) vx.link = spec.link;
    if (spec.port) {
      vx.port = Buffer.alloc(2);
      vx.port.writeUInt16BE(spec.port, 0);
    }
    if (spec.gbp) vx.gbp = true;
    const attrs: ifla.LinkAttrs = { ifname: spec.name, linkinfo: linkInfo('vxlan', ifla.formatVxlan(vx)) };
    if (spec.mac) attrs.address = macToBuffer(spec.mac);
    if (spec.mtu) attrs.mtu = spec.mtu;
    await this.req(`newLink ${spec.name}`, false, (o) => this.sock.newLink({}, attrs, o), CREATE_EXCL);
  }

  async setLinkUp(index: number, up = true): Promise<void> {
    await this.req(`setLink ${index} ${up ? 'up' : 'down'}`, false, (o) =>
      this.sock.setLink({ index, change: { up: true }, flags: up ? { up: true } : {} }, undefined, o),
    );
  }

  async setLinkMtu(index: number, mtu: number): Promise<void> {
    await this.req(`setLink ${index} mtu ${mtu}`, false, (o) => this.sock.setLink({ index }, { mtu }, o));
  }

  async setLinkMac(index: number, mac: string): Promise<void> {
    const address = macToBuffer(mac);
    await this.req(`setLink ${index} address ${mac}`, false, (o) => this.sock.setLink({ index }, { address }, o));
  }

  async deleteLink(index: number): Promise<void> {
    await this.req(`delLink ${index}`, false, (o) => this.sock.delLink({ index }, undefined, o));
  }

  // ---- addresses ---------------------------------------------------------------------------------------------

  /** `ip addr add <cidr> dev <index>`; fails with EEXIST when present. */
  async addAddress(index: number, cidr: string): Promise<void> {
    const c = parseCidr(cidr);
    const ip = ipToBuffer(c.ip);
    await this.req(
      `newAddress ${cidr} dev ${index}`,
      false,
      (o) =>
        this.sock.newAddress({ family: afOf(c.family), prefixlen: c.prefixLen, index }, { local: ip, address: ip }, o),
      CREATE_EXCL,
    );
  }

  async deleteAddress(index: number, cidr: string): Promise<void> {
    const c = parseCidr(cidr);
    const ip = ipToBuffer(c.ip);
    await this.req(`delAddress ${cidr} dev ${index}`, false, (o) =>
      this.sock.delAddress({ family: afOf(c.family), prefixlen: c.prefixLen, index }, { local: ip, address: ip }, o),
    );
  }

  // ---- routes ------------------------------------------------------------------------------------------------

  /** `ip route replace <dst> [via <gw>] [dev <oif>] [onlink]`. */
  replaceRoute(spec: RouteSpec): Promise<void> {
    return this.write(`newRoute ${spec.dst}`, () => routeRequest(spec, false));
  }

  /** `ip route del <dst> [via <gw>] [dev <oif>]` — the given fields must match; scope NOWHERE matches any scope. */
  deleteRoute(spec: RouteSpec): Promise<void> {
    return this.write(`delRoute ${spec.dst}`, () => routeRequest(spec, true));
  }

  // ---- neighbours and FDB ------------------------------------------------------------------------------------

  /** `ip neigh replace <ip> lladdr <mac> dev <index> nud permanent`. */
  replaceNeighbour(n: NeighbourSpec): Promise<void> {
    return this.write(`newNeighbor ${n.ip} lladdr ${n.mac} dev ${n.index}`, () => neighbourReplace(n));
  }

  deleteNeighbour(n: { index: number; ip: string }): Promise<void> {
    return this.write(`delNeighbor ${n.ip} dev ${n.index}`, () => neighbourDelete(n));
  }

  /** `bridge fdb append <mac> dev <index> dst <ip> self permanent`. */
  appendFdb(e: FdbSpec): Promise<void> {
    return this.write(`appendFdb ${fdbText(e)}`, () => fdbWrite(e, 'append'));
  }

  /** `bridge fdb replace <mac> dev <index> dst <ip> self permanent`. */
  replaceFdb(e: FdbSpec): Promise<void> {
    return this.write(`replaceFdb ${fdbText(e)}`, () => fdbWrite(e, 'replace'));
  }

  /** `bridge fdb del <mac> dev <index> [dst <ip>] self`. */
  deleteFdb(e: FdbSpec): Promise<void> {
    return this.write(`delFdb ${fdbText(e)}`, () => fdbDelete(e));
  }

  // ---- many at once ------------------------------------------------------------------------------------------

  /**
   * Runs many requests pipelined (up to the window in flight) and reports each failure instead of stopping:
   * `await nl.batch(routes.map((r) => () => nl.replaceRoute(r)))`.
   */
  async batch(ops: Array<() => Promise<void>>): Promise<NetlinkError[]> {
    const results = await Promise.allSettled(ops.map((op) => op()));
    return results.flatMap((r) => (r.status === 'rejected' ? [toNetlinkError('batch', r.reason)] : []));
  }

  // ---- events ------------------------------------------------------------------------------------------------

  /** Link add/change/delete notifications until `signal` aborts; 'overrun' means events were lost (re-check state). */
  watchLinks(signal: AbortSignal): AsyncIterable<LinkWatchEvent> {
    return watchLinkEvents(() => createSocket(this.opts.netns, true), signal);
  }

  /**
   * Route (IPv4 and IPv6), neighbour and FDB add/change/delete notifications of every device until `signal` aborts
   * (only deletions with `deletionsOnly`); 'overrun' means events were lost (re-check state).
   */
  watchEntries(signal: AbortSignal, opts: { deletionsOnly?: boolean } = {}): AsyncIterable<EntryWatchEvent> {
    return watchEntryEvents(() => createSocket(this.opts.netns, true), signal, opts.deletionsOnly);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.writes.failAll('ECLOSED', 'the netlink handle was closed');
    this.sock.socket.close();
  }
}

/** IFLA_LINKINFO: the kind plus its data, each nested as a serialised attribute stream. */
function linkInfo(kind: string, data: ReturnType<typeof ifla.formatVxlan>): Buffer {
  const inner = new AttrStream();
  inner.emit(data);
  const outer = new AttrStream();
  outer.emit(ifla.formatInfo({ kind, data: Buffer.concat(inner.bufs) }));
  return Buffer.concat(outer.bufs);
}

function fdbText(e: FdbSpec): string {
  return `${e.mac}${e.dst ? ` dst ${e.dst}` : ''} dev ${e.index}`;
}
