// `flannelctl lab`: a multi-host flannel cluster in network namespaces (etcd + one flanneld per host + pods).
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { masqueradeCount } from '../inspect/counters.ts';
import { parseIptablesSave } from '../inspect/netfilter-iptables.ts';
import { flanneldArgv } from '../util/self.ts';
import { waitUntil } from '../util/time.ts';
import { netnsList, netnsPids, sh, shQuiet, spawnDetachedInNetns } from './exec.ts';
import { kubeApiUrl, kubeFlanneldArgs, kubeNodesSummary, labNodeSpecs, startKubeApiServer } from './kube-lab.ts';
import { plugIntoBridge } from './plug.ts';
import { formatMatrix, lossPercent, pingMatrix, type PingTarget } from './ping-matrix.ts';
import {
  LAB_DIR,
  LAB_PREFIX,
  labCniConfig,
  labHasV4,
  labHasV6,
  labNetworkConfig,
  labStackName,
  labTopology,
  type LabHost,
  type LabTopology,
} from './topology.ts';

export interface LabUpOptions {
  hosts: number;
  podsPerHost: number;
  backend: string;
  /** Directory holding flanneld.cjs and flannel.cjs. */
  distDir: string;
  /** Kubernetes mode: the fake API server replaces etcd and flanneld runs with --kube-subnet-mgr. */
  kube?: boolean;
  /** nftables mode for the masquerade/forward rules. */
  nftables?: boolean;
  /** IPv4 + IPv6 pod networks. */
  dualStack?: boolean;
  /** IPv6 pod network only. */
  ipv6Only?: boolean;
}

interface LabState {
  topology: LabTopology;
  /** Each pod's IPv4 address (empty on an IPv6-only lab). */
  pods: Record<string, string>;
  /** Dual stack and IPv6-only: each pod's IPv6 address. */
  podsV6?: Record<string, string>;
  kube?: boolean;
}

const say = (m: string) => process.stdout.write(`${m}\n`);
const statePath = join(LAB_DIR, 'state.json');

function ipn(ns: string, args: string[]): string {
  return sh('ip', ['-n', ns, ...args]);
}

function makeUnderlay(t: LabTopology): void {
  sh('ip', ['netns', 'add', t.switchNs]);
  ipn(t.switchNs, ['link', 'add', 'br0', 'type', 'bridge']);
  ipn(t.switchNs, ['link', 'set', 'br0', 'up']);
  const attach = (ns: string, ip: string, a: string, b: string) => {
    sh('ip', ['netns', 'add', ns]);
    ipn(ns, ['link', 'set', 'lo', 'up']);
    plugIntoBridge({ ns, ifname: 'eth0', sw: t.switchNs, bridge: 'br0', addresses: [[`${ip}/24`]], names: [a, b] });
  };
  attach(t.etcdNs, t.etcdIp, `${LAB_PREFIX}0a`, `${LAB_PREFIX}0b`);
  for (const h of t.hosts) {
    attach(h.ns, h.ip, h.vethHost, h.vethSwitch);
    // flanneld finds eth0 through the default route, as on a real host.
    ipn(h.ns, ['route', 'add', 'default', 'dev', 'eth0']);
    sh('ip', ['netns', 'exec', h.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    if (labHasV6(t)) {
      ipn(h.ns, ['-6', 'addr', 'add', `${h.ipv6}/64`, 'dev', 'eth0', 'nodad']);
      ipn(h.ns, ['-6', 'route', 'add', 'default', 'dev', 'eth0']);
      sh('ip', ['netns', 'exec', h.ns, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
    }
    mkdirSync(h.dir, { recursive: true });
  }
}

async function startEtcd(t: LabTopology): Promise<void> {
  const dir = join(LAB_DIR, 'etcd');
  mkdirSync(dir, { recursive: true });
  const url = t.etcdEndpoint;
  const peer = `http://${t.etcdIp}:2380`;
  spawnDetachedInNetns(
    t.etcdNs,
    [
      'etcd',
      '--name',
      'lab',
      '--data-dir',
      join(dir, 'data'),
      '--listen-client-urls',
      url,
      '--advertise-client-urls',
      url,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `lab=${peer}`,
    ],
    join(LAB_DIR, 'etcd.log'),
  );
  const healthy = () => {
    try {
      etcdctl(t, ['endpoint', 'health']);
      return true;
    } catch {
      return false;
    }
  };
  await waitUntil(healthy, 20_000, `etcd did not become healthy in 20 s; see ${LAB_DIR}/etcd.log`);
}

function etcdctl(t: LabTopology, args: string[]): string {
  return sh('ip', ['netns', 'exec', t.etcdNs, 'etcdctl', `--endpoints=${t.etcdEndpoint}`, ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
  });
}

/** flanneld's health server (/readyz, /peers) on each host's own loopback; `flannelctl lab peers` reads it. */
export const LAB_HEALTHZ_PORT = 8081;

function startFlanneld(t: LabTopology, h: LabHost, distDir: string, kube = false): void {
  const source = kube ? kubeFlanneldArgs(t, h) : [`--etcd-endpoints=${t.etcdEndpoint}`];
  spawnDetachedInNetns(
    h.ns,
    [
      ...flanneldArgv(join(distDir, 'flanneld.cjs')),
      ...source,
      `--subnet-file=${h.subnetFile}`,
      '--ip-masq',
      '--iptables-resync=5',
      '--healthz-ip=127.0.0.1',
      `--healthz-port=${LAB_HEALTHZ_PORT}`,
    ],
    join(h.dir, 'flanneld.log'),
    kube ? { ...process.env, NODE_NAME: h.name } : undefined,
  );
}

async function waitForFile(path: string, what: string, logFile: string): Promise<void> {
  await waitUntil(
    () => existsSync(path),
    30_000,
    () => {
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '(no log)';
      return `${what} did not write ${path} within 30 s. Last lines of ${logFile}:\n${tail}`;
    },
  );
}

/** A host's subnet.env on one line, for the lab's printouts. */
function subnetEnvLine(h: LabHost): string {
  return readFileSync(h.subnetFile, 'utf8').trim().replace(/\n/g, ' ');
}

function cniAdd(t: LabTopology, h: LabHost, podNs: string, distDir: string): { v4?: string; v6?: string } {
  sh('ip', ['netns', 'add', podNs]);
  ipn(podNs, ['link', 'set', 'lo', 'up']);
  // The plugin users install: the single executable, run with no node on its PATH as a container runtime would.
  const out = sh('ip', ['netns', 'exec', h.ns, join(distDir, 'bin', 'flannel')], {
    input: labCniConfig(h),
    env: {
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: podNs,
      CNI_NETNS: `/var/run/netns/${podNs}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni',
    },
  });
  const ips = ((JSON.parse(out) as { ips?: { address: string }[] }).ips ?? []).map((x) => x.address.split('/')[0]!);
  const v4 = ips.find((a) => !a.includes(':'));
  const v6 = ips.find((a) => a.includes(':'));
  if (labHasV4(t) && !v4) throw new Error(`CNI ADD for ${podNs} returned no IPv4 address: ${out}`);
  if (labHasV6(t) && !v6)
    throw new Error(`CNI ADD for ${podNs} returned no IPv6 address in ${labStackName(t)} mode: ${out}`);
  return { v4, v6 };
}

export async function labUp(o: LabUpOptions): Promise<boolean> {
  for (const f of ['flanneld.cjs', 'flannel.cjs']) {
    if (!existsSync(join(o.distDir, f)))
      throw new Error(`${join(o.distDir, f)} is missing: run \`npm run build\` first`);
  }
  if (netnsList().some((n) => n.startsWith(`${LAB_PREFIX}-`)) || existsSync(LAB_DIR)) {
    say('A previous lab is still there; tearing it down first.');
    labDown();
  }
  const t = labTopology(o.hosts, o.podsPerHost, o.backend, o.nftables, o.dualStack, o.ipv6Only);
  const state: LabState = { topology: t, pods: {}, kube: o.kube };
  mkdirSync(LAB_DIR, { recursive: true });
  const save = () => writeFileSync(statePath, JSON.stringify(state, null, 2));
  save();
  try {
    say(
      `Creating ${t.hosts.length} hosts on underlay ${t.etcdIp.replace(/\.2$/, '.0/24')} (switch namespace ${t.switchNs})`,
    );
    makeUnderlay(t);
    if (o.kube) {
      say(
        `Starting the fake Kubernetes API server (plain HTTP) in ${t.etcdNs} at ${kubeApiUrl(t)} with nodes ${labNodeSpecs(t)}`,
      );
      await startKubeApiServer(t);
    } else {
      say(`Starting etcd in ${t.etcdNs} at ${t.etcdEndpoint}`);
      await startEtcd(t);
      etcdctl(t, ['put', '/coreos.com/network/config', labNetworkConfig(t)]);
    }
    say(`Network config: ${labNetworkConfig(t)}`);
    for (const h of t.hosts) startFlanneld(t, h, o.distDir, o.kube);
    for (const h of t.hosts) await waitForFile(h.subnetFile, `flanneld on ${h.ns}`, join(h.dir, 'flanneld.log'));
    for (const h of t.hosts) say(`  ${h.ns}  eth0 ${h.ip}  ${subnetEnvLine(h)}`);
    for (const h of t.hosts) {
      for (const p of h.pods) {
        const ips = cniAdd(t, h, p.ns, o.distDir);
        if (ips.v4) state.pods[p.ns] = ips.v4;
        if (ips.v6 && labHasV6(t)) (state.podsV6 ??= {})[p.ns] = ips.v6;
        save();
        say(`  pod ${p.ns} on ${h.ns}: ${[ips.v4, ips.v6].filter(Boolean).join(' ')}`);
      }
    }
    if (labHasV6(t))
      await waitForIPv6Dad([...t.hosts.map((h) => h.ns), ...t.hosts.flatMap((h) => h.pods.map((p) => p.ns))]);
  } catch (e) {
    say(`lab up failed: ${(e as Error).message}`);
    say('Tearing down what was created.');
    labDown();
    return false;
  }
  const ok = await labCheck(state);
  say('');
  say('Look around:');
  say(`  ip netns list | grep ${LAB_PREFIX}`);
  for (const hint of backendHints(t.backend, t.hosts[0]!.ns)) say(`  ${hint}`);
  const peerPod = t.hosts[1]!.pods[0]!.ns;
  say(`  ip netns exec ${t.hosts[0]!.pods[0]!.ns} ping ${state.pods[peerPod] ?? state.podsV6?.[peerPod]}`);
  say(
    o.kube
      ? `  ${kubeNodesSummary(t)} (from inside ${t.hosts[0]!.ns})`
      : `  ip netns exec ${t.etcdNs} env ETCDCTL_API=3 etcdctl --endpoints=${t.etcdEndpoint} get --prefix /coreos.com/network`,
  );
  say(`  logs: ${LAB_DIR}/<host>/flanneld.log`);
  say('Status: node dist/flannelctl.cjs lab status    Tear down: make lab-down (node dist/flannelctl.cjs lab down)');
  return ok;
}

/**
 * New IPv6 addresses (cni0's gateway, the pods') stay "tentative" during duplicate address detection (~1-2 s) and
 * answer no neighbour solicitations meanwhile; ping once they are usable, as a pod started by kubelet would be.
 */
async function waitForIPv6Dad(namespaces: string[]): Promise<void> {
  const tentative = (ns: string) =>
    JSON.parse(ipn(ns, ['-6', '-j', 'addr', 'show', 'tentative']) || '[]') as Array<{ addr_info?: unknown[] }>;
  let waiting: string[] = [];
  const settled = () => {
    waiting = namespaces.filter((ns) => tentative(ns).some((l) => (l.addr_info ?? []).length > 0));
    return waiting.length === 0;
  };
  await waitUntil(
    settled,
    15_000,
    () => `IPv6 addresses still tentative (duplicate address detection) after 15 s in ${waiting.join(', ')}`,
  );
}

/** Where each backend's kernel state can be seen, and the command that checks all of it. */
function backendHints(backend: string, ns: string): string[] {
  const x = `ip netns exec ${ns}`;
  const doctor = `node dist/flannelctl.cjs lab doctor ${ns} [--probe]    # every check of the node, with the fix for what is wrong`;
  switch (backend) {
    case 'vxlan':
      return [
        `${x} ip -d link show flannel.1`,
        `${x} ip route; ${x} ip neigh show dev flannel.1; ${x} bridge fdb show dev flannel.1`,
        doctor,
      ];
    case 'udp':
      return [`${x} ip -d link show flannel0`, `${x} ip route`, doctor];
    default:
      return [
        `${x} ip route    # ${backend}: one route per peer via its underlay IP`,
        `node dist/flannelctl.cjs lab peers ${ns}    # each peer's route: programmed, or failed and why`,
        doctor,
      ];
  }
}

/**
 * Per pod network family: the ping matrix between all pods, and pod → other hosts' underlay address (leaves the host
 * masqueraded). True when every pair is at 0 % loss and, in iptables mode, every host's MASQUERADE rule counted packets.
 */
async function labCheck(state: LabState): Promise<boolean> {
  const t = state.topology;
  const families: Array<{ v: 4 | 6; ips: Record<string, string>; underlay: (h: LabHost) => string }> = [];
  if (labHasV4(t)) families.push({ v: 4, ips: state.pods, underlay: (h) => h.ip });
  if (labHasV6(t)) families.push({ v: 6, ips: state.podsV6 ?? {}, underlay: (h) => h.ipv6 });
  const all: Awaited<ReturnType<typeof pingMatrix>> = [];
  const unmasked: string[] = [];
  for (const f of families) {
    const name = f.v === 4 ? 'IPv4' : 'IPv6';
    const pods = t.hosts.flatMap((h) =>
      h.pods.map((p) => ({ label: p.ns, ns: p.ns, ip: f.ips[p.ns] ?? (f.v === 4 ? '0.0.0.0' : '::') })),
    );
    const results = await pingMatrix(pods, pods as PingTarget[]);
    say('');
    say(`Pod-to-pod ${name} ping matrix (packet loss, 3 pings each):`);
    say(
      formatMatrix(
        pods.map((p) => p.label),
        pods,
        results,
      ),
    );
    const underlay: PingTarget[] = t.hosts.map((h) => ({ label: h.ns, ip: f.underlay(h) }));
    const toHosts = await pingMatrix(
      pods.map((p) => ({ label: p.label, ns: p.ns })),
      underlay,
    );
    const crossHost = toHosts.filter((r) => !r.from.startsWith(`${r.to}-`));
    say('');
    say(`Pod to other hosts' ${name} underlay addresses (leaves the host masqueraded by FLANNEL-POSTRTG):`);
    say(
      formatMatrix(
        pods.map((p) => p.label),
        underlay,
        crossHost,
      ),
    );
    all.push(...results, ...crossHost);
    // Replies would come back through the overlay even without NAT: the rule counters are the proof of masquerading.
    // flannel's nftables rules carry no counters, so only iptables mode can show it.
    if (!t.nftables)
      unmasked.push(...t.hosts.filter((h) => masqueradedPackets(h.ns, f.v) === 0).map((h) => `${h.ns} (${name})`));
  }
  say(
    t.nftables
      ? `Masquerade: nftables mode (flannel's nft rules have no counters; see \`nft list table ${labHasV4(t) ? 'ip flannel-ipv4' : 'ip6 flannel-ipv6'}\`).`
      : unmasked.length === 0
        ? `Masquerade: every host's FLANNEL-POSTRTG MASQUERADE rule counted the pod → underlay packets (${families.map((f) => (f.v === 4 ? 'iptables' : 'ip6tables')).join(', ')}).`
        : `Masquerade: no packets masqueraded on ${unmasked.join(', ')}.`,
  );
  const bad = all.filter((r) => lossPercent(r) > 0);
  say('');
  say(bad.length === 0 ? `All ${all.length} pairs at 0 % loss.` : `${bad.length} of ${all.length} pairs lost packets.`);
  return bad.length === 0 && unmasked.length === 0;
}

/** Packets counted by the MASQUERADE rules of FLANNEL-POSTRTG in a host (iptables, or ip6tables for family 6). */
function masqueradedPackets(ns: string, family: 4 | 6): number {
  try {
    const save = sh('ip', ['netns', 'exec', ns, family === 6 ? 'ip6tables-save' : 'iptables-save', '-c', '-t', 'nat']);
    return masqueradeCount(parseIptablesSave(save, family === 6 ? 'ip6' : 'ip'));
  } catch {
    return 0;
  }
}

export async function labStatus(): Promise<boolean> {
  if (!existsSync(statePath)) {
    say('No lab is running (start one with `make lab`).');
    return false;
  }
  const state = readState();
  const t = state.topology;
  for (const h of t.hosts) {
    const pids = netnsPids(h.ns);
    const env = existsSync(h.subnetFile) ? subnetEnvLine(h) : 'no subnet.env';
    say(`${h.ns}  eth0 ${h.ip}  processes ${pids.length ? pids.join(',') : 'none'}  ${env}`);
  }
  try {
    say(state.kube ? kubeNodesSummary(t) : etcdctl(t, ['get', '--prefix', '/coreos.com/network/subnets']).trim());
  } catch (e) {
    say(`etcd: ${(e as Error).message}`);
  }
  return labCheck(state);
}

/** Removes every lab namespace (killing what runs inside), and the lab's files. Safe after a failed `up`. */
export function labDown(): void {
  const names = netnsList().filter((n) => n === `${LAB_PREFIX}-sw` || n.startsWith(`${LAB_PREFIX}-`));
  // Pods first, then hosts (their processes), then etcd and the switch.
  const order = (n: string) =>
    /-p\d+$/.test(n) ? 0 : n === `${LAB_PREFIX}-etcd` ? 2 : n === `${LAB_PREFIX}-sw` ? 3 : 1;
  names.sort((a, b) => order(a) - order(b));
  for (const n of names) {
    for (const pid of netnsPids(n)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const n of names) shQuiet('ip', ['netns', 'del', n]);
  // veths that never made it into a namespace.
  for (let i = 0; i <= 20; i++)
    for (const s of ['a', 'b'])
      if (existsSync(`/sys/class/net/${LAB_PREFIX}${i}${s}`)) shQuiet('ip', ['link', 'del', `${LAB_PREFIX}${i}${s}`]);
  rmSync(LAB_DIR, { recursive: true, force: true });
  if (names.length) say(`Removed ${names.length} namespaces and ${LAB_DIR}.`);
}

export function readState(): LabState {
  if (!existsSync(statePath)) throw new Error('no lab is running (start one with `make lab`)');
  return JSON.parse(readFileSync(statePath, 'utf8')) as LabState;
}

function flanneldPids(ns: string): number[] {
  return netnsPids(ns).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('flanneld');
    } catch {
      return false;
    }
  });
}

/** A running lab's host by name (h2) or namespace (flab-h2). */
export function labHost(hostName: string, state = readState()): LabHost {
  const h = state.topology.hosts.find((x) => x.name === hostName || x.ns === hostName);
  if (!h) throw new Error(`no lab host "${hostName}"; hosts are ${state.topology.hosts.map((x) => x.name).join(', ')}`);
  return h;
}

/** `lab trace <src> <dst>`: pod names (h1-p1, flab-h1-p1) or IPs, resolved to addresses, with the host of src. */
export function labTraceTarget(
  state: LabState,
  src: string,
  dst: string,
  ipv6: boolean,
): { src: string; dst: string; srcHost: LabHost; srcPodNs?: string } {
  const v6 = ipv6 || !labHasV4(state.topology);
  const ips = v6 ? (state.podsV6 ?? {}) : state.pods;
  const pod = (x: string) => (ips[x] ? x : ips[`${LAB_PREFIX}-${x}`] ? `${LAB_PREFIX}-${x}` : undefined);
  const address = (x: string) => {
    const p = pod(x);
    if (p) return ips[p]!;
    if (/^[0-9a-f.:]+$/i.test(x)) return x;
    throw new Error(
      `no lab pod "${x}"; pods are ${Object.keys(ips)
        .map((k) => k.replace(`${LAB_PREFIX}-`, ''))
        .join(', ')}`,
    );
  };
  const [s, d] = [address(src), address(dst)];
  const srcPodNs = Object.keys(ips).find((k) => ips[k] === s);
  const srcHost = state.topology.hosts.find((h) => h.pods.some((p) => p.ns === srcPodNs));
  if (!srcHost) throw new Error(`${src} is no lab pod's address: give a pod name, or an address of a lab pod`);
  return { src: s, dst: d, srcHost, srcPodNs };
}

/** Stops one host's flanneld (SIGTERM, as a supervisor would) and starts it again; waits for its new subnet.env. */
export async function labRestartFlanneld(hostName: string, distDir: string): Promise<void> {
  const state = readState();
  const h = labHost(hostName, state);
  for (const pid of flanneldPids(h.ns)) process.kill(pid, 'SIGTERM');
  await waitUntil(
    () => flanneldPids(h.ns).length === 0,
    10_000,
    `flanneld on ${h.ns} did not exit within 10 s of SIGTERM`,
    100,
  );
  // subnet.env is rewritten (atomically: a new inode) once the new flanneld is up.
  const ino = statSync(h.subnetFile).ino;
  startFlanneld(state.topology, h, distDir, state.kube);
  await waitUntil(
    () => statSync(h.subnetFile).ino !== ino,
    30_000,
    `flanneld on ${h.ns} did not rewrite ${h.subnetFile} within 30 s; see ${h.dir}/flanneld.log`,
    100,
  );
  say(`flanneld on ${h.ns} restarted: ${subnetEnvLine(h)}`);
}
