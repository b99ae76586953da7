// Runs a binary (inside `ip netns exec <netns>` when given) and collects its output; never rejects.
import { spawn } from 'node:child_process';

export interface ExecResult {
  /** Exit code; 127 when the binary could not be started. */
  code: number;
  stdout: string;
  stderr: string;
}

export type ExecFn = (cmd: string, args: readonly string[], input?: string) => Promise<ExecResult>;

/** A hung binary (e.g. iptables on a stuck xtables lock) must not stall a loop forever. */
const DEFAULT_TIMEOUT_MS = 30_000;

/** Spawns `cmd` (inside `ip netns exec <netns>` when given), killed after `timeoutMs`; never rejects. */
export function processExec(netns?: string, timeoutMs = DEFAULT_TIMEOUT_MS): ExecFn {
  return (cmd, args, input) =>
    new Promise((resolve) => {
      const [file, argv] = netns ? ['ip', ['netns', 'exec', netns, cmd, ...args]] : [cmd, [...args]];
      const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('error', (e) => resolve({ code: 127, stdout, stderr: stderr + e.message }));
      child.on('close', (code, sig) =>
        resolve({ code: code ?? 128, stdout, stderr: sig ? `${stderr}killed by ${sig}` : stderr }),
      );
      child.stdin.on('error', () => {}); // EPIPE when the binary is missing or exits early
      child.stdin.end(input ?? '');
    });
}
