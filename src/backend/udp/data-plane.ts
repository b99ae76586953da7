// The udp backend's packet forwarding: TUN → peer by destination subnet → UDP (the raw IP packet as payload), and
// UDP → TUN. Packets are handled in place in the readers' buffers and written out in batches.
import { errorMessage, logger } from '../../log/log.ts';
import type { NativeIoError } from '../../native/index.ts';
import { PacketReader, writeBatch, type PacketBatch } from '../../native/packet-io.ts';
import { decrementTtl, ipv4Dst, ipv4HeaderLength, netUnreachable, wantsUnreachable } from './packet.ts';
import { PeerRoutes } from './routes.ts';

const log = logger('udp');
const SLOTS = 64;
/** Largest UDP payload; a peer may have a larger MTU than we do. */
const UDP_SLOT = 65536;

export interface DataPlaneStats {
  toPeers: number;
  fromPeers: number;
  /** IP bytes of the packets counted in toPeers / fromPeers (the UDP payloads, without UDP/IP headers). */
  toPeersBytes: number;
  fromPeersBytes: number;
  /** Packets dropped because the socket's or flannel0's queue was full (EAGAIN). */
  queueFull: number;
  noRoute: number;
  ttlExpired: number;
  malformed: number;
  writeErrors: number;
}

export class UdpDataPlane {
  readonly routes = new PeerRoutes();
  readonly stats: DataPlaneStats = {
    toPeers: 0,
    fromPeers: 0,
    toPeersBytes: 0,
    fromPeersBytes: 0,
    queueFull: 0,
    noRoute: 0,
    ttlExpired: 0,
    malformed: 0,
    writeErrors: 0,
  };
  private readers: PacketReader[] = [];
  private readonly desc = new Uint32Array(4 * SLOTS);
  private readonly one = new Uint32Array(4);
  private lastErrorLog = 0;

  constructor(
    private readonly fds: { tun: number; udp: number },
    /** Peers listen on the same port as we do. */
    private readonly port: number,
    private readonly mtu: number,
  ) {}

  start(onFatal: (err: Error) => void): void {
    const onError = (what: string) => (err: NativeIoError) => {
      if (err.stopped) onFatal(new Error(`udp backend: ${what} reader stopped: ${err.message}`));
      else this.rateLimited(`${what}: ${err.message}`);
    };
    const tunSlot = Math.max(2048, Math.ceil(this.mtu / 64) * 64);
    this.readers = [
      new PacketReader(this.fds.tun, 'tun', {
        slotSize: tunSlot,
        slots: SLOTS,
        onBatch: (b) => this.fromTun(b),
        onError: onError('flannel0'),
      }),
      new PacketReader(this.fds.udp, 'udp', {
        slotSize: UDP_SLOT,
        slots: SLOTS,
        onBatch: (b) => this.fromUdp(b),
        onError: onError('UDP socket'),
      }),
    ];
  }

  stop(): void {
    for (const r of this.readers) r.stop();
    this.readers = [];
  }

  /** Outgoing: find the peer, decrement TTL, send the packet as it is as the UDP payload. */
  private fromTun(b: PacketBatch): void {
    const { data, lengths, slotSize } = b;
    const desc = this.desc;
    let n = 0;
    for (let i = 0; i < b.count; i++) {
      const off = i * slotSize;
      const len = lengths[i]!;
      if (!ipv4HeaderLength(data, off, len)) {
        this.stats.malformed++;
        continue;
      }
      const peer = this.routes.lookup(ipv4Dst(data, off));
      if (peer === undefined) {
        this.stats.noRoute++;
        if (wantsUnreachable(data, off)) this.toTun(netUnreachable(data, off, len));
        continue;
      }
      if (!decrementTtl(data, off)) {
        this.stats.ttlExpired++;
        continue;
      }
      desc[4 * n] = off;
      desc[4 * n + 1] = len;
      desc[4 * n + 2] = peer;
      desc[4 * n + 3] = this.port;
      n++;
    }
    if (n) {
      const sent = this.write(this.fds.udp, 'udp', data, desc, n);
      this.stats.toPeers += sent;
      this.stats.toPeersBytes += sentBytes(desc, sent);
    }
  }

  /** Incoming: the payload is an IP packet; decrement TTL and hand it to the kernel. */
  private fromUdp(b: PacketBatch): void {
    const { data, lengths, slotSize } = b;
    const desc = this.desc;
    let n = 0;
    for (let i = 0; i < b.count; i++) {
      const off = i * slotSize;
      const len = lengths[i]!;
      if (!ipv4HeaderLength(data, off, len)) {
        this.stats.malformed++;
        continue;
      }
      if (!decrementTtl(data, off)) {
        this.stats.ttlExpired++;
        continue;
      }
      desc[4 * n] = off;
      desc[4 * n + 1] = len;
      n++;
    }
    if (n) {
      const sent = this.write(this.fds.tun, 'tun', data, desc, n);
      this.stats.fromPeers += sent;
      this.stats.fromPeersBytes += sentBytes(desc, sent);
    }
  }

  private toTun(packet: Uint8Array): void {
    this.one[0] = 0;
    this.one[1] = packet.length;
    this.write(this.fds.tun, 'tun', packet, this.one, 1);
  }

  private write(fd: number, mode: 'tun' | 'udp', data: Uint8Array, desc: Uint32Array, n: number): number {
    try {
      const sent = writeBatch(fd, mode, data, desc, n);
      // writeBatch stops at EAGAIN: the packets it did not get to are dropped.
      this.stats.queueFull += n - sent;
      return sent;
    } catch (e) {
      this.stats.writeErrors++;
      this.rateLimited(errorMessage(e));
      return 0;
    }
  }

  /** Per-packet errors can come by the thousand: one line per second at most. */
  private rateLimited(msg: string): void {
    const now = Date.now();
    if (now - this.lastErrorLog < 1000) return;
    this.lastErrorLog = now;
    log.warn(msg);
  }
}

/** The lengths of the first `sent` packets of a batch: writeBatch sends in order and stops at the first EAGAIN. */
function sentBytes(desc: Uint32Array, sent: number): number {
  let bytes = 0;
  for (let i = 0; i < sent; i++) bytes += desc[4 * i + 1]!;
  return bytes;
}
