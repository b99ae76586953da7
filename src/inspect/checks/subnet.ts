// subnet.env against the cluster's leases, and cni0 against subnet.env: the CNI plugin hands out addresses from
// FLANNEL_SUBNET on cni0, so all three must name one subnet.
import { formatIPv4 } from '../../ip/ipv4.ts';
import { leaseName, type Lease } from '../../subnet/lease.ts';
import type { Check, Finding } from '../findings.ts';
import type { NodeSnapshot } from '../snapshot.ts';

/** This node's lease: the one holding subnet.env's subnet (or its IPv6 subnet on an IPv6-only network). */
export function ownLease(s: NodeSnapshot): Lease | undefined {
  const env = s.subnetEnv.env;
  if (!env || (!env.subnet && !env.ipv6Subnet) || !Array.isArray(s.leases)) return undefined;
  const own = leaseName(env);
  return s.leases.find((l) => leaseName(l) === own);
}

export const subnetEnvCheck: Check = {
  ids: ['subnet-env-mismatch'],
  run(s) {
    const { path, env, error } = s.subnetEnv;
    const mismatch = (summary: string, evidence: string[]): Finding[] => [
      {
        id: 'subnet-env-mismatch',
        severity: 'error',
        summary,
        evidence,
        fix: `restart flanneld on this node: it takes its lease again and rewrites ${path}`,
      },
    ];
    if (!env)
      return mismatch(`${path} cannot be read: the CNI plugin fails every pod ADD on this node`, [error ?? 'missing']);
    if (!Array.isArray(s.leases)) return [];
    const own = ownLease(s);
    const name = env.subnet?.toString() ?? env.ipv6Subnet?.toString();
    if (!own)
      return mismatch(`no lease in the cluster holds this node's subnet ${name} (from ${path})`, [
        `FLANNEL_SUBNET=${name}`,
      ]);
    if (s.publicIP && own.attrs.publicIP !== s.publicIP && own.attrs.publicIPv6 !== s.publicIP) {
      return mismatch(`the lease of ${name} belongs to ${own.attrs.publicIP}, not to this node (${s.publicIP})`, [
        `lease ${name}: PublicIP ${own.attrs.publicIP}`,
      ]);
    }
    return [];
  },
};

export const cniBridgeCheck: Check = {
  ids: ['cni-bridge-mismatch'],
  run(s) {
    const subnet = s.subnetEnv.env?.subnet;
    const bridge = s.links.find((l) => l.name === 'cni0');
    if (!subnet || !bridge) return [];
    const want = `${formatIPv4(subnet.ip + 1)}/${subnet.prefix}`;
    const have = s.addresses
      .filter((a) => a.index === bridge.index && a.family === 4)
      .map((a) => `${a.address}/${a.prefixLen}`);
    const foreign = have.filter((a) => a !== want);
    if (foreign.length === 0) return [];
    return [
      {
        id: 'cni-bridge-mismatch',
        severity: 'error',
        summary: `cni0 holds ${foreign.join(', ')}, not this node's gateway ${want}: the bridge plugin fails pod ADDs ("already has an IP address different from")`,
        evidence: [`cni0: ${have.join(' ')}`, `FLANNEL_SUBNET=${want}`],
        fix: 'ip link set cni0 down && ip link delete cni0 (the next pod ADD recreates it with the right address; pods on the old subnet need a restart)',
      },
    ];
  },
};
