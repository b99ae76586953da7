// TS binding of our C addon: find and load flannel_native.node, and run code inside another network namespace.
import { closeSync, existsSync, openSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeAddon {
  setns(fd: number, nstype: number): void;
  tunOpen(name: string): { fd: number; name: string };
  udpOpen(ip: string, port: number): number;
  startReader(
    fd: number,
    mode: number,
    slotSize: number,
    slots: number,
    cb: (err: NativeIoError | null, count: number) => void,
  ): {
    handle: object;
    buffer: ArrayBuffer;
    lengths: Int32Array;
  };
  stopReader(handle: object): void;
  writeBatch(fd: number, mode: number, data: Uint8Array, desc: Uint32Array, count: number): number;
}

/** An error from the packet reader; `stopped` when the reader gave up (the fd is unusable). */
export interface NativeIoError extends Error {
  code: string;
  stopped?: boolean;
}

export const CLONE_NEWNET = 0x40000000;
const FILE = 'flannel_native.node';

/** Where the addon may live, most specific first. */
export function nativeCandidates(): string[] {
  const out: string[] = [];
  if (process.env.FLANNEL_NATIVE_PATH) out.push(resolve(process.env.FLANNEL_NATIVE_PATH));
  const main = process.argv[1] ? dirname(resolve(process.argv[1])) : undefined;
  // The build copies the addon next to the bundles in dist/.
  if (main) out.push(join(main, FILE));
  // import.meta.url is empty inside the CJS bundles; it is set when running the sources under tsx.
  const here =
    typeof import.meta.url === 'string' && import.meta.url.startsWith('file:')
      ? dirname(fileURLToPath(import.meta.url))
      : undefined;
  if (here) out.push(join(here, '..', '..', 'build', 'Release', FILE));
  if (main) out.push(join(main, '..', 'build', 'Release', FILE));
  return [...new Set(out)];
}

let addon: NativeAddon | undefined;

/** Loads the addon once; throws naming every place that was tried and how to build it. */
export function loadNative(): NativeAddon {
  if (addon) return addon;
  const tried = nativeCandidates();
  for (const path of tried) {
    if (!existsSync(path)) continue;
    const mod = { exports: {} as NativeAddon };
    process.dlopen(mod, path);
    addon = mod.exports;
    return addon;
  }
  throw new Error(
    `${FILE} not found (tried ${tried.join(', ')}); build it with \`npm run build:native\` or set FLANNEL_NATIVE_PATH`,
  );
}

/** Opens a TUN device (IFF_TUN|IFF_NO_PI), non-blocking and close-on-exec. */
export function tunOpen(name: string): { fd: number; name: string } {
  return loadNative().tunOpen(name);
}

/** `NAME` → `/var/run/netns/NAME`; paths (anything with a slash) are kept as they are. */
export function netnsPath(nameOrPath: string): string {
  if (!nameOrPath) throw new Error('network namespace: empty name; pass a name from `ip netns list` or a path');
  return nameOrPath.includes('/') ? nameOrPath : `/var/run/netns/${nameOrPath}`;
}

/**
 * Runs `fn` inside the namespace `netns` (a name from `ip netns list` or a path) or, when it is undefined, right here:
 * how a netlink handle's TUN devices, sockets and /proc/sys writes land in the handle's namespace. See withNetns.
 */
export function inNetns<T>(netns: string | undefined, fn: () => T): T {
  return netns ? withNetns(netnsPath(netns), fn) : fn();
}

/**
 * Runs `fn` with the calling thread inside the network namespace at `netnsPath`, then always switches back.
 * Only file descriptors that `fn` creates synchronously (netlink sockets, TUN, spawnSync) land in that namespace:
 * do not await inside, because other code runs on this thread meanwhile.
 */
export function withNetns<T>(nsPath: string, fn: () => T): T {
  const native = loadNative();
  // The thread's own namespace, not the process's: they differ if someone else switched this thread already.
  const original = openSync('/proc/thread-self/ns/net', 'r');
  let target: number;
  try {
    target = openSync(nsPath, 'r');
  } catch (e) {
    closeSync(original);
    const hint = (e as NodeJS.ErrnoException).code === 'ENOENT' ? '; create it first (ip netns add NAME)' : '';
    throw new Error(`network namespace ${nsPath}: ${(e as Error).message}${hint}`);
  }
  try {
    native.setns(target, CLONE_NEWNET);
    try {
      return fn();
    } finally {
      native.setns(original, CLONE_NEWNET);
    }
  } finally {
    closeSync(target);
    closeSync(original);
  }
}
