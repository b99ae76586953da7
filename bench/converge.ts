// Convergence at scale: N fake vxlan peer leases already in a real etcd (written the way flanneld writes them, public
// IPs in 198.18.0.0/15 that are never contacted); the time from flanneld's start until the kernel holds all N onlink
// routes, permanent neighbours and FDB entries, flanneld's RSS and CPU time then, and the incremental convergence
// (one lease added, one removed, one VtepMAC changed: until the kernel shows it). The baseline, measured in the
// same run: `ip -batch` + `bridge -batch` writing the same 3N entries into a fresh namespace (the kernel's floor).
// Run as root: `npm run bench` (all benchmarks) or `node --import tsx bench/converge.ts [N ...]`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { flanneldArgv } from '../src/util/self.ts';
import { until } from '../src/util/time.ts';
import { openNetlink, type EntryWatchEvent, type Netlink } from '../src/netlink/index.ts';
import { startEtcd, type EtcdHandle } from '../test/helpers/etcd.ts';
import { Netns, ipn as ip } from '../test/helpers/netns.ts';
import { peer } from './lib/fake-peers.ts';

const SIZES = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const NS = SIZES.length ? SIZES : [1000, 5000];
const TIMEOUT_MS = 120_000;
const DIST = join(import.meta.dirname, '../dist/flanneld.cjs');

const ms = (ns: bigint) => Number(ns) / 1e6;
const now = () => process.hrtime.bigint();
const pause = (t: number) => new Promise((r) => setTimeout(r, t));

/** Host namespace with eth0 (192.168.79.1/24, default route) towards a switch namespace, as a node would have. */
function makeHost(namespaces: Netns): string {
  const h = namespaces.add('flb-cv-h');
  const sw = namespaces.add('flb-cv-s');
  namespaces.link(h, 'eth0', '192.168.79.1/24', sw, 'eth0', '192.168.79.2/24');
  ip(h, 'route', 'add', 'default', 'via', '192.168.79.2');
  return h;
}

/** Counts of flannel's entries on flannel.1: onlink routes, permanent neighbours, FDB entries with a dst. */
async function kernelCounts(nl: Netlink): Promise<{ routes: number; neighbours: number; fdb: number }> {
  const dev = await nl.linkByName('flannel.1');
  if (!dev) return { routes: 0, neighbours: 0, fdb: 0 };
  const [routes, neighbours, fdb] = await Promise.all([
    nl.routes(4, { table: 254 }),
    nl.neighbours(dev.index, 4),
    nl.fdb(dev.index),
  ]);
  return {
    routes: routes.filter((r) => r.oif === dev.index && r.onlink).length,
    neighbours: neighbours.filter((n) => n.permanent).length,
    fdb: fdb.filter((f) => f.dst?.startsWith('198.')).length,
  };
}

function procStats(pid: number): { rssMB: number; cpuS: number } {
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]); // utime + stime, after the "(comm) " field
  return { rssMB: rss ? Number(rss[1]) / 1024 : NaN, cpuS: ticks / 100 };
}

/** The floor: the same 3N entries written by ip -batch and bridge -batch into a fresh namespace with a vxlan device. */
function floor(namespaces: Netns, n: number): number {
  const h = namespaces.add('flb-cv-f');
  ip(h, 'link', 'add', 'flannel.1', 'type', 'vxlan', 'id', '1', 'dstport', '8472', 'nolearning');
  ip(h, 'link', 'set', 'flannel.1', 'up');
  const ipLines: string[] = [];
  const fdbLines: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = JSON.parse(peer(i).value) as { PublicIP: string; BackendData: { VtepMAC: string } };
    const net = peer(i).key.split('/').pop()!.replace('-', '/');
    const gw = net.replace(/\/24$/, '');
    ipLines.push(
      `route replace ${net} via ${gw} dev flannel.1 onlink`,
      `neigh replace ${gw} lladdr ${v.BackendData.VtepMAC} dev flannel.1 nud permanent`,
    );
    fdbLines.push(`fdb append ${v.BackendData.VtepMAC} dev flannel.1 dst ${v.PublicIP} self permanent`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'flb-cv-'));
  writeFileSync(join(dir, 'ip'), `${ipLines.join('\n')}\n`);
  writeFileSync(join(dir, 'bridge'), `${fdbLines.join('\n')}\n`);
  const t0 = now();
  for (const [cmd, file] of [
    ['ip', 'ip'],
    ['bridge', 'bridge'],
  ] as const) {
    const r = spawnSync('ip', ['netns', 'exec', h, cmd, '-batch', join(dir, file)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} -batch: ${r.stderr}`);
  }
  const t = ms(now() - t0);
  rmSync(dir, { recursive: true, force: true });
  return t;
}

interface Run {
  n: number;
  convergeMs: number;
  floorMs: number;
  rssMB: number;
  /** RSS 2 s after converging, the incremental changes done: what the agent keeps once startup's garbage is collected. */
  settledRssMB: number;
  cpuS: number;
  addMs: number;
  delMs: number;
  macMs: number;
}

async function measure(n: number): Promise<Run> {
  const namespaces = new Netns();
  const children: ChildProcess[] = [];
  let etcd: EtcdHandle | undefined;
  let nl: Netlink | undefined;
  const subnetDir = mkdtempSync(join(tmpdir(), 'flb-cv-env-'));
  try {
    const h = makeHost(namespaces);
    etcd = await startEtcd({ netns: h, host: '127.0.0.1' });
    const loader = spawn(
      'ip',
      [
        'netns',
        'exec',
        h,
        process.execPath,
        '--import',
        'tsx',
        join(import.meta.dirname, 'lib/etcd-loader.ts'),
        etcd.endpoint,
        String(n),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    children.push(loader);
    const answers = createInterface({ input: loader.stdout! })[Symbol.asyncIterator]();
    const next = async () => {
      const r = await answers.next();
      if (r.done) throw new Error('the etcd loader stopped');
      return r.value;
    };
    if ((await next()) !== 'loaded') throw new Error('the etcd loader did not load');
    nl = await openNetlink({ netns: h });
    const t0 = now();
    // BENCH_PROFILE=<dir>: a CPU profile of flanneld (written when it exits on SIGTERM at the end).
    const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
    const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const flanneld = spawn(
      'ip',
      [
        'netns',
        'exec',
        h,
        // As the DaemonSet runs it (the file itself), with its first line's node flags; BENCH_NODE_ARGS adds more.
        ...flanneldArgv(DIST).slice(0, -1),
        ...nodeArgs,
        ...profile,
        DIST,
        `--etcd-endpoints=${etcd.endpoint}`,
        '--iface=eth0',
        `--subnet-file=${join(subnetDir, 'subnet.env')}`,
      ],
      { stdio: ['ignore', 'ignore', process.env.BENCH_LOG ? 'inherit' : 'ignore'] },
    );
    children.push(flanneld);
    const nlRef = nl;
    const done = await until(
      `flanneld converging on ${n} peers`,
      async () => {
        const c = await kernelCounts(nlRef);
        return c.routes === n && c.neighbours === n && c.fdb === n && now();
      },
      TIMEOUT_MS,
      20,
    );
    const convergeMs = ms(done - t0);
    const stats = procStats(flanneld.pid!);
    // Incremental: the kernel's own notifications tell when the last entry of the change is in (no polling lag).
    const watch = new AbortController();
    const seen: Array<{ at: bigint; ev: EntryWatchEvent }> = [];
    let wake: (() => void) | undefined;
    void (async () => {
      for await (const ev of nlRef.watchEntries(watch.signal)) {
        seen.push({ at: now(), ev });
        wake?.();
      }
    })().catch(() => undefined);
    await pause(100);
    const incremental = async (cmd: string, done: (ev: EntryWatchEvent) => boolean) => {
      seen.length = 0;
      loader.stdin!.write(`${cmd}\n`);
      const sent = BigInt(await next());
      const deadline = Date.now() + 10_000;
      for (;;) {
        const hit = seen.find((x) => done(x.ev));
        if (hit) return ms(hit.at - sent);
        if (Date.now() > deadline) throw new Error(`${cmd}: the kernel did not show it within 10 s`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
      }
    };
    const added = peer(n);
    const addedNet = added.key.split('/').pop()!.replace('-', '/');
    const addMs = await incremental(
      `add ${n}`,
      (ev) => ev.type === 'new' && ev.kind === 'route' && ev.route.dst === addedNet,
    );
    const delMs = await incremental(
      `del ${n}`,
      (ev) => ev.type === 'del' && ev.kind === 'route' && ev.route.dst === addedNet,
    );
    const macMs = await incremental(
      'mac 0',
      (ev) => ev.type === 'new' && ev.kind === 'neighbour' && ev.neighbour.mac === '0e:01:00:00:00:00',
    );
    watch.abort();
    await pause(Math.max(0, Number(process.env.SETTLE_MS ?? 2000) - ms(now() - done)));
    const settled = procStats(flanneld.pid!);
    loader.stdin!.end('quit\n');
    if (profile.length) {
      flanneld.kill('SIGTERM');
      await new Promise((r) => flanneld.once('exit', r));
    }
    return {
      n,
      convergeMs,
      floorMs: floor(namespaces, n),
      rssMB: stats.rssMB,
      settledRssMB: settled.rssMB,
      cpuS: stats.cpuS,
      addMs,
      delMs,
      macMs,
    };
  } finally {
    nl?.close();
    for (const c of children) c.kill('SIGKILL');
    await etcd?.destroy().catch(() => undefined);
    namespaces.cleanup();
    rmSync(subnetDir, { recursive: true, force: true });
  }
}

const GOALS: Record<number, number> = { 1000: 450, 5000: 2200 };

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: the bench makes network namespaces');
  const runs: Run[] = [];
  for (const n of NS) runs.push(await measure(n));
  console.log('startup convergence (flanneld start → all N routes, neighbours, FDB entries in the kernel):');
  for (const r of runs) {
    const goal = GOALS[r.n] !== undefined ? `, goal ≤ ${GOALS[r.n]} ms` : '';
    console.log(
      `  N=${r.n}: flanneld ${r.convergeMs.toFixed(0)} ms, floor (ip/bridge -batch) ${r.floorMs.toFixed(0)} ms, ratio ${(r.convergeMs / r.floorMs).toFixed(1)}×${goal}`,
    );
  }
  for (const r of runs) {
    console.log(
      `  N=${r.n}: flanneld RSS ${r.rssMB.toFixed(0)} MB at convergence, ${r.settledRssMB.toFixed(0)} MB 2 s later (goal ≤ 80 MB at 5000), CPU ${r.cpuS.toFixed(2)} s to converge (goal ≤ 2 s at 5000)`,
    );
    console.log(
      `  N=${r.n}: incremental: lease added ${r.addMs.toFixed(1)} ms, removed ${r.delMs.toFixed(1)} ms, VtepMAC changed ${r.macMs.toFixed(1)} ms (goal ≤ 50 ms)`,
    );
  }
}

void main().catch((e) => {
  console.error(`bench converge: ${(e as Error).message}`);
  process.exit(1);
});
