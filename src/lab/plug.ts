// One way to wire namespaces together, for the lab and the tests: a veth whose one end becomes an interface of a
// namespace and whose other end is a port of a bridge in a switch namespace.
import { sh } from './exec.ts';

export interface Plug {
  /** The namespace that gets the interface, and the interface's name there (eth0). */
  ns: string;
  ifname: string;
  /** The switch namespace and its bridge. */
  sw: string;
  bridge: string;
  /** `ip addr add` arguments before `dev`, one list per address: ['10.0.0.1/24'], ['fd00::1/64', 'nodad']. */
  addresses: string[][];
  /** Root-namespace names for the two ends while they are made (≤ 15 characters; unique on the host). */
  names: [string, string];
}

/** Makes the veth, moves its ends, names and addresses the inner one, and brings both up. */
export function plugIntoBridge(p: Plug): void {
  const [inner, outer] = p.names;
  sh('ip', ['link', 'add', inner, 'type', 'veth', 'peer', 'name', outer]);
  sh('ip', ['link', 'set', inner, 'netns', p.ns]);
  sh('ip', ['link', 'set', outer, 'netns', p.sw]);
  sh('ip', ['-n', p.ns, 'link', 'set', inner, 'name', p.ifname]);
  for (const a of p.addresses) sh('ip', ['-n', p.ns, 'addr', 'add', a[0]!, 'dev', p.ifname, ...a.slice(1)]);
  sh('ip', ['-n', p.ns, 'link', 'set', p.ifname, 'up']);
  sh('ip', ['-n', p.sw, 'link', 'set', outer, 'master', p.bridge]);
  sh('ip', ['-n', p.sw, 'link', 'set', outer, 'up']);
}
