// The delegate config saved per container in dataDir (the file DEL replays), byte-compatible with the real plugin.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.ts';

export function scratchPath(dataDir: string, containerId: string): string {
  return join(dataDir, containerId);
}

/**
 * Dir 0700, file 0600 whatever the umask, replaced whole before the delegate runs. Not fsync'd (the Go plugin does not
 * either): it runs on every pod start, and a power loss that could lose it also ends the pod whose DEL needs it.
 */
export function saveScratch(dataDir: string, containerId: string, bytes: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(scratchPath(dataDir, containerId), bytes, 0o600, { durable: false });
}

/** The saved bytes, or undefined when nothing was saved for this container. */
export function readScratch(dataDir: string, containerId: string): Buffer | undefined {
  try {
    return readFileSync(scratchPath(dataDir, containerId));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export function removeScratch(dataDir: string, containerId: string): void {
  rmSync(scratchPath(dataDir, containerId), { force: true });
}
