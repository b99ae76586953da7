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
}

export function labTopology(hosts: number, podsPerHost: number, backend: string, nftables = false, dualStack = false): LabTopology {
  if (!Number.isInteger(hosts) || hosts < 2 || hosts > 20) throw new Error(`--hosts ${hosts}: use a number from 2 to 20`);
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
export function labNetworkConfig(t: Pick<LabTopology, 'backend' | 'nftables' | 'dualStack'>): string {
  return JSON.stringify({
    Network: LAB_NETWORK,
    ...(t.dualStack ? { EnableIPv6: true, IPv6Network: LAB_NETWORK_V6 } : {}),
    ...(t.nftables ? { EnableNFTables: true } : {}),
    Backend: { Type: t.backend },
  });
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
