// `flannelctl install`: copy a file into place atomically, so a container runtime scanning /etc/cni/net.d or running
// /opt/cni/bin/flannel never sees a half-written file (the init containers of deploy/kube-flannel.yml use it).
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.ts';

export interface InstallRequest {
  source: string;
  destination: string;
  /** Permission bits of the installed file, e.g. 0o755. */
  mode: number;
}

export const INSTALL_USAGE = 'flannelctl install [--mode=0644] <source> <destination>';

/** `[--mode=0755|--mode 0755] <source> <destination>` → request; errors name the argument and the fix. */
export function parseInstallArgs(args: string[]): InstallRequest {
  let mode = 0o644;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--mode' || a.startsWith('--mode=')) {
      const v = a === '--mode' ? args[++i] : a.slice('--mode='.length);
      if (v === undefined || !/^0?[0-7]{3}$/.test(v)) {
        throw new Error(`install: --mode ${v ?? '(missing)'} is not an octal permission like 0755 or 0644\nusage: ${INSTALL_USAGE}`);
      }
      mode = parseInt(v, 8);
    } else if (a.startsWith('-') && a.length > 1) {
      throw new Error(`install: unknown option ${a}\nusage: ${INSTALL_USAGE}`);
    } else {
      positional.push(a);
    }
  }
  if (positional.length !== 2) {
    throw new Error(`install: expected a source and a destination, got ${positional.length} argument(s)\nusage: ${INSTALL_USAGE}`);
  }
  return { source: positional[0]!, destination: positional[1]!, mode };
}

/**
 * Copies the source's bytes over the destination through writeFileAtomic (temp file in the same directory, chmod,
 * fsync, rename, directory fsync).
 */
export function installFile(req: InstallRequest): void {
  const { source, destination, mode } = req;
  let data: Buffer;
  try {
    data = readFileSync(source);
  } catch (e) {
    throw new Error(`install: cannot read source ${source}: ${(e as Error).message}; check the path inside the image`);
  }
  const dir = dirname(destination);
  let dirIsDir = false;
  try {
    dirIsDir = statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!dirIsDir) throw new Error(`install: destination directory ${dir} does not exist; mount the host directory there (hostPath)`);
  try {
    if (statSync(destination).isDirectory()) {
      throw new Error(`install: destination ${destination} is a directory; give the full file name (e.g. ${join(destination, basename(source))})`);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  try {
    writeFileAtomic(destination, data, mode);
  } catch (e) {
    throw new Error(`install: writing ${destination} failed: ${(e as Error).message}`);
  }
}
