// Throwaway network namespaces for integration tests: unique names, always removed.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { requireTool } from './tools.ts';

/** Runs a command and returns stdout; a command that is not installed fails naming it and its package. */
export function run(cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    // `ip netns exec <ns> <tool>` fails with ip's own exit code when the tool is missing.
    const tool = cmd === 'ip' && args[0] === 'netns' && args[1] === 'exec' ? args[3] : cmd;
    if (tool) requireTool(tool);
    throw e;
  }
}

/** Runs a command inside a namespace and returns stdout. */
export function nsRun(ns: string, cmd: string, args: string[], input?: string): string {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], input);
}

/** `ip -n <ns> …`, stdout. */
export function ipn(ns: string, ...args: string[]): string {
  return run('ip', ['-n', ns, ...args]);
}

/**
 * True when all `count` pings (default 1) from `ns` to `dst` got an answer (false on any failure); `family` 6 adds -6,
 * `src` sets the source address (-I).
 */
export function pings(ns: string, dst: string, opts: { family?: 4 | 6; src?: string; count?: number } = {}): boolean {
  const { family = 4, src, count = 1 } = opts;
  const args = [
    ...(family === 6 ? ['-6'] : []),
    '-c',
    String(count),
    '-i',
    '0.2',
    '-W',
    '1',
    ...(src ? ['-I', src] : []),
    dst,
  ];
  try {
    return new RegExp(`${count} received`).test(nsRun(ns, 'ping', args));
  } catch {
    return false;
  }
}

/** True when all `count` IPv6 pings from `src` to `dst` inside `ns` got an answer (false on any failure). */
export function pings6(ns: string, src: string, dst: string, count: number): boolean {
  return pings(ns, dst, { family: 6, src, count });
}

/** `ip -json …` inside a namespace, parsed. */
export function ipJson(ns: string, args: string[]): any[] {
  const out = run('ip', ['-n', ns, '-json', ...args]);
  return out.trim() ? JSON.parse(out) : [];
}

/** The MAC address of link `dev` inside `ns`. */
export function linkMac(ns: string, dev: string): string {
  return ipJson(ns, ['link', 'show', dev])[0].address;
}

export function bridgeJson(ns: string, args: string[]): any[] {
  const out = nsRun(ns, 'bridge', ['-json', ...args]);
  return out.trim() ? JSON.parse(out) : [];
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

export class Netns {
  readonly names: string[] = [];

  /** Creates a namespace with loopback up. */
  add(prefix: string): string {
    const name = uniqueName(prefix);
    run('ip', ['netns', 'add', name]);
    this.names.push(name);
    run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** A veth pair `a`↔`b` between two namespaces, addressed and up. */
  link(nsA: string, ifA: string, addrA: string, nsB: string, ifB: string, addrB: string, mtu = 1500): void {
    const tmpA = uniqueName('va');
    const tmpB = uniqueName('vb');
    run('ip', ['link', 'add', tmpA, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', tmpB, 'mtu', String(mtu)]);
    run('ip', ['link', 'set', tmpA, 'netns', nsA]);
    run('ip', ['link', 'set', tmpB, 'netns', nsB]);
    run('ip', ['-n', nsA, 'link', 'set', tmpA, 'name', ifA]);
    run('ip', ['-n', nsB, 'link', 'set', tmpB, 'name', ifB]);
    run('ip', ['-n', nsA, 'addr', 'add', addrA, 'dev', ifA]);
    run('ip', ['-n', nsB, 'addr', 'add', addrB, 'dev', ifB]);
    run('ip', ['-n', nsA, 'link', 'set', ifA, 'up']);
    run('ip', ['-n', nsB, 'link', 'set', ifB, 'up']);
  }

  cleanup(): void {
    for (const n of this.names.splice(0).reverse()) {
      // Kill anything still running inside, then drop the namespace.
      const pids = spawnSync('ip', ['netns', 'pids', n], { encoding: 'utf8' }).stdout.trim();
      for (const pid of pids.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      spawnSync('ip', ['netns', 'del', n]);
    }
  }
}

export const isRoot = process.getuid?.() === 0;

/** True once `pid` has exited within `timeoutMs` (a zombie its parent has not reaped yet counts as gone). */
export function processGone(pid: number, timeoutMs = 2500): boolean {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let state: string;
    try {
      state = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return true;
    }
    // Field 3, after the parenthesised command name.
    if (state.slice(state.lastIndexOf(')') + 2).startsWith('Z')) return true;
    if (Date.now() > deadline) return false;
    execFileSync('sleep', ['0.05']);
  }
}
