// `flannelctl trace`: a pod packet's path hop by hop, from node snapshots (src/inspect/read.ts) and the kernel's own
// route decisions, in the order the packet meets them; the first missing or wrong entry stops the walk with the
// reason and the fix (doctor's id where one applies). Pure: the reading happens in trace-read.ts.
import { type IPv4Net, formatIPv4, parseIPv4 } from '../ip/ipv4.ts';
import { IPv6Net, formatIPv6, parseIPv6 } from '../ip/ipv6.ts';
import { familyOf, type LinkInfo, type RouteLookup } from '../netlink/index.ts';
import { leaseName, type Lease } from '../subnet/lease.ts';
import { vtepMacOf } from '../subnet/etcd/ownership.ts';
import { parsePeerBackendData } from '../backend/vxlan/options.ts';
import { UDP_DEFAULT_PORT } from '../backend/udp/options.ts';
import type { FindingId } from './findings.ts';
import { verdictAt, type NfPacket, type NfVerdict } from './netfilter.ts';
import { chainsOf, overlayDevice, removal, sides, where } from './checks/rules.ts';
import { ownLease } from './checks/subnet.ts';
import { ownInterface } from './checks/underlay.ts';
import type { NodeSnapshot } from './snapshot.ts';

export interface Hop {
  /** The node and, where it applies, the device: `flab-h1 flannel.1`. */
  where: string;
  /** What the packet meets there, in plain words. */
  what: string;
  /** The kernel entry, rule or lease that decides it, as its tool prints it. */
  entry: string;
  ok: boolean;
  /** --probe: probe packets seen at this hop. */
  count?: number;
}

export interface Trace {
  src: string;
  dst: string;
  hops: Hop[];
  /** The hop the walk stopped at (its `where` and `what`), with why and how to mend it. */
  stoppedAt?: string;
  reason?: string;
  id?: FindingId;
  fix?: string;
  /** --probe: the echoes sent and answered, the first hop that counted none, and the rules nft's trace saw drop them. */
  probe?: { sent: number; received: number; stoppedAt?: string; droppedBy?: string[] };
}

export type Lookup = RouteLookup | { error: string };

/** A node as trace reads it: its snapshot and the kernel's forwarding decision for the traced packet there. */
export interface TraceNode {
  name: string;
  snapshot: NodeSnapshot;
  /** `ip route get <dst> from <src> iif <the device the packet arrives on>`. */
  forward?: Lookup;
}

export interface TraceInput {
  src: string;
  dst: string;
  local: TraceNode;
  /** The node holding dst, when trace can read it (a lab host); absent on a real node. */
  remote?: TraceNode;
}

/** Bad input: the addresses, or a src that is not a pod of this node. */
export class TraceError extends Error {}

type Net = IPv4Net | IPv6Net;

function contains(net: Net | undefined, ip: string): boolean {
  if (!net) return false;
  return net instanceof IPv6Net ? net.contains(parseIPv6(ip)) : net.contains(parseIPv4(ip));
}

function subnetOf(l: Pick<Lease, 'subnet' | 'ipv6Subnet'>, family: 4 | 6): Net | undefined {
  return family === 4 ? l.subnet : l.ipv6Subnet;
}

/** The lease whose subnet (of `ip`'s family) holds the pod address `ip`. */
export function leaseHolding(leases: readonly Lease[], ip: string): Lease | undefined {
  const family = familyOf(ip);
  return leases.find((l) => contains(subnetOf(l, family), ip));
}

function publicIPOf(l: Lease, family: 4 | 6): string | undefined {
  return (family === 4 ? l.attrs.publicIP : l.attrs.publicIPv6) ?? undefined;
}

/** The device overlay traffic of this family uses on a node: the vxlan device, flannel0, or the external interface. */
function deviceOf(s: NodeSnapshot, family: 4 | 6): LinkInfo | undefined {
  const name = overlayDevice(s, family);
  return s.links.find((l) => l.name === name);
}

function lookupText(s: NodeSnapshot, what: string, l: Lookup | undefined): string {
  if (!l) return `${what}: not asked`;
  if ('error' in l) return `${what}: ${l.error}`;
  const dev = s.links.find((x) => x.index === l.oif)?.name ?? (l.oif !== undefined ? `index ${l.oif}` : '-');
  return `${what}: ${l.type}${l.gateway ? ` via ${l.gateway}` : ''} dev ${dev}${l.prefsrc ? ` src ${l.prefsrc}` : ''}`;
}

const ok = (l: Lookup | undefined): l is RouteLookup => !!l && !('error' in l) && l.type === 'unicast';

/** Walks hop by hop; `stop` ends the walk with the reason. */
class Walk {
  readonly hops: Hop[] = [];
  stopped?: Pick<Trace, 'stoppedAt' | 'reason' | 'id' | 'fix'>;

  pass(where: string, what: string, entry: string): void {
    this.hops.push({ where, what, entry, ok: true });
  }

  stop(where: string, what: string, entry: string, reason: string, fix: string, id?: FindingId): false {
    this.hops.push({ where, what, entry, ok: false });
    this.stopped = { stoppedAt: `${where}: ${what}`, reason, fix, ...(id ? { id } : {}) };
    return false;
  }
}

/** A pod's bridge port on cni0, from the neighbour entry (its MAC) and cni0's FDB (the port behind it). */
function bridgePort(s: NodeSnapshot, ip: string): string {
  const bridge = s.links.find((l) => l.name === 'cni0');
  const neigh = bridge && s.neighbours.find((n) => n.index === bridge.index && n.ip === ip && n.mac);
  if (!neigh) return `${ip} not in cni0's neighbour table yet (no traffic to it so far)`;
  const port = s.fdb.find((f) => f.master === bridge.index && f.mac === neigh.mac);
  const name = s.links.find((l) => l.index === port?.index)?.name;
  return `neighbour ${ip} lladdr ${neigh.mac} dev cni0${name ? `; fdb ${neigh.mac} dev ${name} master cni0` : ''}`;
}

/** What let an accepted packet through: a rule that accepted it, else the first chain's policy (not nat's, say). */
function acceptedBy(v: NfVerdict): string {
  const d = v.decisions.find((x) => !x.policy) ?? v.decisions[0];
  return d
    ? `accept (${where({ verdict: d.verdict, by: d.by, policy: d.policy, uncertain: [], decisions: [] })})`
    : 'accept (no base chain at this hook)';
}

/** The FORWARD hook's verdict for the traced packet on a node; false when it drops it. */
function forwardHook(w: Walk, node: TraceNode, p: NfPacket): boolean {
  const side = sides(node.snapshot).find((x) => x.family === p.family);
  if (!side) return true;
  const v = verdictAt(chainsOf(node.snapshot, side, []), 'forward', p);
  const entry = v.by ? where(v) : 'no filter chain at the forward hook';
  const what = `netfilter FORWARD (in ${p.iif}, out ${p.oif})`;
  if (v.verdict === 'accept') {
    w.pass(node.name, what, acceptedBy(v));
    return true;
  }
  return w.stop(
    node.name,
    what,
    entry,
    `FORWARD ${v.verdict === 'drop' ? 'drops' : 'rejects'} the packet`,
    removal(v, side),
    'forward-blocked',
  );
}

function start(w: Walk, t: TraceInput, family: 4 | 6): boolean {
  const s = t.local.snapshot;
  const bridge = s.links.find((l) => l.name === 'cni0');
  if (!bridge)
    return w.stop(
      t.local.name,
      'source pod → cni0',
      'no link cni0',
      'this node has no pod bridge',
      'start a pod on this node (the CNI plugin creates cni0)',
    );
  const addr = s.addresses
    .filter((a) => a.index === bridge.index && a.family === family)
    .map((a) => `${a.address}/${a.prefixLen}`);
  w.pass(
    t.local.name,
    `source pod ${t.src} → cni0`,
    `${bridgePort(s, t.src)}; cni0 ${bridge.up ? 'up' : 'DOWN'} ${addr.join(' ')}`,
  );
  return true;
}

/** The kernel's decision on the source node; false (stopped) when it does not send the packet where flannel would. */
function routeHop(w: Walk, t: TraceInput, peer: Lease | undefined, family: 4 | 6): LinkInfo | false {
  const s = t.local.snapshot;
  const l = t.local.forward;
  const entry = lookupText(s, `ip route get ${t.dst} from ${t.src} iif cni0`, l);
  const what = 'route lookup';
  if (!ok(l)) {
    return w.stop(
      t.local.name,
      what,
      entry,
      `the kernel has no route for ${t.dst}`,
      `run flannelctl doctor on ${t.local.name}: it names the missing peer route (peer-unprogrammed) and its fix`,
      'peer-unprogrammed',
    );
  }
  const out = s.links.find((x) => x.index === l.oif);
  const want = peer ? deviceOf(s, family) : s.links.find((x) => x.name === 'cni0');
  const direct =
    peer && s.backend?.type === 'vxlan' && s.backend.directRouting && l.gateway === publicIPOf(peer, family);
  const expected = direct ? ownInterface(s, family)?.link : want;
  if (!out || out.index !== expected?.index) {
    return w.stop(
      t.local.name,
      what,
      entry,
      `the kernel sends ${t.dst} out of ${out?.name ?? 'nothing'}, not ${expected?.name ?? "flannel's device"}`,
      `ip route show ${t.dst}: a route of another owner may shadow flannel's; run flannelctl doctor on ${t.local.name}`,
      'peer-unprogrammed',
    );
  }
  w.pass(t.local.name, what, entry);
  return out;
}

function vxlanHops(
  w: Walk,
  t: TraceInput,
  peer: Lease,
  dev: LinkInfo,
  family: 4 | 6,
  gateway: string | undefined,
): boolean {
  const s = t.local.snapshot;
  const v = dev.vxlan;
  w.pass(
    `${t.local.name} ${dev.name}`,
    'vxlan encapsulation',
    `${dev.name}: vxlan id ${v?.id ?? '?'} local ${v?.local ?? '-'} dstport ${v?.port ?? '?'} ${dev.up ? 'up' : 'DOWN'}`,
  );
  const mac = parsePeerBackendData(family === 4 ? peer.attrs.backendData : peer.attrs.backendV6Data)?.vtepMac;
  const neigh = s.neighbours.find((n) => n.index === dev.index && n.ip === gateway);
  const at = `${t.local.name} ${dev.name}`;
  if (!neigh?.mac) {
    return w.stop(
      at,
      `neighbour for the next hop ${gateway}`,
      `no neighbour ${gateway} dev ${dev.name}`,
      `the next hop ${gateway} has no neighbour entry (its VTEP MAC)`,
      `ip neigh replace ${gateway} lladdr ${mac ?? vtepMacOf(peer.attrs)} dev ${dev.name} nud permanent (flanneld restores it within 10 s while it runs)`,
      'peer-unprogrammed',
    );
  }
  const neighText = `neighbour ${neigh.ip} lladdr ${neigh.mac} dev ${dev.name}${neigh.permanent ? ' PERMANENT' : ''}`;
  if (mac && neigh.mac !== mac) {
    return w.stop(
      at,
      `neighbour for the next hop ${gateway}`,
      neighText,
      `the next hop's MAC ${neigh.mac} is not the peer's VtepMAC ${mac} (lease ${leaseName(peer)})`,
      `ip neigh replace ${gateway} lladdr ${mac} dev ${dev.name} nud permanent`,
      'peer-mac-mismatch',
    );
  }
  w.pass(at, `neighbour for the next hop ${gateway}`, neighText);
  const publicIP = publicIPOf(peer, family);
  const fdb = s.fdb.find((f) => f.index === dev.index && f.mac === neigh.mac && f.dst);
  if (!fdb) {
    return w.stop(
      at,
      `FDB entry for ${neigh.mac}`,
      `no fdb ${neigh.mac} dev ${dev.name}`,
      `no FDB entry tells ${dev.name} where ${neigh.mac} lives`,
      `bridge fdb append ${neigh.mac} dev ${dev.name} dst ${publicIP} (flanneld restores it within 10 s while it runs)`,
      'peer-unprogrammed',
    );
  }
  const fdbText = `fdb ${fdb.mac} dev ${dev.name} dst ${fdb.dst}${fdb.permanent ? ' permanent' : ''}`;
  if (fdb.dst !== publicIP) {
    return w.stop(
      at,
      `FDB entry for ${neigh.mac}`,
      fdbText,
      `the FDB sends ${neigh.mac} to ${fdb.dst}, but lease ${leaseName(peer)} says its node is ${publicIP}`,
      `bridge fdb replace ${neigh.mac} dev ${dev.name} dst ${publicIP}; if several leases name ${fdb.dst}, see doctor's public-ip-duplicate`,
    );
  }
  w.pass(at, `FDB entry for ${neigh.mac}`, fdbText);
  return true;
}

function underlayHop(w: Walk, t: TraceInput, peer: Lease, family: 4 | 6): boolean {
  const s = t.local.snapshot;
  const ip = publicIPOf(peer, family);
  const u = s.underlay.find((x) => x.ip === ip);
  const entry = lookupText(s, `ip route get ${ip}`, u?.lookup ?? (u?.error ? { error: u.error } : undefined));
  const me = ownInterface(s, family);
  const lookup = u?.lookup;
  if (lookup?.type !== 'unicast') {
    return w.stop(
      t.local.name,
      `underlay route to ${ip}`,
      entry,
      `no route to the peer's public IP ${ip}`,
      `add a route to ${ip}, or start flanneld with --iface`,
      'underlay-route',
    );
  }
  if (me && lookup.oif !== me.link.index) {
    const dev = s.links.find((l) => l.index === lookup.oif)?.name ?? `index ${lookup.oif}`;
    return w.stop(
      t.local.name,
      `underlay route to ${ip}`,
      entry,
      `the underlay route leaves through ${dev}, not flannel's interface ${me.link.name}`,
      `ip route replace ${ip} dev ${me.link.name} src ${me.ip}, or start flanneld with --iface`,
      'underlay-route',
    );
  }
  w.pass(t.local.name, `underlay route to ${ip}`, entry);
  return true;
}

function overlayPort(s: NodeSnapshot): number | undefined {
  const b = s.backend;
  if (b?.type === 'vxlan') return b.port;
  if (b?.type === 'udp') return b.port || UDP_DEFAULT_PORT;
  return undefined;
}

/** The receiving node: INPUT for the overlay port, decapsulation, FORWARD, its route to cni0, dst's bridge port. */
function remoteHops(w: Walk, t: TraceInput, peer: Lease, family: 4 | 6, proto: NfPacket['proto']): boolean {
  const r = t.remote!;
  const s = r.snapshot;
  const dev = deviceOf(s, family);
  const port = overlayPort(s);
  const from =
    ownInterface(t.local.snapshot, family)?.ip ?? publicIPOf(ownLease(t.local.snapshot) ?? peer, family) ?? '';
  const to = publicIPOf(peer, family) ?? '';
  const ext = ownInterface(s, family)?.link.name;
  if (port !== undefined) {
    const side = sides(s).find((x) => x.family === family);
    const v =
      side &&
      verdictAt(chainsOf(s, side, []), 'input', { family, src: from, dst: to, proto: 'udp', dport: port, iif: ext });
    const what = `netfilter INPUT for UDP ${port} (the overlay)`;
    if (v && v.verdict !== 'accept') {
      return w.stop(
        r.name,
        what,
        where(v),
        `INPUT ${v.verdict === 'drop' ? 'drops' : 'rejects'} the encapsulated packets`,
        removal(v, side!, { kind: 'port', port }),
        'overlay-port-blocked',
      );
    }
    w.pass(r.name, what, v ? acceptedBy(v) : 'accept (no base chain at this hook)');
  }
  if (!dev) {
    return w.stop(
      r.name,
      'decapsulation',
      `no flannel device on ${r.name}`,
      `${r.name} has no ${s.backend?.type ?? 'flannel'} device`,
      `restart flanneld on ${r.name}`,
      'vtep-mismatch',
    );
  }
  const local = deviceOf(t.local.snapshot, family);
  if (dev.vxlan && local?.vxlan && (dev.vxlan.id !== local.vxlan.id || dev.vxlan.port !== local.vxlan.port)) {
    return w.stop(
      `${r.name} ${dev.name}`,
      'decapsulation',
      `${dev.name}: vxlan id ${dev.vxlan.id} dstport ${dev.vxlan.port}`,
      `${r.name}'s ${dev.name} has VNI ${dev.vxlan.id} port ${dev.vxlan.port}; the sender uses VNI ${local.vxlan.id} port ${local.vxlan.port}`,
      `make the network config agree and restart flanneld on both`,
      'vtep-mismatch',
    );
  }
  const decap = dev.vxlan
    ? `${dev.name}: vxlan id ${dev.vxlan.id} local ${dev.vxlan.local ?? '-'} dstport ${dev.vxlan.port}`
    : dev.name === 'flannel0'
      ? "flannel0: TUN, written by flanneld's forwarder"
      : `${dev.name} (host-gw: no encapsulation)`;
  w.pass(
    `${r.name} ${dev.name}`,
    dev.vxlan ? 'decapsulation' : dev.name === 'flannel0' ? 'udp decapsulation (flanneld)' : 'arrival',
    `${decap} ${dev.up ? 'up' : 'DOWN'}`,
  );
  if (!forwardHook(w, r, { family, src: t.src, dst: t.dst, proto, iif: dev.name, oif: 'cni0' })) return false;
  const entry = lookupText(s, `ip route get ${t.dst} from ${t.src} iif ${dev.name}`, r.forward);
  const bridge = s.links.find((l) => l.name === 'cni0');
  if (!ok(r.forward) || !bridge || r.forward.oif !== bridge.index) {
    const sub = subnetOf(peer, family);
    const gw = sub ? (family === 4 ? formatIPv4((sub.ip as number) + 1) : formatIPv6((sub.ip as bigint) + 1n)) : '';
    return w.stop(
      r.name,
      'route to cni0',
      entry,
      `${r.name} does not route ${t.dst} to cni0`,
      `the route comes with cni0's address: ip addr replace ${gw}/${sub?.prefix ?? ''} dev cni0 (or delete cni0 and let the next pod ADD recreate it)`,
    );
  }
  w.pass(r.name, 'route to cni0', entry);
  w.pass(`${r.name} cni0`, `bridge port of ${t.dst}`, bridgePort(s, t.dst));
  return true;
}

export function tracePath(t: TraceInput): Trace {
  const family = familyOf(t.src);
  if (familyOf(t.dst) !== family) throw new TraceError(`${t.src} and ${t.dst} are of different IP families`);
  const s = t.local.snapshot;
  const leases = Array.isArray(s.leases) ? s.leases : [];
  const own = ownLease(s);
  const env = s.subnetEnv.env;
  const ownSubnet = family === 4 ? env?.subnet : env?.ipv6Subnet;
  if (!contains(ownSubnet, t.src)) {
    const holder = leaseHolding(leases, t.src);
    const where = holder
      ? `: it is in ${leaseName(holder)}, the subnet of node ${publicIPOf(holder, family)}; run trace there`
      : '';
    throw new TraceError(
      `${t.src} is not a pod address of this node (${ownSubnet ?? 'no subnet in subnet.env'})${where}`,
    );
  }
  const w = new Walk();
  const done = (): Trace => ({ src: t.src, dst: t.dst, hops: w.hops, ...w.stopped });
  if (!start(w, t, family)) return done();
  const proto = family === 4 ? 'icmp' : 'icmpv6';
  const holder = leaseHolding(leases, t.dst);
  if (!holder) {
    w.stop(
      t.local.name,
      `the node holding ${t.dst}`,
      `no lease of ${leases.length} holds ${t.dst}`,
      `no node's lease holds ${t.dst}: it is not a pod address of this cluster`,
      'check the address (kubectl get pods -o wide); a pod of a node that left keeps an address no lease holds',
    );
    return done();
  }
  const peer = holder === own ? undefined : holder;
  const out = routeHop(w, t, peer, family);
  if (!out) return done();
  if (!forwardHook(w, t.local, { family, src: t.src, dst: t.dst, proto, iif: 'cni0', oif: out.name })) return done();
  if (!peer) {
    w.pass(`${t.local.name} cni0`, `bridge port of ${t.dst}`, bridgePort(s, t.dst));
    return done();
  }
  const lookup = t.local.forward as RouteLookup;
  if (out.vxlan) {
    if (!vxlanHops(w, t, peer, out, family, lookup.gateway)) return done();
  } else if (out.name === 'flannel0') {
    w.pass(
      `${t.local.name} flannel0`,
      'udp encapsulation (flanneld)',
      `flannel0 → flanneld's forwarder → UDP to ${publicIPOf(peer, family)}:${overlayPort(s)} (GET /peers shows the peer)`,
    );
  } else {
    const n = s.neighbours.find((x) => x.index === out.index && x.ip === lookup.gateway);
    w.pass(
      `${t.local.name} ${out.name}`,
      `next hop ${lookup.gateway}`,
      n?.mac
        ? `neighbour ${n.ip} lladdr ${n.mac} dev ${out.name}`
        : `no neighbour entry for ${lookup.gateway} yet (ARP resolves it on the first packet)`,
    );
  }
  if (!underlayHop(w, t, peer, family)) return done();
  const peerNode = publicIPOf(peer, family)!;
  if (!t.remote) {
    w.hops.push({
      where: peerNode,
      what: `node of lease ${leaseName(peer)}`,
      entry: `not inspected: run trace on node ${peerNode}`,
      ok: true,
    });
    return done();
  }
  w.pass(t.remote.name, `node of lease ${leaseName(peer)}`, `lease ${leaseName(peer)}: public IP ${peerNode}`);
  remoteHops(w, t, peer, family, proto);
  return done();
}

/** The hops as a person reads them, with the stop's reason and fix. */
export function formatTrace(tr: Trace): string {
  const lines = [`trace ${tr.src} → ${tr.dst}`];
  tr.hops.forEach((h, i) => {
    const count = h.count !== undefined ? `  [${h.count} probe packet${h.count === 1 ? '' : 's'}]` : '';
    lines.push(
      `${String(i + 1).padStart(2)}. ${h.ok ? 'ok  ' : 'STOP'} ${h.where}: ${h.what}${count}`,
      `          ${h.entry}`,
    );
  });
  if (tr.stoppedAt)
    lines.push('', `Stopped at ${tr.stoppedAt}: ${tr.reason}${tr.id ? ` [${tr.id}]` : ''}`, `fix: ${tr.fix}`);
  else lines.push('', 'Every hop is in place.');
  const p = tr.probe;
  if (p) {
    lines.push(
      `Probe: ${p.received} of ${p.sent} echoes answered${p.stoppedAt ? `; the probe stopped at ${p.stoppedAt}` : ''}.`,
    );
    for (const d of p.droppedBy ?? []) lines.push(`  dropped by ${d}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `{"hops": [{"where","what","entry","ok","count"?}], "stoppedAt"?, "reason"?, "id"?, "fix"?}`. */
export function traceJson(tr: Trace): string {
  return `${JSON.stringify(tr)}\n`;
}
