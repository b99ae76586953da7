// The host-gw backend (spec §5.2): no device, no options; each peer's subnet is routed via its PublicIP.
import { logger } from '../../log/log.ts';
import type { Backend, BackendContext, BackendFactory } from '../backend.ts';
import { HostGwNetwork, type HostGwTuning } from './network.ts';
import { HOSTGW_TYPE } from './plan.ts';

const log = logger('hostgw');

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
    if (ctx.extIface.extAddr !== ctx.extIface.ifaceAddr) throw new Error(NAT_REFUSAL);
    const network = ctx.config.network;
    if (!network) throw new Error('the host-gw backend needs an IPv4 Network in the network config');
    if (ctx.config.enableIPv6) log.warn('host-gw: IPv6 routes are not implemented yet; only IPv4 peers are routed');
    // No BackendData: peers need nothing but our PublicIP (the kube annotation is `null`).
    const lease = await ctx.subnetManager.acquireLease({ publicIP: ctx.extIface.extAddr, publicIPv6: null, backendType: HOSTGW_TYPE }, signal);
    return new HostGwNetwork({
      nl: ctx.netlink,
      subnetManager: ctx.subnetManager,
      lease,
      extIface: ctx.extIface,
      network,
      subnetLen: ctx.config.subnetLen,
      tuning: this.tuning,
    });
  }
}

export const hostGwBackend: BackendFactory = (ctx) => new HostGwBackend(ctx);
