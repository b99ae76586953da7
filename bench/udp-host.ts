// One host's udp backend for the benchmark, run inside a host namespace (`ip netns exec`): a fixed own lease and
// fixed peers instead of etcd. Usage: udp-host.ts <ext iface> <ext ip> <own subnet> <peer subnet>=<peer ip> ...
import { IPv4Net } from '../src/ip/ipv4.ts';
import { openNetlink } from '../src/netlink/index.ts';
import { UdpBackend } from '../src/backend/udp/backend.ts';
import type { Lease, LeaseAttrs, LeaseEvent, SubnetManager } from '../src/subnet/lease.ts';
import type { NetworkConfig } from '../src/config/network-config.ts';

const [ifname, extIp, own, ...peerArgs] = process.argv.slice(2);
if (!ifname || !extIp || !own) {
  console.error('usage: udp-host.ts <ext iface> <ext ip> <own subnet> <peer subnet>=<peer ip> ...');
  process.exit(2);
}
const config: NetworkConfig = {
  enableIPv4: true,
  enableIPv6: false,
  enableNFTables: false,
  network: IPv4Net.parse('10.244.0.0/16'),
  subnetLen: 24,
  backendType: 'udp',
  backend: { Type: 'udp' },
};
const lease = (subnet: string, publicIP: string): Lease => ({
  subnet: IPv4Net.parse(subnet),
  attrs: { publicIP, publicIPv6: null, backendType: '' },
  expiration: null,
});

/** Hands out the fixed lease and announces the fixed peers once. */
const manager: SubnetManager = {
  name: 'static (benchmark)',
  getNetworkConfig: async () => config,
  acquireLease: async (attrs: LeaseAttrs) => ({ ...lease(own, extIp), attrs }),
  async *watchLeases(_own: Lease, signal: AbortSignal): AsyncIterable<LeaseEvent[]> {
    yield peerArgs.map((p) => ({ type: 'added' as const, lease: lease(p.split('=')[0]!, p.split('=')[1]!) }));
    await new Promise((r) => signal.addEventListener('abort', r));
  },
  completeLease: async () => 'aborted',
  close: async () => {},
};

const nl = await openNetlink();
const link = await nl.linkByName(ifname);
if (!link) throw new Error(`no interface ${ifname}`);
const ctl = new AbortController();
const network = await new UdpBackend({
  subnetManager: manager,
  extIface: { name: ifname, index: link.index, mtu: link.mtu, ifaceAddr: extIp, extAddr: extIp },
  config,
  netlink: nl,
}).registerNetwork(ctl.signal);
process.on('SIGTERM', () => ctl.abort());
console.log('ready');
await network.run(ctl.signal);
nl.close();
