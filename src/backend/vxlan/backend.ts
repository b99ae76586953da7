// The vxlan backend (spec §5.1): flannel.<VNI> device, lease with {VNI, VtepMAC}, then the peer loop.
import { logger } from '../../log/log.ts';
import type { VxlanSpec } from '../../netlink/index.ts';
import type { Backend, BackendContext, BackendFactory, Network } from '../backend.ts';
import { configureDevice, ensureVxlanDevice } from './device.ts';
import { VxlanNetwork, type VxlanTuning } from './network.ts';
import { VXLAN_OVERHEAD, deviceName, parsePeerBackendData, parseVxlanOptions, vxlanBackendData } from './options.ts';

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
    const lease = await ctx.subnetManager.acquireLease(
      {
        publicIP: ctx.extIface.extAddr,
        publicIPv6: null,
        backendType: 'vxlan',
        backendData: vxlanBackendData(options.vni, device.mac!),
      },
      signal,
    );
    await configureDevice(ctx.netlink, device.index, lease.subnet, network);
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
    });
  }
}

export const vxlanBackend: BackendFactory = (ctx) => new VxlanBackend(ctx);
