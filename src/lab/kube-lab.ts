// The lab's Kubernetes mode: the fake API server in the lab's control-plane namespace instead of etcd, one Node per
// host with the pod CIDRs of labPodCIDRs, and per-host kubeconfig + net-conf.json for `flanneld --kube-subnet-mgr`.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distDir, nodeExecutable } from '../util/self.ts';
import { waitUntil } from '../util/time.ts';
import { spawnDetachedInNetns } from './exec.ts';
import { LAB_DIR, labNetworkConfig, labPodCIDRs, type LabHost, type LabTopology } from './topology.ts';

export const KUBE_API_PORT = 6443;
const tokenFile = join(LAB_DIR, 'kube-token');
const netConfFile = join(LAB_DIR, 'net-conf.json');

export function kubeApiUrl(t: LabTopology): string {
  return `http://${t.etcdIp}:${KUBE_API_PORT}`;
}

/** `--nodes` of the fake API server: h1=<cidr>[+<cidr>],… (a dual-stack node has two). */
export function labNodeSpecs(t: LabTopology): string {
  return t.hosts.map((h, i) => `${h.name}=${labPodCIDRs(t, i).join('+')}`).join(',');
}

export async function startKubeApiServer(t: LabTopology): Promise<void> {
  const token = randomBytes(16).toString('hex');
  writeFileSync(tokenFile, token, { mode: 0o600 });
  writeFileSync(netConfFile, labNetworkConfig(t));
  const ready = join(LAB_DIR, 'kube-api.ready');
  rmSync(ready, { force: true });
  const nodes = labNodeSpecs(t);
  spawnDetachedInNetns(
    t.etcdNs,
    [
      nodeExecutable(),
      join(distDir(), 'lab-kube-api.cjs'),
      '--listen',
      `${t.etcdIp}:${KUBE_API_PORT}`,
      '--token',
      token,
      '--nodes',
      nodes,
      '--ready-file',
      ready,
    ],
    join(LAB_DIR, 'kube-api.log'),
  );
  await waitUntil(
    () => existsSync(ready),
    20_000,
    `the fake API server did not start in 20 s; see ${LAB_DIR}/kube-api.log`,
    100,
  );
}

/** Writes the host's kubeconfig (bearer token; plain HTTP on the lab underlay) and returns flanneld's extra args. */
export function kubeFlanneldArgs(t: LabTopology, h: LabHost): string[] {
  const kubeconfig = join(h.dir, 'kubeconfig');
  const token = readFileSync(tokenFile, 'utf8').trim();
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'current-context: lab',
      'clusters:',
      '- name: lab',
      '  cluster:',
      `    server: ${kubeApiUrl(t)}`,
      '    insecure-skip-tls-verify: true',
      'users:',
      `- name: ${h.name}`,
      '  user:',
      `    token: ${token}`,
      'contexts:',
      '- name: lab',
      '  context:',
      '    cluster: lab',
      `    user: ${h.name}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return kubeDoctorArgs(h);
}

/** The kube-mode flags of a host's flanneld (its kubeconfig is written by kubeFlanneldArgs): doctor reads with them. */
export function kubeDoctorArgs(h: LabHost): string[] {
  return ['--kube-subnet-mgr', `--kubeconfig-file=${join(h.dir, 'kubeconfig')}`, `--net-config-path=${netConfFile}`];
}

/** `GET /api/v1/nodes` from inside a host namespace (the API server is only reachable on the underlay). */
export function kubeNodesSummary(t: LabTopology): string {
  const token = existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : '';
  return `API server ${kubeApiUrl(t)} (token in ${tokenFile}); nodes: curl -s -H "Authorization: Bearer ${token}" ${kubeApiUrl(t)}/api/v1/nodes`;
}
