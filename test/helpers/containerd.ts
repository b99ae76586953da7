// A private containerd 1.6 in a host network namespace, and the ctr commands a CNI test needs: import a local image,
// `ctr run --cni` a container (ADD), exec in it, kill it (DEL). Nothing of the machine's own containerd or CNI setup
// is read or written: root, state, sockets and /run/containerd live in a temp dir, and every ctr call runs in a
// private mount namespace where ctr's fixed CNI dirs (/etc/cni/net.d, /opt/cni/bin, /var/lib/cni) are the test's.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { processGone } from './netns.ts';
import { findTool, requireTool } from './tools.ts';
import { until } from './wait.ts';

/** Every command this harness runs (directly, or inside the wrappers and the shims). */
export const CONTAINERD_TOOLS = [
  'containerd',
  'containerd-shim-runc-v2',
  'ctr',
  'runc',
  'busybox',
  'ip',
  'nsenter',
  'unshare',
  'mount',
  'sh',
  'mktemp',
  'mkdir',
];

// ---- the image: busybox-static as a one-layer OCI archive, built here (no registry) ----

interface TarEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink';
  data?: Buffer;
  target?: string;
  mode?: number;
}

/** A ustar archive of `entries` (root-owned, fixed mtime). */
function tar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.type === 'file' ? e.data! : Buffer.alloc(0);
    const h = Buffer.alloc(512);
    const put = (off: number, len: number, s: string) => h.write(s, off, len, 'utf8');
    const oct = (off: number, len: number, n: number) => put(off, len - 1, n.toString(8).padStart(len - 1, '0'));
    put(0, 100, e.name);
    oct(100, 8, e.mode ?? (e.type === 'file' ? 0o644 : 0o755));
    oct(108, 8, 0);
    oct(116, 8, 0);
    oct(124, 12, data.length);
    oct(136, 12, 1_700_000_000);
    put(156, 1, { file: '0', symlink: '2', dir: '5' }[e.type]);
    if (e.target) put(157, 100, e.target);
    put(257, 8, 'ustar\u000000');
    h.fill(' ', 148, 156);
    put(
      148,
      8,
      `${h
        .reduce((a, b) => a + b, 0)
        .toString(8)
        .padStart(6, '0')}\u0000 `,
    );
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const descriptor = (mediaType: string, blob: Buffer) => ({ mediaType, digest: sha256(blob), size: blob.length });

/** True for an ELF executable without a program interpreter (PT_INTERP): it runs in an empty rootfs. */
function isStaticElf(b: Buffer): boolean {
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) return false; // 64-bit little-endian only
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  for (let i = 0; i < b.readUInt16LE(56); i++) if (b.readUInt32LE(phoff + i * phentsize) === 3) return false;
  return true;
}

const OCI_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64' };

/**
 * Writes an OCI image archive (oci-layout, index.json, blobs) to `file`: one gzip'd layer with the host's static
 * /bin/busybox and the applets the tests use. `name` is what `ctr images import` calls it.
 */
export function buildBusyboxImage(file: string, name: string, applets = ['sh', 'ping', 'ip', 'sleep', 'cat']): void {
  requireTool('busybox');
  const busybox = readFileSync(findTool('busybox')!);
  if (!isStaticElf(busybox))
    throw new Error(`${findTool('busybox')} is not statically linked: install busybox-static instead of busybox`);
  const architecture = OCI_ARCH[process.arch];
  if (!architecture) throw new Error(`no OCI architecture for ${process.arch}; add it to OCI_ARCH`);
  const layer = tar([
    ...['bin/', 'dev/', 'etc/', 'proc/', 'sys/', 'tmp/'].map((n): TarEntry => ({ name: n, type: 'dir' })),
    { name: 'bin/busybox', type: 'file', data: busybox, mode: 0o755 },
    ...applets.map((a): TarEntry => ({ name: `bin/${a}`, type: 'symlink', target: 'busybox' })),
  ]);
  const layerGz = gzipSync(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture,
      os: 'linux',
      config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: [sha256(layer)] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: descriptor('application/vnd.oci.image.config.v1+json', config),
      layers: [descriptor('application/vnd.oci.image.layer.v1.tar+gzip', layerGz)],
    }),
  );
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          ...descriptor('application/vnd.oci.image.manifest.v1+json', manifest),
          platform: { architecture, os: 'linux' },
          annotations: {
            'io.containerd.image.name': name,
            'org.opencontainers.image.ref.name': name.slice(name.lastIndexOf(':') + 1),
          },
        },
      ],
    }),
  );
  writeFileSync(
    file,
    tar([
      { name: 'oci-layout', type: 'file', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
      { name: 'index.json', type: 'file', data: index },
      { name: 'blobs/', type: 'dir' },
      { name: 'blobs/sha256/', type: 'dir' },
      ...[config, manifest, layerGz].map(
        (b): TarEntry => ({ name: `blobs/sha256/${sha256(b).slice(7)}`, type: 'file', data: b }),
      ),
    ]),
  );
}

// ---- private mount namespaces ----

const shq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Shell lines that, in a fresh mount namespace, put each `source` dir at its `target` path. A target that does not
 * exist is made inside an overlay of its nearest existing parent, so the machine's own tree is never written to.
 * Every run gets its own upper and work dirs (under `scratch`): overlayfs must not share them between live mounts.
 */
function privateDirs(binds: [target: string, source: string][], scratch: string): string[] {
  const lines = [`scratch=$(mktemp -d ${shq(join(scratch, 'mnt.XXXXXX'))})`];
  const overlaid = new Set<string>();
  for (const [target, source] of binds) {
    let parent = target;
    while (!existsSync(parent)) parent = dirname(parent);
    if (parent !== target && !overlaid.has(parent)) {
      if (parent === '/') throw new Error(`cannot give ${target} a private view: no parent directory of it exists`);
      const n = overlaid.size;
      lines.push(
        `mkdir "$scratch/${n}" "$scratch/${n}/upper" "$scratch/${n}/work"`,
        `mount -t overlay overlay -o "lowerdir=${parent},upperdir=$scratch/${n}/upper,workdir=$scratch/${n}/work" ${shq(parent)}`,
      );
      overlaid.add(parent);
    }
    lines.push(`mkdir -p ${shq(target)}`, `mount --bind ${shq(source)} ${shq(target)}`);
  }
  return lines;
}

// ---- containerd and ctr ----

// No CRI (it would read /etc/cni and /opt/cni itself), no /opt/containerd, no snapshotters that cannot work here.
const DISABLED_PLUGINS = [
  'io.containerd.grpc.v1.cri',
  'io.containerd.internal.v1.opt',
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.snapshotter.v1.devmapper',
];

export interface CniSetup {
  /** The network config list, written as the only file in ctr's /etc/cni/net.d. */
  conflist: object;
  /** Plugin name → the executable linked under that name in ctr's /opt/cni/bin. */
  plugins: Record<string, string>;
  /** PATH of ctr and so of every plugin it runs (e.g. without node, to prove the plugin needs none). */
  path: string;
}

export interface ContainerdOptions {
  /** The host network namespace: containerd, ctr and so the CNI plugins run there. */
  netns: string;
  cni: CniSetup;
  /** overlayfs (default) or native. */
  snapshotter?: string;
}

export interface CtrResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export class Containerd {
  readonly dir = mkdtempSync(join(tmpdir(), 'flannel-containerd-'));
  readonly address = join(this.dir, 'containerd.sock');
  /** containerd namespace; ctr hands the plugins `<namespace>-<id>` as CNI_CONTAINERID. */
  readonly namespace = `fltest-${randomBytes(3).toString('hex')}`;
  /** What ctr sees as /etc/cni/net.d, /opt/cni/bin and /var/lib/cni (libcni's result cache). */
  readonly cniConfDir = join(this.dir, 'cni/net.d');
  readonly cniBinDir = join(this.dir, 'cni/bin');
  readonly cniCacheDir = join(this.dir, 'cni/cache');
  readonly containers: Container[] = [];
  private proc?: ChildProcess;
  private exit?: Promise<void>;
  private ctrScript = join(this.dir, 'ctr.sh');
  private readonly snapshotter: string;

  private constructor(readonly opts: ContainerdOptions) {
    this.snapshotter = opts.snapshotter ?? 'overlayfs';
  }

  /** Starts containerd in `opts.netns`; resolves once it answers. On failure everything is stopped again. */
  static async start(opts: ContainerdOptions): Promise<Containerd> {
    requireTool(...CONTAINERD_TOOLS);
    const c = new Containerd(opts);
    live.add(c);
    try {
      await c.launch();
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  get log(): string {
    try {
      return readFileSync(join(this.dir, 'containerd.log'), 'utf8');
    } catch {
      return '';
    }
  }

  private async launch(): Promise<void> {
    const { dir } = this;
    for (const d of [this.cniConfDir, this.cniBinDir, this.cniCacheDir, join(dir, 'run'), join(dir, 'fifo')])
      mkdirSync(d, { recursive: true });
    writeFileSync(join(this.cniConfDir, '10-flannel.conflist'), JSON.stringify(this.opts.cni.conflist, null, 2));
    // Links, not copies: the self-contained plugin is ~100 MB.
    for (const [name, src] of Object.entries(this.opts.cni.plugins))
      symlinkSync(resolve(src), join(this.cniBinDir, name));
    writeFileSync(
      join(dir, 'config.toml'),
      [
        'version = 2',
        `root = ${JSON.stringify(join(dir, 'root'))}`,
        `state = ${JSON.stringify(join(dir, 'state'))}`,
        `disabled_plugins = ${JSON.stringify(DISABLED_PLUGINS)}`,
        `[grpc]\n  address = ${JSON.stringify(this.address)}`,
        `[ttrpc]\n  address = ${JSON.stringify(`${this.address}.ttrpc`)}`,
        '',
      ].join('\n'),
    );
    // The shims put their sockets (and runc its state) under /run/containerd, a fixed path in 1.6.
    writeFileSync(
      join(dir, 'containerd.sh'),
      [
        'set -e',
        ...privateDirs([['/run/containerd', join(dir, 'run')]], dir),
        `exec ${shq(findTool('containerd')!)} --config ${shq(join(dir, 'config.toml'))}`,
        '',
      ].join('\n'),
    );
    // ctr run (it runs the plugins itself): the CNI dirs are the test's; its FIFOs go to --fifo-dir.
    writeFileSync(
      this.ctrScript,
      [
        'set -e',
        ...privateDirs(
          [
            ['/etc/cni/net.d', this.cniConfDir],
            ['/opt/cni/bin', this.cniBinDir],
            ['/var/lib/cni', this.cniCacheDir],
          ],
          dir,
        ),
        `export PATH=${shq(this.opts.cni.path)}`,
        `exec ${shq(findTool('ctr')!)} --address ${shq(this.address)} --namespace ${shq(this.namespace)} "$@"`,
        '',
      ].join('\n'),
    );

    const log = openSync(join(dir, 'containerd.log'), 'a');
    // nsenter keeps the root mount namespace's /sys (ip netns exec mounts a fresh sysfs without the cgroup
    // hierarchy, which runc needs); the netns is entered before /run is overlaid, while /run/netns is still visible.
    this.proc = spawn(
      'nsenter',
      [`--net=/run/netns/${this.opts.netns}`, 'unshare', '--mount', 'sh', join(dir, 'containerd.sh')],
      {
        stdio: ['ignore', log, log],
        env: {
          ...process.env,
          PATH: `${process.env.PATH ?? ''}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
        },
      },
    );
    closeSync(log);
    this.exit = new Promise((resolve) => this.proc!.on('exit', () => resolve()));
    const up = await until(
      'containerd to answer',
      () => {
        if (this.proc!.exitCode !== null || this.proc!.signalCode !== null) return 'exited';
        return this.ctr(['version'], 5000).status === 0 && 'up';
      },
      20_000,
      100,
    ).catch((e: Error) => e.message);
    if (up !== 'up') throw new Error(`${up === 'exited' ? 'containerd exited' : up}; containerd log:\n${this.log}`);
  }

  /** ctr with this containerd's socket and namespace (any netns: it only talks to the socket). */
  ctr(args: string[], timeout = 30_000): CtrResult {
    const r = spawnSync('ctr', ['--address', this.address, '--namespace', this.namespace, ...args], {
      encoding: 'utf8',
      timeout,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return {
      status: r.status,
      stdout: r.stdout ?? '',
      stderr: `${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}`,
    };
  }

  /** The argv (for `ip`) of a ctr that runs CNI plugins: in the host netns, with the private CNI dirs and PATH. */
  private cniCtrArgv(args: string[]): string[] {
    return ['netns', 'exec', this.opts.netns, 'unshare', '--mount', 'sh', this.ctrScript, ...args];
  }

  /** ctr that must succeed; returns stdout. */
  ctrOk(args: string[], timeout?: number): string {
    const r = this.ctr(args, timeout);
    if (r.status !== 0) throw new Error(`ctr ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Imports an OCI archive (unpacked for this snapshotter); returns the image names now known. */
  importImage(archive: string): string[] {
    this.ctrOk(['images', 'import', '--snapshotter', this.snapshotter, archive], 60_000);
    return this.ctrOk(['images', 'ls', '-q']).split('\n').filter(Boolean);
  }

  /** Task id → [pid, status] from `ctr tasks ls`. */
  tasks(): Map<string, [number, string]> {
    const lines = this.ctrOk(['tasks', 'ls']).trim().split('\n').slice(1);
    return new Map(lines.map((l) => l.trim().split(/\s+/)).map(([id, pid, status]) => [id!, [Number(pid), status!]]));
  }

  /**
   * `ctr run --rm --cni <image> <id> <args>`, attached as a runtime would keep it: ctr runs the CNI ADD before it
   * starts the task and the DEL once the task has exited. Resolves when the task runs (so ADD has succeeded).
   */
  async run(image: string, id: string, args: string[]): Promise<Container> {
    const argv = this.cniCtrArgv([
      'run',
      '--rm',
      '--cni',
      '--snapshotter',
      this.snapshotter,
      '--fifo-dir',
      join(this.dir, 'fifo'),
      image,
      id,
      ...args,
    ]);
    const c = new Container(this, id, spawn('ip', argv, { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.containers.push(c);
    const pid = await until(
      `container ${id} to run`,
      () => {
        if (!c.running) return -1;
        const t = this.tasks().get(id);
        return t?.[1] === 'RUNNING' && t[0];
      },
      30_000,
      100,
    ).catch((e: Error) => e.message);
    if (typeof pid !== 'number' || pid < 0) {
      const why = pid === -1 ? `ctr run exited (${c.proc.exitCode ?? c.proc.signalCode})` : pid;
      throw new Error(
        `${why}\nctr run output: ${c.output}\ncontainerd log (tail):\n${this.log.split('\n').slice(-20).join('\n')}`,
      );
    }
    c.pid = pid;
    return c;
  }

  /** Stops every container, containerd, its shims and their containers, by pid; removes the temp dir. Idempotent. */
  async stop(): Promise<void> {
    for (const c of this.containers) if (c.running) await c.kill().catch(() => c.proc.kill('SIGKILL'));
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      // What ctr run did not clean up (a failed ADD leaves a created task behind).
      for (const id of this.ctr(['tasks', 'ls', '-q'], 10_000).stdout.split('\n').filter(Boolean))
        this.ctr(['tasks', 'delete', '--force', id], 10_000);
      for (const id of this.ctr(['containers', 'ls', '-q'], 10_000).stdout.split('\n').filter(Boolean))
        this.ctr(['containers', 'delete', id], 10_000);
    }
    const leftovers = [...this.shimPids(), ...this.taskPids()];
    if (this.proc?.pid && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc!.kill('SIGKILL'), 5000);
      await this.exit;
      clearTimeout(timer);
    }
    for (const pid of leftovers) killPid(pid);
    await until('the shims and containers to exit', () => leftovers.every((p) => processGone(p, 0)), 10_000, 50).catch(
      () => undefined,
    );
    this.removeCgroups();
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  /**
   * The last resort when the test process exits without stop() (synchronous, for process 'exit'): SIGKILL what this
   * containerd started, by pid, then drop its cgroups and temp dir.
   */
  stopNow(): void {
    const daemon =
      this.proc && this.proc.exitCode === null && this.proc.signalCode === null ? this.proc.pid : undefined;
    const ctrs = this.containers.filter((c) => c.running).map((c) => c.proc.pid);
    const pids = [...ctrs, daemon, ...this.shimPids(), ...this.taskPids()].filter((p) => p !== undefined);
    for (const pid of pids) killPid(pid);
    const deadline = Date.now() + 3000;
    for (const pid of pids) processGone(pid, Math.max(0, deadline - Date.now()));
    this.removeCgroups();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The shims of this containerd: the processes started with `-address <our socket>`. */
  private shimPids(): number[] {
    return readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
          return argv.some((a, i) => a === '-address' && argv[i + 1] === this.address);
        } catch {
          return false;
        }
      })
      .map(Number);
  }

  /** The init pids of tasks containerd still knows (from its state dir). */
  private taskPids(): number[] {
    const dir = join(this.dir, 'state/io.containerd.runtime.v2.task', this.namespace);
    if (!existsSync(dir)) return [];
    return readdirSync(dir).flatMap((id) => {
      try {
        return [Number(readFileSync(join(dir, id, 'init.pid'), 'utf8'))];
      } catch {
        return [];
      }
    });
  }

  /** runc leaves `/<namespace>` in every cgroup hierarchy; it is ours and empty once the tasks are gone. */
  private removeCgroups(): void {
    const base = '/sys/fs/cgroup';
    const roots = [
      base,
      ...readdirSync(base, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => join(base, d.name)),
    ];
    for (const root of roots) {
      const ns = join(root, this.namespace);
      if (!existsSync(ns)) continue;
      for (const d of readdirSync(ns, { withFileTypes: true })) if (d.isDirectory()) rmdirQuiet(join(ns, d.name));
      rmdirQuiet(ns);
    }
  }
}

const live = new Set<Containerd>();
process.on('exit', () => {
  for (const c of live) c.stopNow();
});

export class Container {
  pid = 0;
  output = '';
  private exit: Promise<number | null>;

  constructor(
    readonly containerd: Containerd,
    readonly id: string,
    readonly proc: ChildProcess,
  ) {
    proc.stdout!.on('data', (b) => (this.output += b));
    proc.stderr!.on('data', (b) => (this.output += b));
    this.exit = new Promise((resolve) => proc.on('close', (code) => resolve(code)));
  }

  /** The id ctr gives the CNI plugins (CNI_CONTAINERID): `<namespace>-<id>`. */
  get cniId(): string {
    return `${this.containerd.namespace}-${this.id}`;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The container's network namespace, seen from the host. */
  get netnsPath(): string {
    return `/proc/${this.pid}/ns/net`;
  }

  /** `ip -json <args>` inside the container's network namespace (the host's ip, so it parses the same). */
  ipJson(args: string[]): any[] {
    const r = spawnSync('nsenter', [`--net=${this.netnsPath}`, 'ip', '-json', ...args], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    if (r.status !== 0) throw new Error(`ip -json ${args.join(' ')} in container ${this.id} failed: ${r.stderr}`);
    return r.stdout.trim() ? JSON.parse(r.stdout) : [];
  }

  /** The IPv4 address (with prefix length) of `dev` inside the container. */
  ipv4(dev = 'eth0'): { local: string; prefixlen: number } | undefined {
    return this.ipJson(['-4', 'addr', 'show', 'dev', dev])[0]?.addr_info?.find((a: any) => a.family === 'inet');
  }

  private execSeq = 0;

  /** `ctr tasks exec` of `args` inside the container. */
  exec(args: string[], timeout = 30_000): CtrResult {
    return this.containerd.ctr(
      [
        'tasks',
        'exec',
        '--fifo-dir',
        join(this.containerd.dir, 'fifo'),
        '--exec-id',
        `exec-${++this.execSeq}`,
        this.id,
        ...args,
      ],
      timeout,
    );
  }

  /** True when all `count` pings from inside the container to `dst` got an answer (busybox ping). */
  pings(dst: string, count = 3): boolean {
    const r = this.exec(['ping', '-c', String(count), '-i', '0.2', '-W', '2', dst]);
    return r.status === 0 && new RegExp(`${count} packets received`).test(r.stdout);
  }

  /**
   * SIGKILLs the task; ctr run then deletes it, runs the CNI DEL and removes the container (--rm). Resolves with
   * ctr run's exit code (137 for a killed task).
   */
  async kill(ms = 20_000): Promise<number | null> {
    if (this.running) this.containerd.ctr(['tasks', 'kill', '--signal', 'SIGKILL', this.id], 10_000);
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => {
      t = setTimeout(
        () => rej(new Error(`ctr run ${this.id} still running ${ms} ms after the kill; output: ${this.output}`)),
        ms,
      );
    });
    try {
      return await Promise.race([this.exit, timeout]);
    } finally {
      clearTimeout(t);
    }
  }
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

function rmdirQuiet(p: string): void {
  try {
    rmdirSync(p);
  } catch {
    /* not empty or gone: not ours to force */
  }
}
