// The host-gw backend (spec §5.2): no device, no options; each peer's subnet is routed via its PublicIP.
import { leaseName } from '../../subnet/lease.ts';
import type { Backend, BackendContext, BackendFactory } from '../backend.ts';
import { HostGwNetwork, type HostGwTuning } from './network.ts';
import { HOSTGW_TYPE } from './plan.ts';


/** Upstream's exact refusal: peers would route to an address that is not on this host's interface. */
export const NAT_REFUSAL =
  "your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is not supported by host-gw backend";

export class HostGwBackend implements Backend {
  constructor(
    private readonly ctx: BackendContext,
    private readonly tuning: HostGwTuning = {},
  ) {}

  async registerNetwork(signal: AbortSignal): Promise<HostGwNetwork> {
    const { ctx } = this;
    const { network, ipv6Network } = ctx.config;
    if (!network && !ipv6Network) throw new Error('the host-gw backend needs a Network and/or an IPv6Network in the network config');
    if (network && ctx.extIface.extAddr !== ctx.extIface.ifaceAddr) throw new Error(NAT_REFUSAL);
    const extV6 = ctx.extIface.extAddrV6;
    if (ipv6Network && !extV6) {
      throw new Error('the network config has an IPv6Network but the external interface has no IPv6 address; give it one or set --public-ipv6');
    }
    if (ipv6Network && ctx.extIface.ifaceAddrV6 && extV6 !== ctx.extIface.ifaceAddrV6) throw new Error(NAT_REFUSAL);
    // No BackendData: peers need nothing but our PublicIP(v6) (the kube annotation is `null`). IPv6-only: 0.0.0.0.
    const publicIP = network ? ctx.extIface.extAddr : '0.0.0.0';
    const publicIPv6 = ipv6Network ? extV6! : null;
    const lease = await ctx.subnetManager.acquireLease({ publicIP, publicIPv6, backendType: HOSTGW_TYPE }, signal);
    if (network && !lease.subnet) throw new Error(`the lease ${leaseName(lease)} has no IPv4 subnet although the network config has a Network`);
    if (ipv6Network && !lease.ipv6Subnet) {
      throw new Error(`the lease ${leaseName(lease)} has no IPv6 subnet although the network config has an IPv6Network`);
    }
    return new HostGwNetwork({
      nl: ctx.netlink,
      subnetManager: ctx.subnetManager,
      lease,
      extIface: ctx.extIface,
      ...(network && { v4: { network, subnetLen: ctx.config.subnetLen || lease.subnet!.prefix } }),
      ...(ipv6Network && { v6: { network: ipv6Network, subnetLen: ctx.config.ipv6SubnetLen || lease.ipv6Subnet!.prefix } }),
      tuning: this.tuning,
    });
  }
}

export const hostGwBackend: BackendFactory = (ctx) => new HostGwBackend(ctx);
