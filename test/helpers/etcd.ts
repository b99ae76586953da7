// A real etcd for tests: loopback, random ports, temp data dir, always stopped; optionally with TLS and auth.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
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

/** Serve clients over TLS (the endpoint becomes https://). PEM files; the certificate needs a SAN for `host`. */
export interface EtcdTlsOptions {
  certFile: string;
  keyFile: string;
  /** The CA that client certificates must chain to: turns on `--client-cert-auth`. */
  clientCAFile?: string;
}

/** What etcdctl needs to talk to a TLS etcd (the test's own CA and, for client-cert-auth, a client certificate). */
export interface EtcdctlTls {
  caFile: string;
  certFile?: string;
  keyFile?: string;
}

/** A user whose role may read and write only the keys under `prefix`. */
export interface EtcdPrefixUser {
  name: string;
  password: string;
  prefix: string;
}

/** Turns on etcd auth after the first start: a `root` user (role root) plus `users`. */
export interface EtcdAuthOptions {
  rootPassword: string;
  users?: EtcdPrefixUser[];
}

export interface StartEtcdOptions {
  host?: string;
  netns?: string;
  tls?: EtcdTlsOptions;
  /** How etcdctl (handle.etcdctl, the auth setup) verifies the server and, for client-cert-auth, authenticates. */
  etcdctlTls?: EtcdctlTls;
  auth?: EtcdAuthOptions;
}

export interface EtcdHandle {
  endpoint: string;
  dataDir: string;
  /** The running etcd's pid (for kill -STOP / -CONT); undefined while stopped. */
  readonly pid: number | undefined;
  /** Runs etcdctl against this etcd (TLS flags and, with auth, root's credentials added); returns stdout. */
  etcdctl(...args: string[]): string;
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
export async function startEtcd(opts: StartEtcdOptions = {}): Promise<EtcdHandle> {
  requireTool('etcd');
  if (opts.auth || opts.etcdctlTls) requireTool('etcdctl');
  const host = opts.host ?? '127.0.0.1';
  const clientPort = opts.netns ? 2379 : await freePort();
  const peerPort = opts.netns ? 2380 : await freePort();
  // A TLS etcd answers /health in plain HTTP on its metrics URL, so readiness needs no client certificate.
  const metricsPort = opts.tls && !opts.netns ? await freePort() : undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'flannel-etcd-'));
  const endpoint = `${opts.tls ? 'https' : 'http'}://${host}:${clientPort}`;
  const healthURL = metricsPort ? `http://${host}:${metricsPort}/health` : `${endpoint}/health`;
  let proc: ChildProcess | undefined;
  let authEnabled = false;

  const etcdctl = (...args: string[]): string => {
    const flags = [`--endpoints=${endpoint}`, '--command-timeout=5s'];
    const t = opts.etcdctlTls;
    if (t) flags.push(`--cacert=${t.caFile}`);
    if (t?.certFile && t.keyFile) flags.push(`--cert=${t.certFile}`, `--key=${t.keyFile}`);
    if (authEnabled && opts.auth) flags.push(`--user=root:${opts.auth.rootPassword}`);
    const run = { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 10_000, encoding: 'utf8' } as const;
    return opts.netns
      ? execFileSync('ip', ['netns', 'exec', opts.netns, 'etcdctl', ...flags, ...args], run)
      : execFileSync('etcdctl', [...flags, ...args], run);
  };

  const enableAuth = (a: EtcdAuthOptions) => {
    etcdctl('user', 'add', `root:${a.rootPassword}`);
    etcdctl('user', 'grant-role', 'root', 'root');
    for (const u of a.users ?? []) {
      etcdctl('role', 'add', u.name);
      etcdctl('role', 'grant-permission', u.name, '--prefix=true', 'readwrite', u.prefix);
      etcdctl('user', 'add', `${u.name}:${u.password}`);
      etcdctl('user', 'grant-role', u.name, u.name);
    }
    etcdctl('auth', 'enable');
    authEnabled = true;
  };

  const launch = async () => {
    const args = [
      '--name',
      'test',
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      endpoint,
      '--advertise-client-urls',
      endpoint,
      '--listen-peer-urls',
      `http://${host}:${peerPort}`,
      '--initial-advertise-peer-urls',
      `http://${host}:${peerPort}`,
      '--initial-cluster',
      `test=http://${host}:${peerPort}`,
      '--log-level',
      'error',
    ];
    if (opts.tls) args.push('--cert-file', opts.tls.certFile, '--key-file', opts.tls.keyFile);
    if (opts.tls?.clientCAFile) args.push('--client-cert-auth', '--trusted-ca-file', opts.tls.clientCAFile);
    if (metricsPort) args.push('--listen-metrics-urls', `http://${host}:${metricsPort}`);
    proc = opts.netns
      ? spawn('ip', ['netns', 'exec', opts.netns, 'etcd', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn('etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (b) => (stderr += b));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`etcd exited: ${stderr}`);
      try {
        const r = opts.netns ? null : await fetch(healthURL);
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

  try {
    await launch();
    if (opts.auth) enableAuth(opts.auth);
  } catch (e) {
    await stop();
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  return {
    endpoint,
    dataDir,
    get pid() {
      return proc?.exitCode === null ? proc.pid : undefined;
    },
    etcdctl,
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
