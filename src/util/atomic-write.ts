// Replace a file so that readers see the old or the new contents whole, never a partial file.
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `data` to a temp file in `path`'s directory (same filesystem, so the rename is atomic), sets `mode` whatever
 * the umask, fsyncs it, renames it over `path` and fsyncs the directory. `durable: false` skips both fsyncs: readers
 * still never see a partial file, but a power loss may lose the write. The temp file is removed on failure; errors
 * are thrown as they come, callers add their own wording.
 */
export function writeFileAtomic(
  path: string,
  data: string | Buffer,
  mode: number,
  opts: { durable?: boolean } = {},
): void {
  const durable = opts.durable ?? true;
  const dir = dirname(path);
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  // A dot name with a random suffix: libcni only loads *.conf, *.conflist and *.json, so it never picks up the temp file.
  // Math.random, not node:crypto: the exclusive open below settles any clash, and loading crypto costs the CNI
  // plugin's executable about 12 ms per pod event.
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  // Opened before the cleanup scope: on EEXIST the file is someone else's.
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    try {
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
      fchmodSync(fd, mode);
      if (durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  // Make the rename itself durable.
  if (durable) fsyncDir(dir);
}
