// Scale without the kernel: one flanneld's user-space work for a 50,000-node cluster, run through the real code
// paths (etcd lease decoding, the lease watcher, the vxlan plan and its kernel-index check, /peers' status book;
// kube mode: Node → lease and the change filter), measured as events per second it can absorb and the memory its
// state takes, beside the event rate such a cluster produces (leases renewed every 23 h, nodes joining and
// leaving). No root needed: `node --import tsx bench/scale-model.ts [nodes]`; docs/scale.md reads the figures.
import { IPv4Net } from '../src/ip/ipv4.ts';
import { decodeLeaseValue, encodeLeaseValue, formatSubnetKey, parseSubnetKey } from '../src/subnet/lease-json.ts';
import { makeLease, type Lease, type LeaseEvent } from '../src/subnet/lease.ts';
import { LeaseWatcher } from '../src/subnet/lease-watcher.ts';
import { entriesOf, indexKernel, missingIn, planPeer, type PeerPlan } from '../src/backend/vxlan/plan.ts';
import { PeerStatusBook } from '../src/backend/peer-status.ts';
import { annotationNames } from '../src/subnet/kube/annotations.ts';
import { nodeChangeEvents } from '../src/subnet/kube/node-lease.ts';
import type { KubeNode } from '../src/subnet/kube/node.ts';

const NODES = Number(process.argv[2] ?? 50_000);
/** Real flannel renews a lease an hour before its 24 h TTL runs out. */
const RENEW_EVERY_S = 23 * 3600;
/** Churn assumed for the event rate: 1 % of the nodes join or leave per hour (autoscaling, upgrades). */
const CHURN_PER_HOUR = 0.01;

function subnetOf(i: number): IPv4Net {
  return IPv4Net.parse(`${10 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24`);
}

function value(i: number, macByte = 0): string {
  const mac = `0e:${macByte.toString(16).padStart(2, '0')}:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  return encodeLeaseValue({
    publicIP: `198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
    publicIPv6: null,
    backendType: 'vxlan',
    backendData: { VNI: 1, VtepMAC: mac },
  });
}

const heapMB = () => process.memoryUsage().heapUsed / 2 ** 20;
function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function rate(what: string, n: number, f: () => void): number {
  const t0 = performance.now();
  f();
  const perS = n / ((performance.now() - t0) / 1000);
  console.log(`  ${what}: ${Math.round(perS).toLocaleString('en')} events/s`);
  return perS;
}

function etcdMode(): number {
  const keys = Array.from(
    { length: NODES },
    (_, i) => `/coreos.com/network/subnets/${formatSubnetKey(subnetOf(i + 1))}`,
  );
  const values = Array.from({ length: NODES }, (_, i) => value(i + 1));
  gc();
  const before = heapMB();
  const decode = (i: number, v = values[i]!): Lease =>
    makeLease(parseSubnetKey(keys[i]!.split('/').pop()!)!, decodeLeaseValue(v, keys[i]), null);
  const leases = keys.map((_, i) => decode(i));
  const watcher = new LeaseWatcher({ subnet: subnetOf(0) });
  watcher.reset(leases);
  const plans = new Map<string, PeerPlan>();
  const book = new PeerStatusBook();
  for (const l of leases) {
    const p = planPeer(l, false);
    if (p?.ok) {
      plans.set(l.subnet!.toString(), p.plan);
      book.set(l.subnet!.toString(), { subnet: l.subnet!.toString(), publicIP: l.attrs.publicIP, state: 'programmed' });
    }
  }
  gc();
  const stateMB = heapMB() - before;
  console.log(
    `etcd mode, ${NODES.toLocaleString('en')} peers: flanneld's lease, plan and /peers state ${stateMB.toFixed(0)} MB of heap (${((stateMB * 2 ** 20) / NODES).toFixed(0)} bytes a peer)`,
  );
  // One event = a watched key decoded, folded into the watcher, planned, status recorded (the kernel's part is the
  // three netlink requests, measured by bench/converge.ts).
  const events = 20_000;
  const perS = rate('renewal or VtepMAC change (decode, watcher, plan, status)', events, () => {
    for (let k = 0; k < events; k++) {
      const i = k % NODES;
      const l = decode(i, value(i + 1, k & 1));
      const ev: LeaseEvent = { type: 'added', lease: l };
      for (const e of watcher.update([ev])) {
        if (e.type !== 'added') continue;
        const p = planPeer(e.lease, false);
        if (p?.ok)
          book.set(e.lease.subnet!.toString(), {
            subnet: e.lease.subnet!.toString(),
            publicIP: e.lease.attrs.publicIP,
            state: 'programmed',
          });
      }
    }
  });
  // The 10 s repair check: every peer's entries against the kernel's, through the index built once.
  const kernel = { routes: [] as never[], neighbours: [] as never[], fdb: [] as never[] };
  const t0 = performance.now();
  const index = indexKernel(kernel, 3);
  let missing = 0;
  for (const p of plans.values()) missing += missingIn(p, index).length;
  console.log(
    `  repair check over ${plans.size.toLocaleString('en')} peers: ${(performance.now() - t0).toFixed(0)} ms (${missing.toLocaleString('en')} entries found missing in an empty kernel, ${entriesOf(plans.values().next().value!).length} per peer)`,
  );
  const t1 = performance.now();
  book.list();
  console.log(`  GET /peers list: ${(performance.now() - t1).toFixed(0)} ms`);
  return perS;
}

function kubeMode(): number {
  const names = annotationNames();
  const node = (i: number, macByte = 0): KubeNode => ({
    metadata: {
      name: `node-${i}`,
      annotations: {
        [names.subnetKubeManaged]: 'true',
        [names.backendType]: 'vxlan',
        [names.publicIP]: `198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
        [names.backendData]: JSON.stringify({
          VNI: 1,
          VtepMAC: `0e:${macByte.toString(16).padStart(2, '0')}:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
        }),
      },
    },
    spec: { podCIDR: subnetOf(i).toString(), podCIDRs: [subnetOf(i).toString()] },
  });
  gc();
  const before = heapMB();
  const cache = new Map<string, KubeNode>();
  for (let i = 1; i <= NODES; i++) cache.set(`node-${i}`, node(i));
  gc();
  const cacheMB = heapMB() - before;
  console.log(
    `kube mode, ${NODES.toLocaleString('en')} Nodes: the informer's cache (the fields flannel keeps) ${cacheMB.toFixed(0)} MB of heap`,
  );
  const events = 50_000;
  // Most Node updates are status heartbeats that change no flannel annotation: filtered out, no lease event.
  let leaseEvents = 0;
  const perS = rate('Node update (status heartbeat or annotation change) through the change filter', events, () => {
    for (let k = 0; k < events; k++) {
      const i = (k % NODES) + 1;
      const next = node(i, k % 10 === 0 ? 1 : 0);
      leaseEvents += nodeChangeEvents(cache.get(`node-${i}`), next, names).length;
      cache.set(`node-${i}`, next);
    }
  });
  console.log(`  (${leaseEvents.toLocaleString('en')} of them changed a lease)`);
  return perS;
}

function main(): void {
  const renewals = NODES / RENEW_EVERY_S;
  const churn = (NODES * CHURN_PER_HOUR) / 3600;
  console.log(
    `cluster of ${NODES.toLocaleString('en')} nodes: ${renewals.toFixed(2)} renewals/s + ${churn.toFixed(2)} joins or leaves/s = ${(renewals + churn).toFixed(2)} lease events/s at every flanneld`,
  );
  console.log(
    `  every flanneld watches them: ${Math.round((renewals + churn) * NODES).toLocaleString('en')} watch notifications/s leave etcd (or the API server) in all`,
  );
  const etcd = etcdMode();
  const kube = kubeMode();
  console.log(
    `headroom: etcd mode absorbs ${Math.round(etcd / (renewals + churn)).toLocaleString('en')}× the cluster's lease event rate in user space; kube mode's filter ${Math.round(kube).toLocaleString('en')} Node updates/s`,
  );
}

main();
