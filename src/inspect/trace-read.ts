// Reads what trace walks: the node holding src (and, where it can be reached, the node holding dst) through
// readNode, plus the kernel's forwarding decision for the traced packet on each. Read-only.
import { errorMessage } from '../log/log.ts';
import { familyOf, openNetlink } from '../netlink/index.ts';
import { readNode, type ReadOptions } from './read.ts';
import type { NodeSnapshot } from './snapshot.ts';
import { overlayDevice } from './checks/rules.ts';
import { leaseHolding, type Lookup, type TraceInput, type TraceNode } from './trace.ts';

export interface TraceReadOptions {
  src: string;
  dst: string;
  /** The node trace runs on (it must hold src), and its name in the output. */
  local: ReadOptions & { name: string };
  /** Where the node with this public IP can be read (a lab host's namespace); undefined: it cannot. */
  remote?: (publicIP: string) => (ReadOptions & { name: string }) | undefined;
}

/** `ip route get <dst> from <src> iif <dev>` in the node's namespace. */
async function forwardLookup(
  netns: string | undefined,
  s: NodeSnapshot,
  dst: string,
  src: string,
  iif: string | undefined,
): Promise<Lookup> {
  const dev = s.links.find((l) => l.name === iif);
  if (!dev) return { error: `no device ${iif ?? '(none)'} to arrive on` };
  const nl = await openNetlink({ netns });
  try {
    return await nl.routeGet(dst, { from: src, iif: dev.index });
  } catch (e) {
    return { error: errorMessage(e) };
  } finally {
    nl.close();
  }
}

export async function readTrace(o: TraceReadOptions): Promise<TraceInput> {
  const family = familyOf(o.src);
  const snapshot = await readNode(o.local);
  const local: TraceNode = {
    name: o.local.name,
    snapshot,
    forward: await forwardLookup(o.local.netns, snapshot, o.dst, o.src, 'cni0'),
  };
  const input: TraceInput = { src: o.src, dst: o.dst, local };
  const holder = Array.isArray(snapshot.leases) ? leaseHolding(snapshot.leases, o.dst) : undefined;
  const publicIP = holder && (family === 4 ? holder.attrs.publicIP : holder.attrs.publicIPv6);
  const far = publicIP ? o.remote?.(publicIP) : undefined;
  if (far && far.name !== o.local.name) {
    // One cluster, one network config: the far node is read without listing the leases again.
    const cluster = { leases: snapshot.leases, backend: snapshot.backend, nftables: snapshot.nftables };
    const rs = await readNode({ ...far, known: cluster });
    input.remote = {
      name: far.name,
      snapshot: rs,
      forward: await forwardLookup(far.netns, rs, o.dst, o.src, overlayDevice(rs, family)),
    };
  }
  return input;
}
