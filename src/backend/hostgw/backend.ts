// The host-gw backend (docs/COMPATIBILITY.md, "host-gw backend"): no device, no options; each peer's subnet is routed
// via its PublicIP.
import {
  leaseAttrs,
  leaseNetworks,
  requireFamilies,
  type Backend,
  type BackendContext,
  type BackendFactory,
} from '../backend.ts';
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
    const ext = ctx.extIface;
    requireFamilies(ctx, HOSTGW_TYPE);
    if (network && ext.extAddr !== ext.ifaceAddr) throw new Error(NAT_REFUSAL);
    if (ipv6Network && ext.ifaceAddrV6 && ext.extAddrV6 !== ext.ifaceAddrV6) throw new Error(NAT_REFUSAL);
    // No BackendData: peers need nothing but our PublicIP(v6) (the kube annotation is `null`).
    const lease = await ctx.subnetManager.acquireLease(leaseAttrs(ctx, HOSTGW_TYPE), signal);
    const { v4, v6 } = leaseNetworks(ctx.config, lease);
    return new HostGwNetwork({
      nl: ctx.netlink,
      subnetManager: ctx.subnetManager,
      lease,
      extIface: ext,
      ...(v4 && { v4 }),
      ...(v6 && { v6 }),
      tuning: this.tuning,
    });
  }
}

export const hostGwBackend: BackendFactory = (ctx) => new HostGwBackend(ctx);
