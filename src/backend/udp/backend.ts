// The udp backend (docs/COMPATIBILITY.md, "udp backend"): flannel0 TUN, a UDP socket on <interface IP>:<Port>, a lease
// with only PublicIP, then userspace forwarding between the two.
import { closeSync } from 'node:fs';
import { logger } from '../../log/log.ts';
import { leaseName } from '../../subnet/lease.ts';
import type { Backend, BackendContext, BackendFactory, Network } from '../backend.ts';
import { configureTun, openTun, openUdpSocket } from './device.ts';
import { UdpNetwork } from './network.ts';
import { parseUdpOptions, udpDeviceMtu } from './options.ts';

const log = logger('udp');

export class UdpBackend implements Backend {
  constructor(private readonly ctx: BackendContext) {}

  async registerNetwork(signal: AbortSignal): Promise<Network> {
    const { ctx } = this;
    const network = ctx.config.network;
    // Like real flannel's udp backend: IPv4 only (its packets are IPv4 in IPv4/UDP).
    if (!network) {
      throw new Error(
        'the udp backend carries IPv4 only: set EnableIPv4 with a Network, or use the vxlan or host-gw backend for an IPv6-only network',
      );
    }
    const { port } = parseUdpOptions(ctx.config.backend);
    const mtu = udpDeviceMtu(ctx.extIface.mtu);
    const fds: number[] = [];
    try {
      const udp = openUdpSocket(ctx.netlink, ctx.extIface.ifaceAddr, port);
      fds.push(udp);
      const tun = openTun(ctx.netlink);
      fds.push(tun.fd);
      log.info(`UDP config: Port=${port}; ${tun.name} MTU ${mtu}, listening on ${ctx.extIface.ifaceAddr}:${port}`);
      // No BackendType and no BackendData: what real flannel's udp backend publishes.
      const lease = await ctx.subnetManager.acquireLease(
        { publicIP: ctx.extIface.extAddr, publicIPv6: null, backendType: '' },
        signal,
      );
      if (!lease.subnet) throw new Error(`the lease ${leaseName(lease)} has no IPv4 subnet; the udp backend needs one`);
      await configureTun(ctx.netlink, tun.name, lease.subnet, network, mtu);
      return new UdpNetwork({ subnetManager: ctx.subnetManager, lease, network, mtu, port, fds: { tun: tun.fd, udp } });
    } catch (e) {
      for (const fd of fds) closeSync(fd);
      throw e;
    }
  }
}

export const udpBackend: BackendFactory = (ctx) => new UdpBackend(ctx);
