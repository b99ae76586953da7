// Lease events as one line each, for the subnet manager and lease watcher tests: `added <field> <field> …` with the
// fields a test cares about and `-` for an absent one (a v4 subnet on an IPv6-only network, a v4-only peer's v6 MAC).
import type { Lease } from '../../src/subnet/lease.ts';

type Field = 'subnet' | 'ipv6Subnet' | 'publicIP' | 'publicIPv6' | 'vtepMacV6';

function field(lease: Lease, f: Field): string {
  switch (f) {
    case 'subnet':
      return lease.subnet?.toString() ?? '-';
    case 'ipv6Subnet':
      return lease.ipv6Subnet?.toString() ?? '-';
    case 'publicIP':
      return lease.attrs.publicIP;
    case 'publicIPv6':
      return lease.attrs.publicIPv6 ?? '-';
    case 'vtepMacV6':
      return (lease.attrs.backendV6Data as { VtepMAC?: string } | undefined)?.VtepMAC ?? '-';
  }
}

/** `fields` default to the v4 view: subnet and PublicIP. Sorted when the order of a batch is not what is tested. */
export function leaseLines(
  evs: ReadonlyArray<{ type: string; lease: Lease }>,
  fields: Field[] = ['subnet', 'publicIP'],
  o: { sorted?: boolean } = {},
): string[] {
  const lines = evs.map((e) => [e.type, ...fields.map((f) => field(e.lease, f))].join(' '));
  return o.sorted ? lines.sort() : lines;
}
