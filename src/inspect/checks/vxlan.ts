// The vxlan devices against the config and this node's lease, and each peer lease against the kernel entries the
// backend programs for it: the backend's own plan (backend/vxlan/plan.ts), so doctor and flanneld agree on what
// "programmed" means. IPv4 runs on flannel.<VNI>, IPv6 on flannel-v6.<VNI>; dual stack checks both.
import { leaseName, type Lease } from '../../subnet/lease.ts';
import { vtepMacOf } from '../../subnet/etcd/ownership.ts';
import { VXLAN6_OVERHEAD, VXLAN_OVERHEAD, deviceName, deviceNameV6 } from '../../backend/vxlan/options.ts';
import {
  entriesOf,
  indexKernel,
  missingIn,
  planPeer,
  planPeerV6,
  staleEntries,
  type Entry,
  type PeerPlan,
  type PlanResult,
} from '../../backend/vxlan/plan.ts';
import type { IPv4Net } from '../../ip/ipv4.ts';
import type { IPv6Net } from '../../ip/ipv6.ts';
import type { LinkInfo } from '../../netlink/index.ts';
import type { Check, Finding } from '../findings.ts';
import type { NodeSnapshot } from '../snapshot.ts';
import { ownLease } from './subnet.ts';

/** One IP family's half of the vxlan backend: its device, subnets and how a lease names its side. */
interface Stack {
  family: 4 | 6;
  device: string;
  overhead: number;
  subnet: IPv4Net | IPv6Net;
  networks: ReadonlyArray<IPv4Net | IPv6Net>;
  publicIP(l: Lease): string | null;
  plan(l: Lease, direct: boolean): PlanResult | null;
}

function stacks(s: NodeSnapshot): Stack[] {
  const b = s.backend;
  const env = s.subnetEnv.env;
  if (b?.type !== 'vxlan' || !env) return [];
  const out: Stack[] = [];
  if (env.subnet) {
    out.push({
      family: 4,
      device: deviceName(b.vni),
      overhead: VXLAN_OVERHEAD,
      subnet: env.subnet,
      networks: env.networks,
      publicIP: (l) => (l.attrs.publicIP !== '0.0.0.0' ? l.attrs.publicIP : null),
      plan: planPeer,
    });
  }
  if (env.ipv6Subnet) {
    out.push({
      family: 6,
      device: deviceNameV6(b.vni),
      overhead: VXLAN6_OVERHEAD,
      subnet: env.ipv6Subnet,
      networks: env.ipv6Networks,
      publicIP: (l) => l.attrs.publicIPv6 ?? null,
      plan: planPeerV6,
    });
  }
  return out;
}

function entryText(e: Entry, dev: string): string {
  if (e.kind === 'neighbour') return `neighbour ${e.ip} lladdr ${e.mac} dev ${dev}`;
  if (e.kind === 'fdb') return `fdb ${e.mac} dev ${dev} dst ${e.dst}`;
  return `route ${e.dst} via ${e.gateway}${e.onVxlan ? ` dev ${dev} onlink` : ''}`;
}

const vtep = (summary: string, evidence: string[], fix: string): Finding => ({
  id: 'vtep-mismatch',
  severity: 'error',
  summary,
  evidence,
  fix,
});
const mtu = (summary: string, evidence: string[], fix: string): Finding => ({
  id: 'mtu-mismatch',
  severity: 'error',
  summary,
  evidence,
  fix,
});

function deviceFindings(s: NodeSnapshot, st: Stack): Finding[] {
  const b = s.backend!;
  const dev = s.links.find((l) => l.name === st.device);
  if (!dev?.vxlan)
    return [
      vtep(
        `${st.device} is missing: no pod traffic leaves this node`,
        [`no link ${st.device}`],
        'restart flanneld on this node (it creates the device)',
      ),
    ];
  const v = dev.vxlan;
  const own = ownLease(s);
  const out: Finding[] = [];
  const parent = s.links.find((l) => l.index === v.link);
  const shown = `${st.device}: vxlan id ${v.id} local ${v.local ?? '-'} dstport ${v.port} dev ${parent?.name ?? v.link ?? '-'}`;
  const recreate = `ip link delete ${st.device} and restart flanneld: it recreates the device from the config and the lease`;
  if (v.id !== b.vni) out.push(vtep(`${st.device} has VNI ${v.id}, the config says ${b.vni}`, [shown], recreate));
  if (v.port !== b.port)
    out.push(vtep(`${st.device} sends to UDP port ${v.port}, the config says ${b.port}`, [shown], recreate));
  const publicIP = own ? st.publicIP(own) : null;
  const localAddrs = new Set(s.addresses.map((a) => a.address));
  // A public IP that is an address of this host but not the device's source: the device never took a new one.
  if (publicIP && v.local && publicIP !== v.local && localAddrs.has(publicIP)) {
    out.push(
      vtep(
        `${st.device} sends from ${v.local}, but this node's lease says its public IP is ${publicIP}`,
        [shown, `lease ${leaseName(own!)}: public IP ${publicIP}`],
        recreate,
      ),
    );
  }
  if (v.local && v.link !== null && !s.addresses.some((a) => a.index === v.link && a.address === v.local)) {
    out.push(vtep(`${st.device}'s source ${v.local} is not an address of its parent device`, [shown], recreate));
  }
  if (parent && dev.mtu > parent.mtu - st.overhead) {
    out.push(
      mtu(
        `${st.device}'s MTU ${dev.mtu} leaves no room for the ${st.overhead}-byte vxlan header on ${parent.name} (MTU ${parent.mtu}): large packets are dropped`,
        [`${st.device} mtu ${dev.mtu}`, `${parent.name} mtu ${parent.mtu}`],
        `ip link set ${st.device} mtu ${parent.mtu - st.overhead} (flanneld sets it so at start)`,
      ),
    );
  }
  return out;
}

/** cni0 and the pods' veths must not send larger packets than the smallest flannel device carries. */
function podMtuFindings(s: NodeSnapshot, devs: LinkInfo[]): Finding[] {
  const bridge = s.links.find((l) => l.name === 'cni0');
  if (!bridge || devs.length === 0) return [];
  const smallest = devs.reduce((a, b) => (b.mtu < a.mtu ? b : a));
  const tooBig = [bridge, ...s.links.filter((l) => l.master === bridge.index)].filter((l) => l.mtu > smallest.mtu);
  if (tooBig.length === 0) return [];
  return [
    mtu(
      `${tooBig.map((l) => l.name).join(', ')} ${tooBig.length > 1 ? 'have' : 'has'} a larger MTU than ${smallest.name} (${smallest.mtu}): pods send packets the overlay cannot carry`,
      tooBig.map((l) => `${l.name} mtu ${l.mtu}`),
      `recreate the pods after fixing FLANNEL_MTU (${s.subnetEnv.env?.mtu} in ${s.subnetEnv.path}); the CNI plugin sets the pod MTU from it`,
    ),
  ];
}

export const vxlanDeviceCheck: Check = {
  ids: ['vtep-mismatch', 'mtu-mismatch'],
  run(s) {
    const st = stacks(s);
    // FLANNEL_MTU (the pods' MTU) follows the IPv4 device in dual stack, as upstream's does; IPv6 flows above the
    // smaller flannel-v6 MTU get "packet too big" and path MTU discovery, so only the first device bounds the pods.
    const first = st[0] && s.links.find((l) => l.name === st[0]!.device && l.vxlan);
    return [...st.flatMap((x) => deviceFindings(s, x)), ...podMtuFindings(s, first ? [first] : [])];
  },
};

/** DirectRouting applies to a peer the kernel reaches without a gateway (as the backend decides it). */
function isDirect(s: NodeSnapshot, ip: string | null): boolean {
  if (!s.backend?.directRouting || !ip) return false;
  const u = s.underlay.find((x) => x.ip === ip)?.lookup;
  return !!u && u.type === 'unicast' && u.gateway === undefined;
}

function peerFindings(s: NodeSnapshot, st: Stack): Finding[] {
  const dev = s.links.find((l) => l.name === st.device);
  if (!dev?.vxlan || !Array.isArray(s.leases) || st.networks.length === 0) return [];
  const own = ownLease(s);
  const out: Finding[] = [];
  const plans: PeerPlan[] = [];
  const kernel = { routes: s.routes, neighbours: s.neighbours, fdb: s.fdb };
  const index = indexKernel(kernel, dev.index);
  for (const lease of s.leases) {
    if (lease === own) continue;
    const planned = st.plan(lease, isDirect(s, st.publicIP(lease)));
    if (!planned?.ok) continue;
    plans.push(planned.plan);
    const missing = missingIn(planned.plan, index);
    if (missing.length === 0) continue;
    const peer = `${leaseName(lease)} (${planned.plan.publicIP})`;
    const wantMac = planned.plan.mode === 'overlay' ? planned.plan.vtepMac : undefined;
    const neighIP = missing.find((e) => e.kind === 'neighbour')?.ip;
    const stale = wantMac && s.neighbours.find((n) => n.index === dev.index && n.ip === neighIP && n.mac !== wantMac);
    const evidence = [
      `lease ${leaseName(lease)}: public IP ${planned.plan.publicIP}, VtepMAC ${wantMac ?? vtepMacOf(lease.attrs)}`,
      ...missing.map((e) => `missing: ${entryText(e, dev.name)}`),
    ];
    if (stale) {
      out.push({
        id: 'peer-mac-mismatch',
        severity: 'error',
        summary: `the neighbour entry for peer ${peer} has MAC ${stale.mac}, its lease says ${wantMac}: packets to it go to a VTEP that is not there`,
        evidence: [...evidence, `present: neighbour ${stale.ip} lladdr ${stale.mac} dev ${dev.name}`],
        fix: `restart flanneld on this node, or: ip neigh replace ${stale.ip} lladdr ${wantMac} dev ${dev.name} nud permanent`,
      });
    } else {
      out.push({
        id: 'peer-unprogrammed',
        severity: 'error',
        summary: `peer ${peer} has a lease but not all of its kernel entries: pods there are unreachable`,
        evidence,
        fix: "check flanneld's log on this node for the peer's subnet; flanneld restores the entries within 10 s while it runs",
      });
    }
  }
  const ext = s.links.find((l) => l.index === dev.vxlan?.link);
  const stale = staleEntries({
    network: st.networks[0]!,
    subnetLen: st.subnet.prefix,
    vxlanIndex: dev.index,
    extIndex: ext?.index ?? -1,
    directRouting: !!s.backend?.directRouting,
    peers: plans,
    ...kernel,
  });
  const plannedIPs = new Set(plans.flatMap((p) => entriesOf(p)).flatMap((e) => (e.kind === 'neighbour' ? [e.ip] : [])));
  const lines = [
    ...stale.routes.map(
      (r) => `route ${r.dst} via ${r.gateway ?? '-'} dev ${s.links.find((l) => l.index === r.oif)?.name ?? r.oif}`,
    ),
    // A peer's neighbour with the wrong MAC is peer-mac-mismatch's: not counted again as left over.
    ...stale.neighbours
      .filter((n) => !plannedIPs.has(n.ip))
      .map((n) => `neighbour ${n.ip} lladdr ${n.mac} dev ${dev.name}`),
    ...stale.fdb.map((f) => `fdb ${f.mac} dev ${dev.name} dst ${f.dst}`),
  ];
  if (lines.length > 0) {
    out.push({
      id: 'peer-stale',
      severity: 'warning',
      summary: `${lines.length} flannel entr${lines.length > 1 ? 'ies belong' : 'y belongs'} to no current lease (a node that left)`,
      evidence: lines,
      fix: 'restart flanneld on this node (it sweeps them at start), or delete them: ip route del / ip neigh del / bridge fdb del as listed',
    });
  }
  return out;
}

export const vxlanPeersCheck: Check = {
  ids: ['peer-unprogrammed', 'peer-mac-mismatch', 'peer-stale'],
  run: (s) => stacks(s).flatMap((st) => peerFindings(s, st)),
};
