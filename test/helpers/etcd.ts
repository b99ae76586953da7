// A real etcd for tests: loopback, random ports, temp data dir, always stopped.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTool, missingToolMessage, requireTool } from './tools.ts';

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface EtcdHandle {
  endpoint: string;
  dataDir: string;
  /** Restarts etcd on the same ports and data dir. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** Stops it for good and removes the data dir. */
  destroy(): Promise<void>;
}

export const etcdAvailable = findTool('etcd') !== undefined;
/** The skip reason of suites that need etcd (a full run fails on any skip). */
export const etcdMissing = etcdAvailable ? false : missingToolMessage('etcd');

/** Starts etcd; with `netns`, inside that namespace listening on `host`. */
export async function startEtcd(opts: { host?: string; netns?: string } = {}): Promise<EtcdHandle> {
  requireTool('etcd');
  const host = opts.host ?? '127.0.0.1';
  const clientPort = opts.netns ? 2379 : await freePort();
  const peerPort = opts.netns ? 2380 : await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'flannel-etcd-'));
  const endpoint = `http://${host}:${clientPort}`;
  let proc: ChildProcess | undefined;

  const launch = async () => {
    const args = [
      '--name', 'test', '--data-dir', dataDir,
      '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
      '--listen-peer-urls', `http://${host}:${peerPort}`,
      '--initial-advertise-peer-urls', `http://${host}:${peerPort}`,
      '--initial-cluster', `test=http://${host}:${peerPort}`,
      '--log-level', 'error',
    ];
    proc = opts.netns
      ? spawn('ip', ['netns', 'exec', opts.netns, 'etcd', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn('etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (b) => (stderr += b));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`etcd exited: ${stderr}`);
      try {
        const r = opts.netns ? null : await fetch(`${endpoint}/health`);
        if (r === null || r.ok) {
          if (opts.netns) await new Promise((r2) => setTimeout(r2, 1500));
          return;
        }
      } catch {
        /* not up yet */
      }
      await new Promise((r2) => setTimeout(r2, 100));
    }
    throw new Error(`etcd did not become healthy: ${stderr}`);
  };

  const stop = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
      setTimeout(() => p.kill('SIGKILL'), 3000).unref();
    });
  };

  await launch();
  return {
    endpoint,
    dataDir,
    restart: async () => {
      await stop();
      await launch();
    },
    stop,
    destroy: async () => {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
