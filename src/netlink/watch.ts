// Kernel notifications as async iterables that end when the signal aborts: links (RTNLGRP_LINK), and routes,
// neighbours and FDB entries (RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_NEIGH).
import { rt, type NetlinkMessage, type RtNetlinkSocket } from './library.ts';
import { decodeFdb, decodeNeighbour, decodeRoute, messageFamily } from './decode.ts';
import { toLink } from './parse.ts';
import { AF_BRIDGE, RTM_DELLINK, RTM_DELNEIGH, RTM_DELROUTE, RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWROUTE } from './rtnl.ts';
import type { EntryEvent, EntryWatchEvent, LinkWatchEvent } from './types.ts';

type Group = keyof typeof rt.MulticastGroups;
/** One message → its event; undefined for messages the watch does not report; a throw counts as lost events. */
type Decode<E> = (m: NetlinkMessage) => E | undefined;

export function watchLinkEvents(
  makeSocket: () => RtNetlinkSocket,
  signal: AbortSignal,
): AsyncGenerator<LinkWatchEvent> {
  return watchGroups<LinkWatchEvent>(makeSocket, ['LINK'], decodeLink, signal);
}

/** Route (IPv4 and IPv6), neighbour and FDB notifications of every device; only deletions with `deletionsOnly`. */
export function watchEntryEvents(
  makeSocket: () => RtNetlinkSocket,
  signal: AbortSignal,
  deletionsOnly = false,
): AsyncGenerator<EntryWatchEvent> {
  // Our own writes come back as RTM_NEW* notifications by the thousand; a watch for deletions leaves them unparsed.
  const decode: Decode<EntryWatchEvent> = deletionsOnly
    ? (m) => (m.type === RTM_DELROUTE || m.type === RTM_DELNEIGH ? decodeEntry(m) : undefined)
    : decodeEntry;
  return watchGroups<EntryWatchEvent>(makeSocket, ['IPV4_ROUTE', 'IPV6_ROUTE', 'NEIGH'], decode, signal);
}

function decodeLink(m: NetlinkMessage): LinkWatchEvent | undefined {
  if (m.type !== RTM_NEWLINK && m.type !== RTM_DELLINK) return undefined;
  return { type: m.type === RTM_NEWLINK ? 'new' : 'del', link: toLink(rt.parseLinkMessage(m.data)) };
}

function decodeEntry(m: NetlinkMessage): EntryEvent | undefined {
  if (m.type === RTM_NEWROUTE || m.type === RTM_DELROUTE) {
    return { type: m.type === RTM_NEWROUTE ? 'new' : 'del', kind: 'route', route: decodeRoute(m.data) };
  }
  if (m.type !== RTM_NEWNEIGH && m.type !== RTM_DELNEIGH) return undefined;
  const type = m.type === RTM_NEWNEIGH ? 'new' : 'del';
  // The bridge family carries FDB entries (vxlan devices report theirs there too).
  if (messageFamily(m.data) === AF_BRIDGE) {
    const fdb = decodeFdb(m.data);
    return fdb && { type, kind: 'fdb', fdb };
  }
  const neighbour = decodeNeighbour(m.data);
  return neighbour && { type, kind: 'neighbour', neighbour };
}

async function* watchGroups<E>(
  makeSocket: () => RtNetlinkSocket,
  groups: Group[],
  decode: Decode<E>,
  signal: AbortSignal,
): AsyncGenerator<E | { type: 'overrun' }> {
  if (signal.aborted) return;
  const sock = makeSocket();
  const queue: Array<E | { type: 'overrun' }> = [];
  let wake: (() => void) | undefined;
  const push = (e: E | { type: 'overrun' }) => {
    queue.push(e);
    wake?.();
  };
  sock.socket.on('message', (msgs) => {
    for (const m of msgs) {
      try {
        const ev = decode(m);
        if (ev !== undefined) push(ev);
      } catch {
        push({ type: 'overrun' });
      }
    }
  });
  // ENOBUFS on a busy notification socket: some events are gone.
  sock.socket.on('error', () => push({ type: 'overrun' }));
  const onAbort = () => wake?.();
  signal.addEventListener('abort', onAbort);
  try {
    for (const g of groups) sock.addMembership(g);
    while (!signal.aborted) {
      const next = queue.shift();
      if (next) {
        yield next;
        continue;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    sock.socket.close();
  }
}
