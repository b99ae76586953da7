// Link notifications (RTNLGRP_LINK) as an async iterable that ends when the signal aborts.
import { rt, type RtNetlinkSocket } from 'netlink';
import { toLink } from './parse.ts';
import type { LinkWatchEvent } from './types.ts';

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;

export async function* watchLinkEvents(makeSocket: () => RtNetlinkSocket, signal: AbortSignal): AsyncGenerator<LinkWatchEvent> {
  if (signal.aborted) return;
  const sock = makeSocket();
  const queue: LinkWatchEvent[] = [];
  let wake: (() => void) | undefined;
  const push = (e: LinkWatchEvent) => {
    queue.push(e);
    wake?.();
  };
  sock.socket.on('message', (msgs) => {
    for (const m of msgs) {
      if (m.type !== RTM_NEWLINK && m.type !== RTM_DELLINK) continue;
      try {
        push({ type: m.type === RTM_NEWLINK ? 'new' : 'del', link: toLink(rt.parseLinkMessage(m.data)) });
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
    sock.addMembership('LINK');
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
