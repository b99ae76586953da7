// The lab's names and addresses, derived from its size; pure.

export const LAB_PREFIX = 'flab';
export const LAB_DIR = '/run/flannel-lab';
export const UNDERLAY = '192.168.100';
export const LAB_NETWORK = '10.244.0.0/16';
/** Dual stack: the IPv6 pod network (a /64 per host) and the underlay's IPv6 prefix. */
export const LAB_NETWORK_V6 = 'fd44:244::/56';
export const UNDERLAY_V6 = 'fd00:100::';

export interface LabPod {
  ns: string;
  host: string;
}

export interface LabHost {
  name: string;
  ns: string;
  /** Underlay address of eth0. */
  ip: string;
  /** Underlay IPv6 address of eth0 (dual stack). */
  ipv6: string;
  /** Root-namespace names of the veth pair before it is moved (≤ 15 chars). */
  vethHost: string;
  vethSwitch: string;
  dir: string;
  subnetFile: string;
  pods: LabPod[];
}

export interface LabTopology {
  switchNs: string;
  etcdNs: string;
  etcdIp: string;
  etcdEndpoint: string;
  hosts: LabHost[];
  backend: string;
  /** Masquerade/forward rules in nftables (`"EnableNFTables": true`) instead of iptables. */
  nftables: boolean;
  /** IPv4 + IPv6 pod networks (`"EnableIPv6": true`). */
  dualStack: boolean;
  /** IPv6 pod network only (`"EnableIPv4": false`); the underlay keeps IPv4 too, for etcd / the API server. */
  ipv6Only?: boolean;
}

/** The pod network families a lab runs. */
export const labHasV4 = (t: Pick<LabTopology, 'ipv6Only'>) => !t.ipv6Only;
export const labHasV6 = (t: Pick<LabTopology, 'dualStack' | 'ipv6Only'>) => t.dualStack || t.ipv6Only === true;

/** The pod network families as the lab's options name them. */
export function labStackName(t: Pick<LabTopology, 'dualStack' | 'ipv6Only'>): string {
  return t.ipv6Only ? 'IPv6-only' : t.dualStack ? 'dual-stack' : 'IPv4';
}

export function labTopology(
  hosts: number,
  podsPerHost: number,
  backend: string,
  nftables = false,
  dualStack = false,
  ipv6Only = false,
): LabTopology {
  if (dualStack && ipv6Only) throw new Error('--dual-stack and --ipv6 exclude each other: pick one');
  if (!Number.isInteger(hosts) || hosts < 2 || hosts > 20)
    throw new Error(`--hosts ${hosts}: use a number from 2 to 20`);
  if (!Number.isInteger(podsPerHost) || podsPerHost < 1 || podsPerHost > 20) {
    throw new Error(`--pods-per-host ${podsPerHost}: use a number from 1 to 20`);
  }
  const etcdIp = `${UNDERLAY}.2`;
  return {
    switchNs: `${LAB_PREFIX}-sw`,
    etcdNs: `${LAB_PREFIX}-etcd`,
    etcdIp,
    etcdEndpoint: `http://${etcdIp}:2379`,
    backend,
    nftables,
    dualStack,
    ...(ipv6Only && { ipv6Only }),
    hosts: Array.from({ length: hosts }, (_, i) => {
      const name = `h${i + 1}`;
      const ns = `${LAB_PREFIX}-${name}`;
      return {
        name,
        ns,
        ip: `${UNDERLAY}.${11 + i}`,
        ipv6: `${UNDERLAY_V6}${11 + i}`,
        vethHost: `${LAB_PREFIX}${i + 1}a`,
        vethSwitch: `${LAB_PREFIX}${i + 1}b`,
        dir: `${LAB_DIR}/${name}`,
        subnetFile: `${LAB_DIR}/${name}/subnet.env`,
        pods: Array.from({ length: podsPerHost }, (_, j) => ({ ns: `${ns}-p${j + 1}`, host: ns })),
      };
    }),
  };
}

/** The network config the lab writes to etcd. */
export function labNetworkConfig(t: Pick<LabTopology, 'backend' | 'nftables' | 'dualStack' | 'ipv6Only'>): string {
  return JSON.stringify({
    ...(t.ipv6Only ? { EnableIPv4: false } : { Network: LAB_NETWORK }),
    ...(labHasV6(t) ? { EnableIPv6: true, IPv6Network: LAB_NETWORK_V6 } : {}),
    ...(t.nftables ? { EnableNFTables: true } : {}),
    Backend: { Type: t.backend },
  });
}

/** Host h<i>'s pod CIDRs in kube mode: 10.244.<i>.0/24 and/or fd44:244:0:<i>::/64 (hex), as a node-IPAM controller would. */
export function labPodCIDRs(t: Pick<LabTopology, 'dualStack' | 'ipv6Only'>, index: number): string[] {
  const out: string[] = [];
  if (labHasV4(t)) out.push(`10.244.${index + 1}.0/24`);
  if (labHasV6(t)) out.push(`fd44:244:0:${(index + 1).toString(16)}::/64`);
  return out;
}

/** The CNI config each lab host uses: the stock kube-flannel delegate, with per-host state paths. */
export function labCniConfig(host: LabHost): string {
  return JSON.stringify({
    cniVersion: '0.3.1',
    name: 'cbr0',
    type: 'flannel',
    subnetFile: host.subnetFile,
    dataDir: `${host.dir}/cni`,
    delegate: { hairpinMode: true, isDefaultGateway: true },
    // host-local keeps its allocations per host: all lab hosts share one filesystem.
    ipam: { dataDir: `${host.dir}/ipam` },
  });
}
