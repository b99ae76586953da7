// The CNI_* environment variables: which each command needs, and the checks libcni plugins apply to them.
import { CniCode, CniError } from './errors.ts';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';

export interface CniArgs {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifName: string;
  args: string;
  /** CNI_PATH split on ':' (empty entries dropped). */
  path: string[];
}

const REQUIRED: Record<CniCommand, string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  // The netns may already be gone when a pod is torn down.
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: ['CNI_PATH'],
  STATUS: [],
  VERSION: [],
};

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function checkIfName(name: string): void {
  const bad = (why: string) =>
    new CniError(
      CniCode.InvalidEnvironment,
      `CNI_IFNAME "${name}" is invalid: ${why}; the runtime must pass a valid interface name such as eth0`,
    );
  if (name.length > 15) throw bad('longer than 15 characters');
  if (name === '.' || name === '..') throw bad('it is . or ..');
  if (/[/:\s]/.test(name)) throw bad('it contains / or : or whitespace');
}

/** Reads and validates the CNI environment for `command` (already known to be a valid command). */
export function readCniArgs(env: NodeJS.ProcessEnv, command: CniCommand): CniArgs {
  const missing = REQUIRED[command].filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new CniError(
      CniCode.InvalidEnvironment,
      `required env variables [${missing.join(',')}] missing; the container runtime must set them (CNI spec "Parameters")`,
    );
  }
  const containerId = env.CNI_CONTAINERID ?? '';
  // The ID names a file in dataDir, so it must not be able to escape it.
  if (containerId && !CONTAINER_ID.test(containerId)) {
    throw new CniError(
      CniCode.InvalidEnvironment,
      `CNI_CONTAINERID "${containerId}" has invalid characters; it must match ${CONTAINER_ID.source}`,
    );
  }
  const ifName = env.CNI_IFNAME ?? '';
  if (ifName) checkIfName(ifName);
  return {
    command,
    containerId,
    netns: env.CNI_NETNS ?? '',
    ifName,
    args: env.CNI_ARGS ?? '',
    path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
  };
}

export function parseCommand(value: string): CniCommand {
  const all: CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'];
  if ((all as string[]).includes(value)) return value as CniCommand;
  throw new CniError(CniCode.InvalidEnvironment, `unknown CNI_COMMAND: ${value}; expected one of ${all.join(', ')}`);
}
