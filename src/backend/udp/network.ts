// The running udp network: lease events keep the data plane's peer map current until the signal aborts; a peer is
// programmed once its subnet is in that map.
import { closeSync } from 'node:fs';
import type { IPv4Net } from '../../ip/ipv4.ts';
import { parseIPv4 } from '../../ip/ipv4.ts';
import { errorMessage, logger } from '../../log/log.ts';
import type { Lease, LeaseEvent, SubnetManager } from '../../subnet/lease.ts';
import type { Network, PeerStatus } from '../backend.ts';
import { PeerStatusBook } from '../peer-status.ts';
import { UdpDataPlane } from './data-plane.ts';

const log = logger('udp');

export interface UdpNetworkInit {
  subnetManager: SubnetManager;
  lease: Lease;
  network: IPv4Net;
  mtu: number;
  port: number;
  fds: { tun: number; udp: number };
}

export class UdpNetwork implements Network {
  readonly lease: Lease;
  readonly mtu: number;
  readonly dataPlane: UdpDataPlane;
  /** One record per udp peer lease, by its subnet. */
  private readonly status = new PeerStatusBook();

  constructor(private readonly init: UdpNetworkInit) {
    this.lease = init.lease;
    this.mtu = init.mtu;
    this.dataPlane = new UdpDataPlane(init.fds, init.port, init.mtu);
  }

  /** Every current udp peer and whether the data plane routes to it, sorted by subnet (flanneld's `GET /peers`). */
  peers(): PeerStatus[] {
    return this.status.list();
  }

  async run(signal: AbortSignal): Promise<void> {
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener('abort', onAbort);
    let fatal: Error | undefined;
    this.dataPlane.start((err) => {
      fatal = err;
      log.error(err.message);
      stop.abort();
    });
    try {
      log.info('watching for new subnet leases');
      for await (const batch of this.init.subnetManager.watchLeases(this.lease, stop.signal)) {
        for (const ev of batch) this.handle(ev);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.dataPlane.stop();
      // Closing the TUN fd removes flannel0 (the device is not persistent), as when real flannel exits.
      for (const fd of [this.init.fds.tun, this.init.fds.udp]) {
        try {
          closeSync(fd);
        } catch (e) {
          log.warn(`closing fd ${fd}: ${errorMessage(e)}`);
        }
      }
    }
    if (fatal) throw fatal;
  }

  private handle(ev: LeaseEvent): void {
    const { lease } = ev;
    const routes = this.dataPlane.routes;
    // A dual-stack peer is reached by its IPv4 half; an IPv6-only one not at all.
    if (!lease.subnet) {
      log.info(`ignoring IPv6-only subnet ${lease.ipv6Subnet}: the udp backend carries IPv4 only`);
      return;
    }
    const subnet = lease.subnet;
    const key = subnet.toString();
    const publicIP = lease.attrs.publicIP;
    if (ev.type === 'removed') {
      this.status.delete(key);
      if (routes.delete(subnet)) log.info(`Subnet removed: ${subnet}`);
      return;
    }
    // udp leases carry no BackendType; anything else belongs to another backend and is not reachable over UDP.
    if (lease.attrs.backendType !== '') {
      log.info(`ignoring non-udp subnet ${subnet}: type=${lease.attrs.backendType}`);
      this.status.delete(key);
      routes.delete(subnet);
      return;
    }
    let peer: number;
    try {
      peer = parseIPv4(publicIP);
    } catch (e) {
      log.error(`lease ${subnet}: ${errorMessage(e)}; ignoring it`);
      this.status.set(key, {
        subnet: key,
        publicIP,
        state: 'failed',
        reason: `not in the routing table: its PublicIP cannot be used (${errorMessage(e)})`,
      });
      routes.delete(subnet);
      return;
    }
    log.info(`Subnet added: ${subnet} via ${publicIP}`);
    routes.set(subnet, peer);
    this.status.set(key, { subnet: key, publicIP, state: 'programmed' });
  }
}
