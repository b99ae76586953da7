// Reads a NodeSnapshot: the kernel through our netlink facade, /proc/sys, subnet.env, and the cluster's leases and
// network config from etcd. Read-only: nothing here writes to the kernel, the files or etcd.
import { readFileSync } from 'node:fs';
import { parseVxlanOptions } from '../backend/vxlan/options.ts';
import { errorMessage } from '../log/log.ts';
import { RT_TABLE_MAIN, openNetlink } from '../netlink/index.ts';
import { createEtcdClient, type EtcdClientOptions } from '../subnet/etcd/client.ts';
import { EtcdRegistry } from '../subnet/etcd/registry.ts';
import { parseSubnetEnv } from '../subnet/subnet-env.ts';
import type { NodeSnapshot } from './snapshot.ts';

/** The kernel's default vxlan port, which a Port of 0 means. */
const VXLAN_DEFAULT_PORT = 8472;

const SYSCTLS = ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding', 'net.bridge.bridge-nf-call-iptables'];

export interface ReadOptions {
  subnetFile: string;
  /** flanneld's health server (http://127.0.0.1:8081), when it runs one. */
  healthUrl?: string;
  etcd: EtcdClientOptions & { prefix: string };
  publicIP?: string;
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

/** The cluster's half: leases, and the backend settings of the network config. */
async function readCluster(o: ReadOptions['etcd']): Promise<Pick<NodeSnapshot, 'leases' | 'backend' | 'nftables'>> {
  const client = createEtcdClient({ ...o, callTimeoutMs: o.callTimeoutMs ?? 3000 });
  const registry = new EtcdRegistry(client, o.prefix);
  try {
    const config = await registry.readConfig();
    const leases = (await registry.listLeases()).leases;
    let backend: NodeSnapshot['backend'];
    if (config.backendType === 'vxlan') {
      const v = parseVxlanOptions(config.backend, 1500);
      backend = { type: 'vxlan', vni: v.vni, port: v.port || VXLAN_DEFAULT_PORT, directRouting: v.directRouting };
    } else {
      backend = { type: config.backendType, vni: 0, port: 0, directRouting: false };
    }
    return { leases, backend, nftables: config.enableNFTables };
  } catch (e) {
    return { leases: { error: errorMessage(e) } };
  } finally {
    client.close();
  }
}

export async function readNode(o: ReadOptions): Promise<NodeSnapshot> {
  const cluster = readCluster(o.etcd);
  const flanneld = readFlanneld(o.healthUrl);
  const nl = await openNetlink();
  try {
    const links = await nl.links();
    const addresses = [...(await nl.addresses(4)), ...(await nl.addresses(6))];
    const routes = [...(await nl.routes(4, { table: RT_TABLE_MAIN })), ...(await nl.routes(6, { table: RT_TABLE_MAIN }))];
    const neighbours = [...(await nl.neighbours(undefined, 4)), ...(await nl.neighbours(undefined, 6))];
    const fdb = (await Promise.all(links.filter((l) => l.kind === 'vxlan').map((l) => nl.fdb(l.index)))).flat();
    const sysctls = Object.fromEntries(SYSCTLS.map((k) => [k, readSysctl(k)]));
    const snapshot: NodeSnapshot = { subnetEnv: readSubnetEnv(o.subnetFile), publicIP: o.publicIP, links, addresses, routes, neighbours, fdb, sysctls, ...(await cluster) };
    const health = await flanneld;
    if (health) snapshot.flanneld = health;
    return snapshot;
  } finally {
    nl.close();
  }
}
