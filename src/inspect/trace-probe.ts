// trace --probe: a few real ICMP echoes from src to dst, counted at every hop trace can see by a temporary nftables
// table on each node (counters before and after the filter hooks), with `meta nftrace set 1` on the probe so that
// `nft monitor trace` names the rule or policy that dropped it (iptables on Debian is nft underneath, so its rules
// show too). Everything added is removed afterwards, also on failure or Ctrl-C.
import { pingCounts } from './probe.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { errorMessage } from '../log/log.ts';
import { familyOf } from '../netlink/index.ts';
import { isObject } from '../util/json.ts';
import type { ExecFn } from '../util/exec.ts';
import { overlayDevice } from './checks/rules.ts';
import { ownInterface } from './checks/underlay.ts';
import type { Hop, Trace, TraceInput } from './trace.ts';

/** Our table: its name says whose it is, and a leftover of a killed run is replaced, not duplicated. */
export const PROBE_TABLE = 'flannel-trace';
const ECHOES = 3;

/** A counting point: a rule in one hook of one node, named by `key` (its comment). */
interface Point {
  key: string;
  node: 'local' | 'remote';
  hook: 'prerouting' | 'forward' | 'input' | 'postrouting';
  match: string;
  trace?: boolean;
}

export interface ProbeNode {
  name: string;
  exec: ExecFn;
  /** `ip netns exec <ns>` prefix for the long-running `nft monitor trace`, or none for this namespace. */
  netns?: string;
}

export interface ProbeOptions {
  local: ProbeNode;
  remote?: ProbeNode;
  /** Where the pings are sent from: src's pod namespace (the lab), or this host with src as the source address. */
  from: { netns?: string; exec: ExecFn };
}

export interface ProbeResult {
  sent: number;
  received: number;
  counts: Record<string, number>;
  /** The verdict lines `nft monitor trace` printed for a dropped probe, per node. */
  drops: string[];
}

/** The counting points for this trace: the probe's own packets, and the encapsulated ones between the nodes. */
export function probePoints(t: TraceInput): Point[] {
  const family = familyOf(t.src);
  const ip = family === 4 ? 'ip' : 'ip6';
  const echo = `${ip} saddr ${t.src} ${ip} daddr ${t.dst} ${family === 4 ? 'icmp' : 'icmpv6'} type echo-request`;
  const s = t.local.snapshot;
  const dev = overlayDevice(s, family);
  const points: Point[] = [
    { key: 'a-pre', node: 'local', hook: 'prerouting', match: `iifname "cni0" ${echo}`, trace: true },
    { key: 'a-fwd', node: 'local', hook: 'forward', match: echo },
  ];
  const holderIsLocal =
    t.local.forward &&
    !('error' in t.local.forward) &&
    s.links.find((l) => l.index === (t.local.forward as { oif?: number }).oif)?.name === 'cni0';
  points.push({
    key: 'a-post',
    node: 'local',
    hook: 'postrouting',
    match: `oifname "${holderIsLocal ? 'cni0' : dev}" ${echo}`,
  });
  const port = s.backend?.type === 'vxlan' || s.backend?.type === 'udp' ? s.backend.port : undefined;
  const me = ownInterface(s, family);
  const peerIP = t.remote ? ownInterface(t.remote.snapshot, family)?.ip : undefined;
  if (port && me && peerIP) {
    points.push({
      key: 'a-out',
      node: 'local',
      hook: 'postrouting',
      match: `oifname "${me.link.name}" ${ip} daddr ${peerIP} udp dport ${port}`,
    });
    points.push({
      key: 'b-pre',
      node: 'remote',
      hook: 'prerouting',
      match: `${ip} saddr ${me.ip} udp dport ${port}`,
      trace: true,
    });
    points.push({ key: 'b-in', node: 'remote', hook: 'input', match: `${ip} saddr ${me.ip} udp dport ${port}` });
  }
  if (t.remote) {
    const rdev = overlayDevice(t.remote.snapshot, family);
    points.push({
      key: 'b-decap',
      node: 'remote',
      hook: 'prerouting',
      match: `iifname "${rdev}" ${echo}`,
      trace: true,
    });
    points.push({ key: 'b-fwd', node: 'remote', hook: 'forward', match: echo });
    points.push({ key: 'b-post', node: 'remote', hook: 'postrouting', match: `oifname "cni0" ${echo}` });
  }
  return points;
}

/**
 * One table per node: counters at priority -400 (before any filter: the packet reached the hook) in prerouting and
 * forward, and at 400 (after every filter: it passed) in input and postrouting.
 */
export function probeScript(points: readonly Point[]): string {
  const prio = (h: Point['hook']) => (h === 'prerouting' || h === 'forward' ? -400 : 400);
  const hooks = [...new Set(points.map((p) => p.hook))];
  const lines = [`table inet ${PROBE_TABLE}`, `delete table inet ${PROBE_TABLE}`, `table inet ${PROBE_TABLE} {`];
  for (const h of hooks) {
    lines.push(`  chain ${h} {`, `    type filter hook ${h} priority ${prio(h)}; policy accept;`);
    for (const p of points.filter((x) => x.hook === h))
      lines.push(`    ${p.match} counter${p.trace ? ' meta nftrace set 1' : ''} comment "${p.key}"`);
    lines.push('  }');
  }
  lines.push('}', '');
  return lines.join('\n');
}

/** Packets per point, from `nft -j list table inet flannel-trace`. */
export function probeCounts(json: string): Record<string, number> {
  const out: Record<string, number> = {};
  const doc: unknown = JSON.parse(json);
  const entries = isObject(doc) && Array.isArray(doc.nftables) ? (doc.nftables as unknown[]) : [];
  for (const e of entries) {
    if (!isObject(e) || !isObject(e.rule) || typeof e.rule.comment !== 'string') continue;
    const expr = Array.isArray(e.rule.expr) ? (e.rule.expr as unknown[]) : [];
    const counter = expr.find((x) => isObject(x) && isObject(x.counter));
    const packets = isObject(counter) && isObject(counter.counter) ? Number(counter.counter.packets ?? 0) : 0;
    out[e.rule.comment] = (out[e.rule.comment] ?? 0) + packets;
  }
  return out;
}

/** The verdict lines of `nft monitor trace` that dropped or rejected a traced packet (not our own table's). */
export function traceDrops(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => /\b(verdict (drop|reject)|policy drop)\b/.test(l) && !l.includes(PROBE_TABLE))
    .map((l) => l.replace(/^trace id [0-9a-f]+ /, '').trim());
}

/** Which hop each point counts for: the probe's packets at that hop, by what trace says the hop is. */
function pointOf(h: Hop, t: TraceInput): string | undefined {
  // `where` is the node's name, or the name and a device: compare whole names (flab-h1 is not flab-h10).
  const local = h.where === t.local.name || h.where.startsWith(`${t.local.name} `);
  const w = h.what;
  if (w.startsWith('source pod')) return 'a-pre';
  if (w.startsWith('netfilter FORWARD')) return local ? 'a-fwd' : 'b-fwd';
  if (w.includes('encapsulation') || w.startsWith('next hop') || (local && w.startsWith('bridge port')))
    return 'a-post';
  if (w.startsWith('underlay route')) return 'a-out';
  if (w.startsWith('node of lease')) return 'b-pre';
  if (w.startsWith('netfilter INPUT')) return 'b-in';
  if (w.includes('decapsulation') || w === 'arrival') return 'b-decap';
  if (w === 'route to cni0' || w.startsWith('bridge port')) return 'b-post';
  return undefined;
}

/** The trace with each hop's count, and where the probe stopped (the first counted hop that saw none). */
export function withCounts(tr: Trace, t: TraceInput, r: ProbeResult): Trace {
  const hops = tr.hops.map((h) => {
    const p = pointOf(h, t);
    return p !== undefined && p in r.counts ? { ...h, count: r.counts[p]! } : h;
  });
  const lost = hops.find((h) => h.count === 0);
  const probe = {
    sent: r.sent,
    received: r.received,
    ...(lost && r.received < r.sent ? { stoppedAt: `${lost.where}: ${lost.what}` } : {}),
    ...(r.drops.length ? { droppedBy: r.drops } : {}),
  };
  return { ...tr, hops, probe };
}

function monitor(node: ProbeNode): { child: ChildProcess; out: () => string } {
  const argv = node.netns
    ? (['ip', ['netns', 'exec', node.netns, 'nft', 'monitor', 'trace']] as const)
    : (['nft', ['monitor', 'trace']] as const);
  const child = spawn(argv[0], [...argv[1]], { stdio: ['ignore', 'pipe', 'ignore'] });
  let text = '';
  child.stdout!.on('data', (b: Buffer) => (text += b.toString()));
  child.on('error', () => {});
  return { child, out: () => text };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends the probe and counts it; every table and monitor it starts is gone when it returns or throws. */
export async function runProbe(t: TraceInput, o: ProbeOptions): Promise<ProbeResult> {
  const points = probePoints(t);
  const nodes = [{ node: o.local, points: points.filter((p) => p.node === 'local') }];
  if (o.remote) nodes.push({ node: o.remote, points: points.filter((p) => p.node === 'remote') });
  const monitors: Array<ReturnType<typeof monitor>> = [];
  const cleanup = async () => {
    for (const m of monitors) m.child.kill('SIGTERM');
    await Promise.all(nodes.map(({ node }) => node.exec('nft', ['delete', 'table', 'inet', PROBE_TABLE])));
  };
  const onSignal = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (const { node, points: p } of nodes) {
      const r = await node.exec('nft', ['-f', '-'], probeScript(p));
      if (r.code !== 0) throw new Error(`adding the probe's nftables table on ${node.name} failed: ${r.stderr.trim()}`);
      monitors.push(monitor(node));
    }
    await pause(200); // the monitors subscribe before the first echo
    const args = [
      '-n',
      '-q',
      '-c',
      String(ECHOES),
      '-i',
      '0.2',
      '-W',
      '1',
      ...(o.from.netns ? [] : ['-I', t.src]),
      t.dst,
    ];
    const ping = await o.from.exec('ping', args);
    const answered = pingCounts(ping.stdout);
    await pause(200);
    const counts: Record<string, number> = {};
    for (const { node } of nodes) {
      const r = await node.exec('nft', ['-j', 'list', 'table', 'inet', PROBE_TABLE]);
      if (r.code !== 0) throw new Error(`reading the probe's counters on ${node.name} failed: ${r.stderr.trim()}`);
      Object.assign(counts, probeCounts(r.stdout));
    }
    const drops = monitors.flatMap((mon, i) => traceDrops(mon.out()).map((l) => `${nodes[i]!.node.name}: ${l}`));
    return { sent: answered?.sent ?? ECHOES, received: answered?.received ?? 0, counts, drops: [...new Set(drops)] };
  } catch (e) {
    throw new Error(`trace --probe: ${errorMessage(e)}`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}
