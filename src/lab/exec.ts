// Small process helpers for the lab (it drives ip, etcdctl and the built binaries like a user would).
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

export function sh(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      input: opts.input,
      env: opts.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(err.stderr || err.stdout || err.message).trim()}`);
  }
}

/** Like sh, but never throws: for teardown. */
export function shQuiet(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    /* best effort */
  }
}

/** Starts `argv` inside `ns` in the background (it outlives this process), stdout and stderr appended to `logFile`. */
export function spawnDetachedInNetns(ns: string, argv: string[], logFile: string, env?: NodeJS.ProcessEnv): void {
  const log = openSync(logFile, 'a');
  try {
    spawn('ip', ['netns', 'exec', ns, ...argv], { detached: true, stdio: ['ignore', log, log], env }).unref();
  } finally {
    closeSync(log);
  }
}

export function netnsList(): string[] {
  const out = sh('ip', ['-json', 'netns', 'list']).trim();
  return out ? (JSON.parse(out) as { name: string }[]).map((n) => n.name) : [];
}

export function netnsPids(ns: string): number[] {
  try {
    return sh('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
