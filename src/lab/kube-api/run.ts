// Runs the fake API server with the lab's nodes until killed (dist/lab-kube-api.cjs, from main.ts).
import { writeFileSync } from 'node:fs';
import { KubeApiServer } from './server.ts';

export interface KubeApiServerArgs {
  /** host:port */
  listen: string;
  token: string;
  /** name=podCIDR[+podCIDR] entries (two CIDRs: a dual-stack node) */
  nodes: string[];
  /** Written once the server listens, so that the lab knows it can start flanneld. */
  readyFile?: string;
}

function parseNodeSpecs(specs: string[]): Array<{ name: string; podCIDRs: string[] }> {
  return specs.map((s) => {
    const m = /^([a-z0-9.-]+)=(\S+\/\d+(?:\+\S+\/\d+)?)$/.exec(s);
    if (!m)
      throw new Error(`--nodes entry "${s}" must look like h1=10.244.1.0/24 or h1=10.244.1.0/24+fd44:244:0:1::/64`);
    return { name: m[1]!, podCIDRs: m[2]!.split('+') };
  });
}

export async function runKubeApiServer(a: KubeApiServerArgs): Promise<void> {
  const m = /^(.+):(\d+)$/.exec(a.listen);
  if (!m) throw new Error(`--listen "${a.listen}" must be host:port, e.g. 192.168.100.2:6443`);
  const server = new KubeApiServer({ token: a.token, bookmarkIntervalMs: 30_000 });
  for (const n of parseNodeSpecs(a.nodes)) server.addNode(n);
  const url = await server.listen(Number(m[2]), m[1]!);
  process.stdout.write(`fake Kubernetes API server (plain HTTP) at ${url} with ${a.nodes.length} nodes\n`);
  if (a.readyFile) writeFileSync(a.readyFile, `${url}\n`);
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
  });
  await server.close();
}
