// How this node reaches its peers on the underlay, as the kernel answers `ip route get <peer public IP>`: through
// flannel's interface and from its public IP (a host with two addresses may answer from the wrong one), directly for
// host-gw, and, with --probe, whether the overlay carries what the underlay does.
import { adjacencyReason } from '../../backend/hostgw/plan.ts';
import { familyOf } from '../../netlink/index.ts';
import type { LinkInfo } from '../../netlink/index.ts';
import type { Check, Finding } from '../findings.ts';
import type { NodeSnapshot } from '../snapshot.ts';
import { ownLease } from './subnet.ts';

/** This node's public IP of a family and the interface that holds it (flannel's interface). */
export function ownInterface(s: NodeSnapshot, family: 4 | 6): { ip: string; link: LinkInfo } | undefined {
  const own = ownLease(s);
  const ip =
    family === 4
      ? (own?.attrs.publicIP ?? (s.publicIP && familyOf(s.publicIP) === 4 ? s.publicIP : undefined))
      : (own?.attrs.publicIPv6 ?? undefined);
  if (!ip || ip === '0.0.0.0') return undefined;
  const addr = s.addresses.find((a) => a.address === ip);
  const link = addr && s.links.find((l) => l.index === addr.index);
  return link ? { ip, link } : undefined;
}

function linkName(s: NodeSnapshot, index: number | undefined): string {
  return s.links.find((l) => l.index === index)?.name ?? `index ${index ?? '-'}`;
}

function lookupText(s: NodeSnapshot, ip: string, u: NodeSnapshot['underlay'][number]): string {
  const l = u.lookup;
  if (!l) return `ip route get ${ip}: ${u.error}`;
  return `ip route get ${ip}: ${l.type} ${l.gateway ? `via ${l.gateway} ` : ''}dev ${linkName(s, l.oif)}${l.prefsrc ? ` src ${l.prefsrc}` : ''}`;
}

/**
 * Only the udp backend's packets take the route's source address: vxlan encapsulates from the device's local address
 * (vtep-mismatch compares that with the lease) and host-gw forwards pod packets with the pods' own addresses.
 */
function sourceMatters(s: NodeSnapshot): boolean {
  return s.backend?.type === 'udp';
}

export const underlayRouteCheck: Check = {
  ids: ['underlay-route', 'hostgw-not-adjacent'],
  run(s) {
    const out: Finding[] = [];
    const hostgw = s.backend?.type === 'host-gw';
    for (const u of s.underlay) {
      const family = familyOf(u.ip);
      const me = ownInterface(s, family);
      const evidence = [`lease ${u.lease}: public IP ${u.ip}`, lookupText(s, u.ip, u)];
      // A peer public IP that is this host's own is public-ip-duplicate's to report.
      if (u.lookup?.type === 'local') continue;
      if (u.lookup?.type !== 'unicast') {
        out.push({
          id: 'underlay-route',
          severity: 'error',
          summary: `there is no route to peer ${u.lease}'s public IP ${u.ip}: nothing flannel sends there arrives`,
          evidence,
          fix: `add a route to ${u.ip} (or a default route) on ${me?.link.name ?? "flannel's interface"}, or start flanneld with --iface set to the interface that reaches the other nodes`,
        });
        continue;
      }
      if (!me) continue;
      if (hostgw) {
        // The backend's reason names the other interface by index; a person reads its name.
        const reason = adjacencyReason(u.ip, me.link.name, me.link.index, u.lookup)?.replace(
          /\(index (\d+)\)/,
          () => `(${linkName(s, u.lookup!.oif)})`,
        );
        if (reason) {
          out.push({
            id: 'hostgw-not-adjacent',
            severity: 'error',
            summary: reason,
            evidence,
            fix: 'put every node on one L2 network, or use the vxlan backend (with "DirectRouting": true it routes directly where it can)',
          });
          continue;
        }
      }
      if (u.lookup.oif !== me.link.index) {
        out.push({
          id: 'underlay-route',
          severity: 'error',
          summary: `traffic to peer ${u.lease} (${u.ip}) leaves through ${linkName(s, u.lookup.oif)}, not flannel's interface ${me.link.name} (${me.ip}): the peer may drop or never get it`,
          evidence,
          fix: `route ${u.ip} through ${me.link.name} (ip route replace ${u.ip} dev ${me.link.name} src ${me.ip}), or start flanneld with --iface=<the interface that reaches ${u.ip}>`,
        });
      } else if (sourceMatters(s) && u.lookup.prefsrc && u.lookup.prefsrc !== me.ip) {
        out.push({
          id: 'underlay-route',
          severity: 'error',
          summary: `traffic to peer ${u.lease} (${u.ip}) leaves with source ${u.lookup.prefsrc}, not this node's public IP ${me.ip}: answers come back to an address peers do not know`,
          evidence,
          fix: `ip route replace ${u.ip}${u.lookup.gateway ? ` via ${u.lookup.gateway}` : ''} dev ${me.link.name} src ${me.ip}, or start flanneld with --public-ip=${u.lookup.prefsrc} (or --iface) so the lease names the address the kernel uses`,
        });
      }
    }
    return out;
  },
};

export const overlayProbeCheck: Check = {
  ids: ['overlay-unreachable'],
  when: (s) => s.probes !== undefined,
  run(s) {
    if (!s.probes) return [];
    const out: Finding[] = [];
    for (const o of s.probes.filter((p) => p.kind === 'overlay' && p.received === 0)) {
      const under = s.probes.find(
        (p) => p.kind === 'underlay' && p.lease === o.lease && familyOf(p.target) === familyOf(o.target),
      );
      if (!under || under.received === 0) continue;
      const port = `UDP ${s.backend?.port || '(the backend port)'}`;
      out.push({
        id: 'overlay-unreachable',
        severity: 'error',
        summary: `peer ${o.lease} (${under.target}) answers on the underlay (${under.target}) but not through the overlay (${o.target}): ${port} between the hosts is dropped`,
        evidence: [
          `ping ${under.target}: ${under.received}/${under.sent} answered`,
          `ping ${o.target}: ${o.received}/${o.sent} answered`,
        ],
        fix: `allow ${port} between the nodes (firewalls of both hosts, security groups, the hypervisor's network); run doctor on the node ${under.target} too (overlay-port-blocked names a rule there)`,
      });
    }
    return out;
  },
};
