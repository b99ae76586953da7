// Reads a NodeSnapshot: the kernel through our netlink facade, /proc/sys, subnet.env, and the cluster's leases and
// network config from etcd. Read-only: nothing here writes to the kernel, the files or etcd.
import { readFileSync } from 'node:fs';
import { parseUdpOptions } from '../backend/udp/options.ts';
import { parseVxlanOptions } from '../backend/vxlan/options.ts';
import type { NetworkConfig } from '../config/network-config.ts';
import { errorMessage } from '../log/log.ts';
import { RT_TABLE_MAIN, openNetlink, type Netlink } from '../netlink/index.ts';
import { createEtcdClient, type EtcdClientOptions } from '../subnet/etcd/client.ts';
import { EtcdRegistry } from '../subnet/etcd/registry.ts';
import { annotationNames } from '../subnet/kube/annotations.ts';
import { createNodeApi } from '../subnet/kube/client.ts';
import { readNetConfig } from '../subnet/kube/manager.ts';
import { nodeToLease } from '../subnet/kube/node-lease.ts';
import { leaseName, type Lease } from '../subnet/lease.ts';
import { parseSubnetEnv } from '../subnet/subnet-env.ts';
import { processExec, type ExecFn } from '../util/exec.ts';
import { probePeers } from './probe.ts';
import { ownLease } from './checks/subnet.ts';
import type { NodeSnapshot } from './snapshot.ts';

/** The kernel's default vxlan port, which a Port of 0 means. */
const VXLAN_DEFAULT_PORT = 8472;

const SYSCTLS = ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding', 'net.bridge.bridge-nf-call-iptables'];

/** Where the cluster's leases come from: etcd, or the Nodes of the Kubernetes API (--kube-subnet-mgr). */
export type ClusterSource =
  | { kind: 'etcd'; etcd: EtcdClientOptions & { prefix: string } }
  | { kind: 'kube'; apiUrl?: string; kubeconfigFile?: string; netConfigPath: string; annotationPrefix: string };

export interface ReadOptions {
  subnetFile: string;
  /** flanneld's health server (http://127.0.0.1:8081), when it runs one. */
  healthUrl?: string;
  cluster: ClusterSource;
  publicIP?: string;
  /** --probe: ping each peer's public IP and flannel address (a few echoes each, bounded). */
  probe?: boolean;
  /** Runs the rule listers and ping; processExec() unless a test gives another. */
  exec?: ExecFn;
  /** The cluster's part already read (trace's far node shares the near node's): not asked for again. */
  known?: ClusterPart;
  /** Read another network namespace than our own (a lab host, for trace's far end); default: this process's. */
  netns?: string;
}

function readSysctl(name: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** "200 flanneld is ready", "503 …", or why nothing answered; bounded to 2 s. */
async function httpAnswer(url: string): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return `${res.status} ${(await res.text()).trim().slice(0, 200)}`;
  } catch (e) {
    const cause = (e as { cause?: unknown }).cause;
    return `no answer (${errorMessage(cause ?? e)})`;
  }
}

async function readFlanneld(url: string | undefined): Promise<NodeSnapshot['flanneld']> {
  if (!url) return undefined;
  const base = url.replace(/\/+$/, '');
  const [healthz, readyz] = await Promise.all([httpAnswer(`${base}/healthz`), httpAnswer(`${base}/readyz`)]);
  return { url: base, healthz, readyz };
}

function readSubnetEnv(path: string): NodeSnapshot['subnetEnv'] {
  try {
    return { path, env: parseSubnetEnv(readFileSync(path, 'utf8'), path) };
  } catch (e) {
    return { path, error: errorMessage(e) };
  }
}

export type ClusterPart = Pick<NodeSnapshot, 'leases' | 'backend' | 'nftables'>;

/** The backend settings doctor compares the kernel with, from the network config. */
function backendOf(config: NetworkConfig): NodeSnapshot['backend'] {
  if (config.backendType === 'udp')
    return { type: 'udp', vni: 0, port: parseUdpOptions(config.backend).port, directRouting: false };
  if (config.backendType !== 'vxlan') return { type: config.backendType, vni: 0, port: 0, directRouting: false };
  const v = parseVxlanOptions(config.backend, 1500);
  return { type: 'vxlan', vni: v.vni, port: v.port || VXLAN_DEFAULT_PORT, directRouting: v.directRouting };
}

async function readEtcd(o: EtcdClientOptions & { prefix: string }): Promise<ClusterPart> {
  const client = createEtcdClient({ ...o, callTimeoutMs: o.callTimeoutMs ?? 3000 });
  const registry = new EtcdRegistry(client, o.prefix);
  try {
    const config = await registry.readConfig();
    const leases = (await registry.listLeases()).leases;
    return { leases, backend: backendOf(config), nftables: config.enableNFTables };
  } finally {
    client.close();
  }
}

/** Kube mode: every Node flannel manages is a lease (as the subnet manager sees it); net-conf.json has the backend. */
async function readKube(o: Extract<ClusterSource, { kind: 'kube' }>): Promise<ClusterPart> {
  const config = await readNetConfig(o.netConfigPath);
  const api = await createNodeApi({ apiUrl: o.apiUrl, kubeconfigFile: o.kubeconfigFile });
  const names = annotationNames(o.annotationPrefix);
  const leases = (await api.listNodes()).items.flatMap((n) => {
    const l = nodeToLease(n, names);
    return 'lease' in l ? [l.lease] : [];
  });
  return { leases, backend: backendOf(config), nftables: config.enableNFTables };
}

/** The cluster's half: leases, and the backend settings of the network config. */
async function readCluster(o: ClusterSource): Promise<ClusterPart> {
  try {
    return await (o.kind === 'etcd' ? readEtcd(o.etcd) : readKube(o));
  } catch (e) {
    return { leases: { error: errorMessage(e) } };
  }
}

/** iptables-save / ip6tables-save -c and nft -j list ruleset, as text; a lister that is missing or fails is noted. */
async function readNetfilter(exec: ExecFn): Promise<NodeSnapshot['netfilter']> {
  const out: NodeSnapshot['netfilter'] = { errors: [] };
  const run = async (cmd: string, args: string[]): Promise<string | undefined> => {
    const r = await exec(cmd, args);
    if (r.code === 0) return r.stdout;
    out.errors.push(`${cmd} ${args.join(' ')}: ${(r.stderr.trim() || `exit ${r.code}`).split('\n')[0]}`);
    return undefined;
  };
  const [iptables, ip6tables, nft] = await Promise.all([
    run('iptables-save', ['-c']),
    run('ip6tables-save', ['-c']),
    run('nft', ['-j', 'list', 'ruleset']),
  ]);
  if (iptables !== undefined) out.iptables = iptables;
  if (ip6tables !== undefined) out.ip6tables = ip6tables;
  if (nft !== undefined) out.nft = nft;
  return out;
}

/** The peers' public IPs (each family a lease has), this node's own lease left out. */
export function peerPublicIPs(s: Pick<NodeSnapshot, 'leases' | 'subnetEnv'>): Array<{ lease: Lease; ip: string }> {
  if (!Array.isArray(s.leases)) return [];
  const own = ownLease(s as NodeSnapshot);
  const out: Array<{ lease: Lease; ip: string }> = [];
  for (const lease of s.leases) {
    if (lease === own) continue;
    if (lease.subnet && lease.attrs.publicIP !== '0.0.0.0') out.push({ lease, ip: lease.attrs.publicIP });
    if (lease.ipv6Subnet && lease.attrs.publicIPv6) out.push({ lease, ip: lease.attrs.publicIPv6 });
  }
  return out;
}

/** `ip route get` for every peer public IP: how the underlay reaches it. */
async function readUnderlay(
  nl: Netlink,
  s: Pick<NodeSnapshot, 'leases' | 'subnetEnv'>,
): Promise<NodeSnapshot['underlay']> {
  // In parallel: the facade keeps a window of requests in flight, and a cluster has thousands of peers.
  return Promise.all(
    peerPublicIPs(s).map(({ lease, ip }) =>
      nl.routeGet(ip).then(
        (lookup) => ({ lease: leaseName(lease), ip, lookup }),
        (e: unknown) => ({ lease: leaseName(lease), ip, error: errorMessage(e) }),
      ),
    ),
  );
}

/** /proc/sys shows the reader's own namespace: another one's values come from sysctl run inside it. */
async function readSysctls(exec: ExecFn, netns: string | undefined): Promise<NodeSnapshot['sysctls']> {
  if (!netns) return Object.fromEntries(SYSCTLS.map((k) => [k, readSysctl(k)]));
  const values = await Promise.all(
    SYSCTLS.map(async (k) => {
      const r = await exec('sysctl', ['-n', k]);
      return r.code === 0 ? r.stdout.trim() : undefined;
    }),
  );
  return Object.fromEntries(SYSCTLS.map((k, i) => [k, values[i]]));
}

export async function readNode(o: ReadOptions): Promise<NodeSnapshot> {
  const exec = o.exec ?? processExec(o.netns, 10_000);
  const cluster = o.known ? Promise.resolve(o.known) : readCluster(o.cluster);
  const flanneld = readFlanneld(o.healthUrl);
  const netfilter = readNetfilter(exec);
  const nl = await openNetlink({ netns: o.netns });
  try {
    const links = await nl.links();
    const addresses = [...(await nl.addresses(4)), ...(await nl.addresses(6))];
    const routes = [
      ...(await nl.routes(4, { table: RT_TABLE_MAIN })),
      ...(await nl.routes(6, { table: RT_TABLE_MAIN })),
    ];
    const neighbours = [...(await nl.neighbours(undefined, 4)), ...(await nl.neighbours(undefined, 6))];
    // The vxlan devices' entries (peers) and those of cni0's ports (which pod sits behind which veth).
    const bridge = links.find((l) => l.name === 'cni0');
    const fdb = [
      ...(await Promise.all(links.filter((l) => l.kind === 'vxlan').map((l) => nl.fdb(l.index)))).flat(),
      ...(bridge ? await nl.fdbOfBridge(bridge.index) : []),
    ];
    const sysctls = await readSysctls(exec, o.netns);
    const subnetEnv = readSubnetEnv(o.subnetFile);
    const part = await cluster;
    const underlay = await readUnderlay(nl, { ...part, subnetEnv });
    const snapshot: NodeSnapshot = {
      subnetEnv,
      publicIP: o.publicIP,
      links,
      addresses,
      routes,
      neighbours,
      fdb,
      sysctls,
      underlay,
      netfilter: await netfilter,
      ...part,
    };
    if (o.probe) snapshot.probes = await probePeers(snapshot, exec);
    const health = await flanneld;
    if (health) snapshot.flanneld = health;
    return snapshot;
  } finally {
    nl.close();
  }
}
