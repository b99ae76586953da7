// `flannelctl install`: copy a file into place atomically, so a container runtime scanning /etc/cni/net.d or running
// /opt/cni/bin/flannel never sees a half-written file (the init containers of deploy/kube-flannel.yml use it).
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { UsageError, type Invocation } from './command-line.ts';
import { parseFlannelctl } from './commands.ts';

export interface InstallRequest {
  source: string;
  destination: string;
  /** Permission bits of the installed file, e.g. 0o755. */
  mode: number;
}

/** The request of a parsed `flannelctl install` (commands.ts checked --mode and the two arguments). */
export function installRequest(inv: Invocation): InstallRequest {
  return { source: inv.args[0]!, destination: inv.args[1]!, mode: parseInt(inv.strings.mode!, 8) };
}

/** `[--mode=0755|--mode 0755] <source> <destination>` → request; bad usage throws UsageError naming the argument. */
export function parseInstallArgs(args: string[]): InstallRequest {
  const parsed = parseFlannelctl(['install', ...args]);
  if (parsed.type === 'help')
    throw new UsageError('install: --help asks for the usage, not for an install', parsed.usage);
  return installRequest(parsed);
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
  if (!dirIsDir)
    throw new Error(`install: destination directory ${dir} does not exist; mount the host directory there (hostPath)`);
  try {
    if (statSync(destination).isDirectory()) {
      throw new Error(
        `install: destination ${destination} is a directory; give the full file name (e.g. ${join(destination, basename(source))})`,
      );
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
