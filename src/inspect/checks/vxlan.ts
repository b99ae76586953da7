// The vxlan device against the config and this node's lease, and each peer lease against the kernel entries the
// backend programs for it: the backend's own plan (backend/vxlan/plan.ts), so doctor and flanneld agree on what
// "programmed" means.
import { leaseName } from '../../subnet/lease.ts';
import { vtepMacOf } from '../../subnet/etcd/ownership.ts';
import { VXLAN_OVERHEAD, deviceName } from '../../backend/vxlan/options.ts';
import { missingEntries, planPeer, staleEntries, type Entry, type PeerPlan } from '../../backend/vxlan/plan.ts';
import type { LinkInfo } from '../../netlink/index.ts';
import type { Check, Finding } from '../findings.ts';
import type { NodeSnapshot } from '../snapshot.ts';
import { ownLease } from './subnet.ts';


function vxlanDevice(s: NodeSnapshot): LinkInfo | undefined {
  return s.backend?.type === 'vxlan' ? s.links.find((l) => l.name === deviceName(s.backend!.vni)) : undefined;
}

function entryText(e: Entry, dev: string): string {
  if (e.kind === 'neighbour') return `neighbour ${e.ip} lladdr ${e.mac} dev ${dev}`;
  if (e.kind === 'fdb') return `fdb ${e.mac} dev ${dev} dst ${e.dst}`;
  return `route ${e.dst} via ${e.gateway}${e.onVxlan ? ` dev ${dev} onlink` : ''}`;
}

export const vxlanDeviceCheck: Check = {
  ids: ['vtep-mismatch', 'mtu-mismatch'],
  run(s) {
    const b = s.backend;
    const env = s.subnetEnv.env;
    if (b?.type !== 'vxlan' || !env?.subnet) return [];
    const name = deviceName(b.vni);
    const dev = vxlanDevice(s);
    const own = ownLease(s);
    const vtep = (summary: string, evidence: string[], fix: string): Finding => ({ id: 'vtep-mismatch', severity: 'error', summary, evidence, fix });
    if (!dev?.vxlan) {
      return [vtep(`${name} is missing: no pod traffic leaves this node`, [`no link ${name}`], 'restart flanneld on this node (it creates the device)')];
    }
    const v = dev.vxlan;
    const out: Finding[] = [];
    const shown = `${name}: vxlan id ${v.id} local ${v.local ?? '-'} dstport ${v.port} dev ${s.links.find((l) => l.index === v.link)?.name ?? v.link ?? '-'}`;
    const recreate = `ip link delete ${name} and restart flanneld: it recreates the device from the config and the lease`;
    if (v.id !== b.vni) out.push(vtep(`${name} has VNI ${v.id}, the config says ${b.vni}`, [shown], recreate));
    if (v.port !== b.port) out.push(vtep(`${name} sends to UDP port ${v.port}, the config says ${b.port}`, [shown], recreate));
    const localAddrs = new Set(s.addresses.map((a) => a.address));
    // A public IP that is an address of this host but not the device's source: the device never took a new one.
    if (own && v.local && own.attrs.publicIP !== v.local && localAddrs.has(own.attrs.publicIP)) {
      out.push(vtep(`${name} sends from ${v.local}, but this node's lease says its public IP is ${own.attrs.publicIP}`, [shown, `lease ${leaseName(own)}: PublicIP ${own.attrs.publicIP}`], recreate));
    }
    if (v.local && v.link !== null) {
      const onParent = s.addresses.some((a) => a.index === v.link && a.address === v.local);
      if (!onParent) out.push(vtep(`${name}'s source ${v.local} is not an address of its parent device`, [shown], recreate));
    }
    const parent = s.links.find((l) => l.index === v.link);
    const mtu = (summary: string, evidence: string[], fix: string): Finding => ({ id: 'mtu-mismatch', severity: 'error', summary, evidence, fix });
    if (parent && dev.mtu > parent.mtu - VXLAN_OVERHEAD) {
      out.push(mtu(`${name}'s MTU ${dev.mtu} leaves no room for the ${VXLAN_OVERHEAD}-byte vxlan header on ${parent.name} (MTU ${parent.mtu}): large packets are dropped`, [`${name} mtu ${dev.mtu}`, `${parent.name} mtu ${parent.mtu}`], `ip link set ${name} mtu ${parent.mtu - VXLAN_OVERHEAD} (flanneld sets it so at start)`));
    }
    const bridge = s.links.find((l) => l.name === 'cni0');
    const tooBig = [bridge, ...s.links.filter((l) => bridge && l.master === bridge.index)].filter((l): l is LinkInfo => !!l && l.mtu > dev.mtu);
    if (tooBig.length > 0) {
      out.push(mtu(`${tooBig.map((l) => l.name).join(', ')} ${tooBig.length > 1 ? 'have' : 'has'} a larger MTU than ${name} (${dev.mtu}): pods send packets the overlay cannot carry`, tooBig.map((l) => `${l.name} mtu ${l.mtu}`), `recreate the pods after fixing FLANNEL_MTU (${env.mtu} in ${s.subnetEnv.path}); the CNI plugin sets the pod MTU from it`));
    }
    return out;
  },
};

export const vxlanPeersCheck: Check = {
  ids: ['peer-unprogrammed', 'peer-mac-mismatch', 'peer-stale'],
  run(s) {
    const b = s.backend;
    const env = s.subnetEnv.env;
    const dev = vxlanDevice(s);
    if (b?.type !== 'vxlan' || !env?.subnet || !dev || !Array.isArray(s.leases) || env.networks.length === 0) return [];
    const own = ownLease(s);
    const out: Finding[] = [];
    const plans: PeerPlan[] = [];
    const kernel = { routes: s.routes, neighbours: s.neighbours, fdb: s.fdb };
    for (const lease of s.leases) {
      if (lease === own || !lease.subnet) continue;
      const planned = planPeer(lease, b.directRouting);
      if (!planned?.ok) continue;
      plans.push(planned.plan);
      const missing = missingEntries(planned.plan, kernel, dev.index);
      if (missing.length === 0) continue;
      const peer = `${leaseName(lease)} (${lease.attrs.publicIP})`;
      const wantMac = planned.plan.mode === 'overlay' ? planned.plan.vtepMac : undefined;
      const stale = wantMac && s.neighbours.find((n) => n.index === dev.index && n.ip === missing.find((e) => e.kind === 'neighbour')?.ip && n.mac !== wantMac);
      const evidence = [`lease ${leaseName(lease)}: PublicIP ${lease.attrs.publicIP}, VtepMAC ${vtepMacOf(lease.attrs)}`, ...missing.map((e) => `missing: ${entryText(e, dev.name)}`)];
      if (stale) {
        out.push({ id: 'peer-mac-mismatch', severity: 'error', summary: `the neighbour entry for peer ${peer} has MAC ${stale.mac}, its lease says ${wantMac}: packets to it go to a VTEP that is not there`, evidence: [...evidence, `present: neighbour ${stale.ip} lladdr ${stale.mac} dev ${dev.name}`], fix: `restart flanneld on this node, or: ip neigh replace ${stale.ip} lladdr ${wantMac} dev ${dev.name} nud permanent` });
      } else {
        out.push({ id: 'peer-unprogrammed', severity: 'error', summary: `peer ${peer} has a lease but not all of its kernel entries: pods there are unreachable`, evidence, fix: "check flanneld's log on this node for the peer's subnet; flanneld restores the entries within 10 s while it runs" });
      }
    }
    const ext = s.links.find((l) => l.index === dev.vxlan?.link);
    const stale = staleEntries({ network: env.networks[0]!, subnetLen: env.subnet.prefix, vxlanIndex: dev.index, extIndex: ext?.index ?? -1, directRouting: b.directRouting, peers: plans, ...kernel });
    const lines = [
      ...stale.routes.map((r) => `route ${r.dst} via ${r.gateway ?? '-'} dev ${s.links.find((l) => l.index === r.oif)?.name ?? r.oif}`),
      ...stale.neighbours.map((n) => `neighbour ${n.ip} lladdr ${n.mac} dev ${dev.name}`),
      ...stale.fdb.map((f) => `fdb ${f.mac} dev ${dev.name} dst ${f.dst}`),
    ];
    if (lines.length > 0) {
      out.push({ id: 'peer-stale', severity: 'warning', summary: `${lines.length} flannel entr${lines.length > 1 ? 'ies belong' : 'y belongs'} to no current lease (a node that left)`, evidence: lines, fix: 'restart flanneld on this node (it sweeps them at start), or delete them: ip route del / ip neigh del / bridge fdb del as listed' });
    }
    return out;
  },
};
