// Runs inside a bench host's namespace (the bench's etcd listens on its loopback): writes the network config and N
// fake vxlan peer leases the way flanneld writes them (subnet key, lease JSON, one 24 h etcd lease), then takes
// commands on stdin — `add <i>`, `del <i>`, `mac <i>` — and answers each with the CLOCK_MONOTONIC time (ns) at which
// it sent the change to etcd, so the bench can time the kernel's catching up from the same clock.
import { createInterface } from 'node:readline';
import { createEtcdClient } from '../../src/subnet/etcd/client.ts';
import { PREFIX, peer } from './fake-peers.ts';

const [endpoint, countText] = process.argv.slice(2);
const N = Number(countText);

async function main(): Promise<void> {
  const client = createEtcdClient({ endpoints: [endpoint!], callTimeoutMs: 10_000 });
  await client.put(`${PREFIX}/config`, JSON.stringify({ Network: '10.0.0.0/8', Backend: { Type: 'vxlan' } }));
  const { id } = await client.leaseGrant(86400);
  const put = (i: number, macByte = 0) => {
    const p = peer(i, macByte);
    return client.put(p.key, p.value, id);
  };
  for (let i = 0; i < N; i += 256)
    await Promise.all(Array.from({ length: Math.min(256, N - i) }, (_, k) => put(i + k)));
  process.stdout.write('loaded\n');
  for await (const line of createInterface({ input: process.stdin })) {
    const [op, arg] = line.split(' ');
    const i = Number(arg);
    // Taken before the request: flanneld may see the change before etcd's answer to us is read.
    const sent = process.hrtime.bigint();
    if (op === 'add') await put(i);
    else if (op === 'mac') await put(i, 1);
    else if (op === 'del') await client.delete(peer(i).key);
    else break;
    process.stdout.write(`${sent}\n`);
  }
  client.close();
}

void main().catch((e) => {
  process.stderr.write(`etcd-loader: ${(e as Error).message}\n`);
  process.exit(1);
});
