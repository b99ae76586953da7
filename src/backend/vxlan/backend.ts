// The vxlan backend (docs/COMPATIBILITY.md, "vxlan backend"): flannel.<VNI> device, lease with {VNI, VtepMAC}, then the
// peer loop.
import { logger } from '../../log/log.ts';
import type { VxlanSpec } from '../../netlink/index.ts';
import type { IPv4Net } from '../../ip/ipv4.ts';
import type { IPv6Net } from '../../ip/ipv6.ts';
import {
  leaseAttrs,
  leaseNetworks,
  requireFamilies,
  type Backend,
  type BackendContext,
  type BackendFactory,
  type Network,
} from '../backend.ts';
import { configureDevice, configureDeviceV6, ensureVxlanDevice } from './device.ts';
import { VxlanNetwork, type VxlanFamilyInit, type VxlanTuning } from './network.ts';
import {
  VXLAN_OVERHEAD,
  VXLAN6_OVERHEAD,
  deviceName,
  deviceNameV6,
  parsePeerBackendData,
  parseVxlanOptions,
  vxlanBackendData,
} from './options.ts';

const log = logger('vxlan');

export class VxlanBackend implements Backend {
  constructor(
    private readonly ctx: BackendContext,
    private readonly tuning: VxlanTuning = {},
  ) {}

  async registerNetwork(signal: AbortSignal): Promise<Network> {
    const { ctx } = this;
    const { network, ipv6Network } = ctx.config;
    const extV6 = ctx.extIface.extAddrV6;
    requireFamilies(ctx, 'vxlan');
    const options = parseVxlanOptions(ctx.config.backend, ctx.extIface.mtu);
    log.info(
      `VXLAN config: VNI=${options.vni} Port=${options.port} GBP=${options.gbp} Learning=${options.learning} DirectRouting=${options.directRouting}`,
    );
    const base = {
      id: options.vni,
      link: ctx.extIface.index,
      port: options.port,
      learning: options.learning,
      gbp: options.gbp,
    };
    // Kube mode remembers the last published VtepMACs: a recreated device keeps the MAC peers already know.
    const device = async <N extends IPv4Net | IPv6Net>(
      net: N,
      spec: VxlanSpec,
      previous: unknown,
    ): Promise<Omit<VxlanFamilyInit<N>, 'subnetLen'>> => {
      const previousMac = parsePeerBackendData(previous)?.vtepMac;
      if (previousMac) spec.mac = previousMac;
      const link = await ensureVxlanDevice(ctx.netlink, spec);
      log.info(`Interface ${spec.name} mac address set to: ${link.mac}`);
      return { network: net, device: link, spec: { ...spec, mac: link.mac! } };
    };
    // flannel.<VNI> unless the network is IPv6-only.
    const v4 = network
      ? await device(
          network,
          { ...base, name: deviceName(options.vni), local: ctx.extIface.extAddr, mtu: options.mtu - VXLAN_OVERHEAD },
          ctx.subnetManager.previousBackendData?.(),
        )
      : undefined;
    // Dual stack and IPv6-only: flannel-v6.<VNI> with the same options, local = the public IPv6. The kernel caps an
    // IPv6-underlay vxlan at underlay MTU − 70 (40-byte IPv6 header instead of 20; docs/COMPATIBILITY.md, "MTUs and ports").
    const v6 =
      ipv6Network && extV6
        ? await device(
            ipv6Network,
            { ...base, name: deviceNameV6(options.vni), local: extV6, mtu: options.mtu - VXLAN6_OVERHEAD },
            ctx.subnetManager.previousBackendV6Data?.(),
          )
        : undefined;
    // As upstream: an IPv6-only lease has no BackendData and PublicIP 0.0.0.0.
    const attrs = leaseAttrs(ctx, 'vxlan');
    if (v4) attrs.backendData = vxlanBackendData(options.vni, v4.device.mac!);
    if (v6) attrs.backendV6Data = vxlanBackendData(options.vni, v6.device.mac!);
    const lease = await ctx.subnetManager.acquireLease(attrs, signal);
    const nets = leaseNetworks(ctx.config, lease);
    if (v4 && nets.v4) await configureDevice(ctx.netlink, v4.device.index, nets.v4.subnet, v4.network);
    if (v6 && nets.v6) await configureDeviceV6(ctx.netlink, v6.device.index, nets.v6.subnet);
    return new VxlanNetwork({
      nl: ctx.netlink,
      subnetManager: ctx.subnetManager,
      lease,
      options,
      extIface: ctx.extIface,
      tuning: this.tuning,
      ...(v4 && nets.v4 && { v4: { ...v4, subnetLen: nets.v4.subnetLen } }),
      ...(v6 && nets.v6 && { v6: { ...v6, subnetLen: nets.v6.subnetLen } }),
    });
  }
}

export const vxlanBackend: BackendFactory = (ctx) => new VxlanBackend(ctx);
