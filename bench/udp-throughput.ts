// TCP throughput between two pod-like namespaces over the udp backend (userspace: flannel0 + UDP in our addon, one
// process per host) and over kernel vxlan set up the flannel way, in the same run on the same topology.
// Run as root: `npm run bench` (not part of `make test`). Prints both rates and the ratio udp / vxlan.
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { Netns, ipn as ip, nsRun } from '../test/helpers/netns.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const namespaces = new Netns();
/** Host A and B, and a pod-like namespace behind each; named (uniquely) in setup(). */
const ns = { hA: '', hB: '', pA: '', pB: '' };
const U = { a: '192.168.77.1', b: '192.168.77.2' };
const children: ChildProcess[] = [];

function setup(): void {
  for (const k of ['hA', 'hB', 'pA', 'pB'] as const) ns[k] = namespaces.add(`flb-${k.toLowerCase()}`);
  namespaces.link(ns.hA, 'eth0', `${U.a}/24`, ns.hB, 'eth0', `${U.b}/24`);
  // Pods: 10.244.1.2 behind host A (gateway 10.244.1.1), 10.244.2.2 behind host B, like the CNI bridge would.
  for (const [h, p, n] of [
    [ns.hA, ns.pA, 1],
    [ns.hB, ns.pB, 2],
  ] as const) {
    namespaces.link(h, 'vpod', `10.244.${n}.1/24`, p, 'eth0', `10.244.${n}.2/24`);
    ip(p, 'route', 'add', 'default', 'via', `10.244.${n}.1`);
    nsRun(h, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  }
}

function podMtu(mtu: number): void {
  for (const [h, p] of [
    [ns.hA, ns.pA],
    [ns.hB, ns.pB],
  ]) {
    ip(h, 'link', 'set', 'vpod', 'mtu', String(mtu));
    ip(p, 'link', 'set', 'eth0', 'mtu', String(mtu));
  }
}

async function startUdpHost(h: string, ext: string, own: string, peer: string): Promise<ChildProcess> {
  const script = join(import.meta.dirname, 'udp-host.ts');
  const child = spawn('ip', ['netns', 'exec', h, process.execPath, '--import', 'tsx', script, 'eth0', ext, own, peer], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`udp host in ${h} not ready within 15 s`)), 15_000);
    lines.on('line', (l) => l === 'ready' && (clearTimeout(t), resolve()));
    child.on('exit', (c) => reject(new Error(`udp host in ${h} exited with ${c}`)));
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const done = new Promise((r) => child.on('exit', r));
  child.kill('SIGTERM');
  await Promise.race([done, sleep(3000).then(() => child.kill('SIGKILL'))]);
}

function vxlanUp(): void {
  const mac = { a: '0e:00:00:00:aa:01', b: '0e:00:00:00:bb:02' };
  for (const [h, me, local, n, peer, peerMac, peerN] of [
    [ns.hA, mac.a, U.a, 1, U.b, mac.b, 2],
    [ns.hB, mac.b, U.b, 2, U.a, mac.a, 1],
  ] as const) {
    ip(
      h,
      'link',
      'add',
      'flannel.1',
      'address',
      me,
      'mtu',
      '1450',
      'type',
      'vxlan',
      'id',
      '1',
      'local',
      local,
      'dev',
      'eth0',
      'dstport',
      '8472',
      'nolearning',
    );
    ip(h, 'addr', 'add', `10.244.${n}.0/32`, 'dev', 'flannel.1');
    ip(h, 'link', 'set', 'flannel.1', 'up');
    ip(h, 'neigh', 'replace', `10.244.${peerN}.0`, 'lladdr', peerMac, 'dev', 'flannel.1', 'nud', 'permanent');
    nsRun(h, 'bridge', ['fdb', 'append', peerMac, 'dev', 'flannel.1', 'dst', peer, 'self', 'permanent']);
    ip(h, 'route', 'replace', `10.244.${peerN}.0/24`, 'via', `10.244.${peerN}.0`, 'dev', 'flannel.1', 'onlink');
  }
}

/** iperf3 TCP pA → pB for SECONDS; receiver-side Mbit/s. Asynchronous so nothing here blocks. */
async function iperf(): Promise<number> {
  const server = spawn('ip', ['netns', 'exec', ns.pB, 'iperf3', '-s', '-1', '-B', '10.244.2.2'], { stdio: 'ignore' });
  children.push(server);
  await sleep(500);
  const out = await new Promise<string>((resolve, reject) => {
    const c = spawn('ip', ['netns', 'exec', ns.pA, 'iperf3', '-c', '10.244.2.2', '-t', String(SECONDS), '-J'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let s = '';
    c.stdout!.on('data', (d) => (s += d));
    const t = setTimeout(() => c.kill('SIGKILL'), (SECONDS + 15) * 1000);
    c.on(
      'exit',
      (code) => (
        clearTimeout(t), code === 0 ? resolve(s) : reject(new Error(`iperf3 failed (${code}): ${s.slice(0, 500)}`))
      ),
    );
  });
  await stop(server);
  return JSON.parse(out).end.sum_received.bits_per_second / 1e6;
}

function cleanup(): void {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  namespaces.cleanup();
}

try {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (network namespaces)');
  setup();
  podMtu(1472);
  const a = await startUdpHost(ns.hA, U.a, '10.244.1.0/24', `10.244.2.0/24=${U.b}`);
  const b = await startUdpHost(ns.hB, U.b, '10.244.2.0/24', `10.244.1.0/24=${U.a}`);
  nsRun(ns.pA, 'ping', ['-c', '1', '-W', '2', '10.244.2.2']);
  const udp = await iperf();
  await stop(a);
  await stop(b);
  podMtu(1450);
  vxlanUp();
  nsRun(ns.pA, 'ping', ['-c', '1', '-W', '2', '10.244.2.2']);
  const vxlan = await iperf();
  console.log(`udp backend (userspace):  ${udp.toFixed(0)} Mbit/s`);
  console.log(`kernel vxlan:             ${vxlan.toFixed(0)} Mbit/s`);
  console.log(`ratio udp / vxlan:        ${(udp / vxlan).toFixed(3)}  (iperf3 TCP, ${SECONDS} s each, pod to pod)`);
} catch (e) {
  console.error(`bench: ${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
