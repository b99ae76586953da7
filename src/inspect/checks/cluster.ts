// The cluster's leases as a whole: reachable at all, and one public IP per node.
import { leaseName, type Lease } from '../../subnet/lease.ts';
import { vtepMacOf } from '../../subnet/etcd/ownership.ts';
import type { Check, Finding } from '../findings.ts';

export const clusterCheck: Check = {
  ids: ['cluster-unreachable', 'public-ip-duplicate'],
  run(s) {
    if (!Array.isArray(s.leases)) {
      return [
        {
          id: 'cluster-unreachable',
          severity: 'error',
          summary: "the cluster's leases cannot be read: this node learns of no new peer",
          evidence: [s.leases.error],
          fix: 'check --etcd-endpoints and the etcd TLS flags (or --kubeconfig-file), and that etcd / the API server answers from this node',
        },
      ];
    }
    const byIP = new Map<string, Lease[]>();
    for (const l of s.leases) {
      // IPv6-only leases all carry PublicIP 0.0.0.0: they are told apart by PublicIPv6.
      const ip = l.attrs.publicIP !== '0.0.0.0' ? l.attrs.publicIP : l.attrs.publicIPv6;
      if (ip) byIP.set(ip, [...(byIP.get(ip) ?? []), l]);
    }
    const out: Finding[] = [];
    for (const [ip, leases] of byIP) {
      if (leases.length < 2) continue;
      out.push({
        id: 'public-ip-duplicate',
        severity: 'error',
        summary: `${leases.length} leases carry the public IP ${ip}: peers cannot tell those nodes apart (Vagrant's NAT address on every VM does this)`,
        evidence: leases.map((l) => `lease ${leaseName(l)}: PublicIP ${ip}, VtepMAC ${vtepMacOf(l.attrs)}`),
        fix: 'start flanneld on each of those nodes with its own address: --iface=<the host-only interface>, --iface-regex or --iface-can-reach=<an address of the other nodes>',
      });
    }
    return out;
  },
};
