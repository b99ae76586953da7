// The vxlan backend (spec §5.1): flannel.<VNI> device, lease with {VNI, VtepMAC}, then the peer loop.
import { logger } from '../../log/log.ts';
import type { VxlanSpec } from '../../netlink/index.ts';
import type { LeaseAttrs } from '../../subnet/lease.ts';
import type { Backend, BackendContext, BackendFactory, Network } from '../backend.ts';
import { configureDevice, configureDeviceV6, ensureVxlanDevice } from './device.ts';
import { VxlanNetwork, type VxlanTuning, type VxlanV6Init } from './network.ts';
import { VXLAN_OVERHEAD, VXLAN6_OVERHEAD, deviceName, deviceNameV6, parsePeerBackendData, parseVxlanOptions, vxlanBackendData } from './options.ts';

const log = logger('vxlan');

export class VxlanBackend implements Backend {
  constructor(
    private readonly ctx: BackendContext,
    private readonly tuning: VxlanTuning = {},
  ) {}

  async registerNetwork(signal: AbortSignal): Promise<Network> {
    const { ctx } = this;
    const network = ctx.config.network;
    if (!network) throw new Error('the vxlan backend needs an IPv4 Network in the network config');
    const options = parseVxlanOptions(ctx.config.backend, ctx.extIface.mtu);
    log.info(
      `VXLAN config: VNI=${options.vni} Port=${options.port} GBP=${options.gbp} Learning=${options.learning} DirectRouting=${options.directRouting}`,
    );
    const spec: VxlanSpec = {
      name: deviceName(options.vni),
      id: options.vni,
      local: ctx.extIface.extAddr,
      link: ctx.extIface.index,
      port: options.port,
      learning: options.learning,
      gbp: options.gbp,
      mtu: options.mtu - VXLAN_OVERHEAD,
    };
    // Kube mode remembers the last published VtepMAC: a recreated device keeps the MAC peers already know.
    const previousMac = parsePeerBackendData(ctx.subnetManager.previousBackendData?.())?.vtepMac;
    if (previousMac) spec.mac = previousMac;
    const device = await ensureVxlanDevice(ctx.netlink, spec);
    log.info(`Interface ${spec.name} mac address set to: ${device.mac}`);
    // Dual stack (§5.1): flannel-v6.<VNI> with the same options, local = the public IPv6.
    const ipv6Network = ctx.config.ipv6Network;
    const extV6 = ctx.extIface.extAddrV6;
    if (ipv6Network && !extV6) {
      throw new Error('the network config has an IPv6Network but the external interface has no IPv6 address; give it one or set --public-ipv6');
    }
    let v6: Omit<VxlanV6Init, 'subnetLen'> | undefined;
    if (ipv6Network && extV6) {
      // The kernel caps an IPv6-underlay vxlan at underlay MTU − 70 (40-byte IPv6 header instead of 20).
      const spec6: VxlanSpec = { ...spec, name: deviceNameV6(options.vni), local: extV6, mtu: options.mtu - VXLAN6_OVERHEAD };
      delete spec6.mac;
      const device6 = await ensureVxlanDevice(ctx.netlink, spec6);
      log.info(`Interface ${spec6.name} mac address set to: ${device6.mac}`);
      v6 = { network: ipv6Network, device: device6, spec: { ...spec6, mac: device6.mac! } };
    }
    const attrs: LeaseAttrs = {
      publicIP: ctx.extIface.extAddr,
      publicIPv6: v6 ? extV6! : null,
      backendType: 'vxlan',
      backendData: vxlanBackendData(options.vni, device.mac!),
    };
    if (v6) attrs.backendV6Data = vxlanBackendData(options.vni, v6.device.mac!);
    const lease = await ctx.subnetManager.acquireLease(attrs, signal);
    await configureDevice(ctx.netlink, device.index, lease.subnet, network);
    if (v6) {
      if (!lease.ipv6Subnet) throw new Error(`the lease ${lease.subnet} has no IPv6 subnet although the network config has an IPv6Network`);
      await configureDeviceV6(ctx.netlink, v6.device.index, lease.ipv6Subnet);
    }
    return new VxlanNetwork({
      nl: ctx.netlink,
      subnetManager: ctx.subnetManager,
      lease,
      options,
      extIface: ctx.extIface,
      network,
      // Kube mode does not default SubnetLen (spec §4.2): the pod CIDR's length is the subnet length.
      subnetLen: ctx.config.subnetLen || lease.subnet.prefix,
      device,
      spec: { ...spec, mac: device.mac! },
      tuning: this.tuning,
      ...(v6 && { v6: { ...v6, subnetLen: ctx.config.ipv6SubnetLen || lease.ipv6Subnet!.prefix } }),
    });
  }
}

export const vxlanBackend: BackendFactory = (ctx) => new VxlanBackend(ctx);
