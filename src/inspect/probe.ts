// doctor --probe: a few ICMP echoes to each peer's public IP (the underlay) and to its flannel device's address (the
// overlay), only to addresses the leases name, each bounded in count and time.
import { formatIPv4 } from '../ip/ipv4.ts';
import { formatIPv6 } from '../ip/ipv6.ts';
import { leaseName, type Lease } from '../subnet/lease.ts';
import type { ExecFn } from '../util/exec.ts';
import { ownLease } from './checks/subnet.ts';
import type { NodeSnapshot, Probe } from './snapshot.ts';

const ECHOES = 3;
/** Peers probed at most: a probe is for a person looking at one node, not a cluster-wide sweep. */
export const MAX_PROBED_PEERS = 32;
/** Backends whose pod traffic crosses a flannel device with the lease's network address (host-gw has none). */
const OVERLAY_BACKENDS = new Set(['vxlan', 'udp']);

interface Target {
  lease: string;
  kind: Probe['kind'];
  target: string;
}

/** What --probe pings: per peer and family, the public IP and, for overlay backends, the device address. */
export function probeTargets(s: NodeSnapshot): Target[] {
  if (!Array.isArray(s.leases)) return [];
  const own = ownLease(s);
  const overlay = OVERLAY_BACKENDS.has(s.backend?.type ?? '');
  const out: Target[] = [];
  const peers = s.leases.filter((l) => l !== own).slice(0, MAX_PROBED_PEERS);
  for (const l of peers) {
    const name = leaseName(l);
    for (const [pub, dev] of familiesOf(l)) {
      out.push({ lease: name, kind: 'underlay', target: pub });
      if (overlay) out.push({ lease: name, kind: 'overlay', target: dev });
    }
  }
  return out;
}

/** [public IP, flannel device address] for each family the lease carries. */
function familiesOf(l: Lease): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (l.subnet && l.attrs.publicIP !== '0.0.0.0') out.push([l.attrs.publicIP, formatIPv4(l.subnet.ip)]);
  if (l.ipv6Subnet && l.attrs.publicIPv6) out.push([l.attrs.publicIPv6, formatIPv6(l.ipv6Subnet.ip)]);
  return out;
}

/** "3 packets transmitted, 2 received" → 3 and 2; undefined when ping printed no summary. */
export function pingCounts(pingOutput: string): { sent: number; received: number } | undefined {
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(pingOutput);
  return m ? { sent: Number(m[1]), received: Number(m[2]) } : undefined;
}

export async function probePeers(s: NodeSnapshot, exec: ExecFn): Promise<Probe[]> {
  return Promise.all(
    probeTargets(s).map(async (t) => {
      // -W 1: one second per echo at most; -w bounds the whole run.
      const r = await exec('ping', ['-n', '-q', '-c', String(ECHOES), '-i', '0.2', '-W', '1', '-w', '3', t.target]);
      return { ...t, sent: ECHOES, received: pingCounts(r.stdout)?.received ?? 0 };
    }),
  );
}
