// Netlink failures as Errors with the errno name in `.code` and the operation in `.op`.

export class NetlinkError extends Error {
  /** errno name ('EEXIST', 'ESRCH', 'ENOENT', …), 'ETIMEDOUT' for our timeout, 'EUNKNOWN' otherwise. */
  readonly code: string;
  /** What we asked for, e.g. 'newRoute 10.244.2.0/24'. */
  readonly op: string;

  constructor(op: string, code: string, detail?: string) {
    super(`netlink ${op}: ${code}${detail ? ` (${detail})` : ''}`);
    this.name = 'NetlinkError';
    this.op = op;
    this.code = code;
  }
}

/** The library reports kernel errors only as text ("Request rejected: EEXIST"); pull the errno name out. */
export function toNetlinkError(op: string, err: unknown): NetlinkError {
  if (err instanceof NetlinkError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const rejected = /Request rejected: (E[A-Z0-9]+|\d+)/.exec(msg);
  if (rejected) return new NetlinkError(op, /^\d+$/.test(rejected[1]!) ? `errno ${rejected[1]}` : rejected[1]!);
  if (/Timeout has been reached/.test(msg)) return new NetlinkError(op, 'ETIMEDOUT');
  const code = (err as { code?: unknown })?.code;
  return new NetlinkError(op, typeof code === 'string' ? code : 'EUNKNOWN', msg);
}

export function isNetlinkCode(err: unknown, ...codes: string[]): boolean {
  return err instanceof NetlinkError && codes.includes(err.code);
}

/** A delete that failed because the entry (or its device) is already gone: the wanted end state. */
export function isGone(err: unknown): boolean {
  return isNetlinkCode(err, 'ENOENT', 'ESRCH', 'ENODEV', 'EADDRNOTAVAIL');
}
