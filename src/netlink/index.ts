// The project's only door to rtnetlink (netlink@0.3.0 stays behind it): open a handle, optionally in another netns.
import { Netlink, createSocket, type OpenOptions } from './netlink.ts';

export { Netlink } from './netlink.ts';
export type { OpenOptions } from './netlink.ts';
export { NetlinkError, isGone, isNetlinkCode } from './errors.ts';
export { familyOf, randomLocalMac } from './codec.ts';
export { RT_TABLE_MAIN } from './types.ts';
export type * from './types.ts';

/** Opens a request socket; with `netns` it is created inside that namespace and stays there. */
export async function openNetlink(opts: OpenOptions = {}): Promise<Netlink> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  if (!(timeoutMs > 0)) throw new Error(`openNetlink: timeoutMs ${timeoutMs} must be positive`);
  const sock = createSocket(opts.netns, false);
  return new Netlink(sock, { netns: opts.netns, timeoutMs, window: opts.window ?? 1024 });
}
