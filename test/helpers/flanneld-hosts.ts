// Real flanneld processes (dist/flanneld.cjs) on throwaway hosts: a switch namespace with two bridged underlays
// (192.168.150.0/24, 192.168.151.0/24), etcd on the switch, and host namespaces wired to it. Never the root namespace.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdMissing, startEtcd, type EtcdHandle } from './etcd.ts';
import { plugIntoBridge } from '../../src/lab/plug.ts';
import { flanneldArgv } from '../../src/util/self.ts';
import { bridgeJson, ipJson, isRoot, Netns, nsRun, run, uniqueName } from './netns.ts';

export const FLANNELD = join(import.meta.dirname, '../../dist/flanneld.cjs');
export const flanneldBuilt = existsSync(FLANNELD);
/** Why the flanneld-on-etcd tests cannot run here (root, etcd, the built daemon), or false. */
export const flanneldSkip = !isRoot
  ? 'needs root'
  : etcdMissing
    ? etcdMissing
    : !flanneldBuilt
      ? `${FLANNELD} is missing: run \`npm run build\``
      : false;
export const ETCD_IP = '192.168.150.1';
export const ETCD_ENDPOINT = `http://${ETCD_IP}:2379`;
export const NETWORK_CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}';

export interface HostOptions {
  /** Address on eth0 (192.168.150.0/24 underlay). */
  eth0: string;
  /** Optional second interface eth1 on the 192.168.151.0/24 underlay. */
  eth1?: string;
  /** Default route via 192.168.150.1 (default true). */
  defaultRoute?: boolean;
}

export class FlanneldHosts {
  readonly netns = new Netns();
  readonly tmp = mkdtempSync(join(tmpdir(), 'flanneld-test-'));
  readonly daemons: Flanneld[] = [];
  sw = '';
  etcd?: EtcdHandle;
  private seq = 0;

  /** The switch namespace with br0/br1 and etcd on 192.168.150.1. */
  async start(): Promise<void> {
    this.sw = this.netns.add('fdsw');
    for (const [br, addr, mac] of [
      ['br0', `${ETCD_IP}/24`, '02:fd:00:00:01:50'],
      ['br1', '192.168.151.1/24', '02:fd:00:00:01:51'],
    ] as const) {
      // A fixed MAC: otherwise the bridge takes its lowest port's MAC, so plugging in a host can change it and
      // leave the running daemons' ARP entries for etcd pointing nowhere for ~30 s.
      nsRun(this.sw, 'ip', ['link', 'add', br, 'address', mac, 'type', 'bridge']);
      nsRun(this.sw, 'ip', ['addr', 'add', addr, 'dev', br]);
      nsRun(this.sw, 'ip', ['link', 'set', br, 'up']);
    }
    this.etcd = await startEtcd({ netns: this.sw, host: ETCD_IP });
  }

  /** A host namespace with eth0 (and eth1) plugged into the switch bridges. */
  addHost(prefix: string, o: HostOptions): string {
    const ns = this.netns.add(prefix);
    const plug = (ifname: string, addr: string, br: string) =>
      plugIntoBridge({
        ns,
        ifname,
        sw: this.sw,
        bridge: br,
        addresses: [[`${addr}/24`]],
        names: [uniqueName('fdi'), uniqueName('fdo')],
      });
    plug('eth0', o.eth0, 'br0');
    if (o.eth1) plug('eth1', o.eth1, 'br1');
    if (o.defaultRoute ?? true) run('ip', ['-n', ns, 'route', 'add', 'default', 'via', ETCD_IP]);
    return ns;
  }

  /** A fresh etcd prefix, with the network config unless `withConfig` is false. */
  prefix(withConfig = true): string {
    const p = `/fdtest-${process.pid}-${++this.seq}/network`;
    if (withConfig) this.etcdctl(['put', `${p}/config`, NETWORK_CONFIG]);
    return p;
  }

  subnetFile(): string {
    return join(this.tmp, `subnet-${++this.seq}.env`);
  }

  /** The flags naming the test's etcd, `prefix` and the subnet file (a fresh one unless given). */
  etcdFlags(prefix: string, file = this.subnetFile()): string[] {
    return [`--etcd-endpoints=${ETCD_ENDPOINT}`, `--etcd-prefix=${prefix}`, `--subnet-file=${file}`];
  }

  etcdctl(args: string[]): string {
    return execFileSync(
      'ip',
      ['netns', 'exec', this.sw, 'etcdctl', `--endpoints=${ETCD_ENDPOINT}`, '--command-timeout=3s', ...args],
      {
        encoding: 'utf8',
        env: { ...process.env, ETCDCTL_API: '3' },
        timeout: 10_000,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  }

  /** Every key under `<prefix>/subnets/` with its value. */
  leases(prefix: string): Map<string, string> {
    const out = this.etcdctl(['get', '--prefix', `${prefix}/subnets/`, '-w', 'json']);
    const kvs = (JSON.parse(out).kvs ?? []) as { key: string; value: string }[];
    return new Map(
      kvs.map((kv) => [Buffer.from(kv.key, 'base64').toString(), Buffer.from(kv.value, 'base64').toString()]),
    );
  }

  /** Starts flanneld in `ns` with the test's etcd and the given flags. */
  flanneld(ns: string, args: string[], env: Record<string, string> = {}): Flanneld {
    const d = new Flanneld(ns, args, env);
    this.daemons.push(d);
    return d;
  }

  async cleanup(): Promise<void> {
    for (const d of this.daemons) {
      // FLANNEL_TS_TEST_LOGS=1 shows every daemon's log when investigating a failure.
      if (process.env.FLANNEL_TS_TEST_LOGS) process.stderr.write(`==== flanneld in ${d.ns}\n${d.log}\n`);
      d.kill();
    }
    await Promise.all(this.daemons.map((d) => d.exited(5000).catch(() => undefined)));
    await this.etcd?.destroy().catch(() => undefined);
    this.netns.cleanup();
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

export class Flanneld {
  readonly proc: ChildProcess;
  log = '';
  private closed = false;
  private exit: Promise<number | null>;

  constructor(
    readonly ns: string,
    args: string[],
    env: Record<string, string>,
  ) {
    // Only the test's FLANNELD_* variables: anything inherited would change the daemon's options.
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLANNELD_')));
    this.proc = spawn('ip', ['netns', 'exec', ns, ...flanneldArgv(FLANNELD), ...args], {
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout!.on('data', (b) => (this.log += b));
    this.proc.stderr!.on('data', (b) => (this.log += b));
    // 'close' comes after the last output, so a finished daemon's log is complete.
    this.exit = new Promise((resolve) =>
      this.proc.on('close', (code) => {
        this.closed = true;
        resolve(code);
      }),
    );
  }

  get running(): boolean {
    return !this.closed;
  }

  /** Waits until the log matches `re`. */
  async waitLog(re: RegExp, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!re.test(this.log)) {
      // An exited daemon will not log anything more: fail now rather than at the deadline.
      if (!this.running || Date.now() >= deadline) {
        throw new Error(
          `flanneld in ${this.ns} ${this.running ? `did not log ${re} within ${ms} ms` : `exited (${this.proc.exitCode ?? this.proc.signalCode}) without logging ${re}`}; log:\n${this.log}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits until it wrote its subnet file. */
  ready(ms = 20_000): Promise<void> {
    return this.waitLog(/Wrote subnet file to /, ms);
  }

  /** Exit code once it exited (null when killed by a signal); rejects after `ms`. */
  async exited(ms: number): Promise<number | null> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>(
      (_, rej) =>
        (t = setTimeout(
          () => rej(new Error(`flanneld in ${this.ns} still running after ${ms} ms; log:\n${this.log}`)),
          ms,
        )),
    );
    try {
      return await Promise.race([this.exit, timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(sig);
  }

  kill(): void {
    this.signal('SIGKILL');
  }
}

/** Parsed subnet.env, or undefined while it does not exist. */
export function readSubnetEnv(file: string): Record<string, string> | undefined {
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  return Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** HTTP GET inside a namespace with curl: status code and body. */
export function httpGet(ns: string, url: string): { status: number; body: string } {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'curl', '-s', '--max-time', '2', '-w', '\n%{http_code}', url], {
    encoding: 'utf8',
    timeout: 5000,
  });
  const i = out.lastIndexOf('\n');
  return { status: Number(out.slice(i + 1)), body: out.slice(0, i) };
}

export interface PeerState {
  route: boolean;
  neigh: boolean;
  fdb: boolean;
}

/** What host `ns` has programmed for a peer with `subnet` (e.g. 10.244.5.0/24), `mac` and `publicIP`. */
export function peerState(ns: string, subnet: string, mac: string, publicIP: string): PeerState {
  const gw = subnet.split('/')[0]!;
  const route = ipJson(ns, ['route', 'show', subnet]).some(
    (r) => r.dst === subnet && r.gateway === gw && r.dev === 'flannel.1' && r.flags?.includes('onlink'),
  );
  const neigh = ipJson(ns, ['neigh', 'show', 'dev', 'flannel.1', 'to', gw]).some(
    (n) => n.lladdr === mac && n.state?.includes('PERMANENT'),
  );
  const fdb = bridgeJson(ns, ['fdb', 'show', 'dev', 'flannel.1']).some((f) => f.mac === mac && f.dst === publicIP);
  return { route, neigh, fdb };
}

export const all = (s: PeerState) => s.route && s.neigh && s.fdb;
export const none = (s: PeerState) => !s.route && !s.neigh && !s.fdb;

/** The lease a host holds: its key, subnet (CIDR) and parsed value. */
export function leaseOf(
  leases: Map<string, string>,
  publicIP: string,
): { key: string; subnet: string; mac: string; value: any } | undefined {
  for (const [key, raw] of leases) {
    let value: any;
    try {
      value = JSON.parse(raw);
    } catch {
      continue;
    }
    if (value.PublicIP !== publicIP) continue;
    const m = /(\d+\.\d+\.\d+\.\d+)-(\d+)$/.exec(key);
    if (!m) continue;
    return { key, subnet: `${m[1]}/${m[2]}`, mac: value.BackendData?.VtepMAC, value };
  }
  return undefined;
}
