// Batched packet I/O for the udp backend over our addon: a TUN or UDP fd read on the event loop many packets per
// wakeup into one reused buffer, and writes of many packets per call (write(2) per packet on TUN, sendmmsg on UDP).
import { loadNative, type NativeIoError } from './index.ts';

export type IoMode = 'tun' | 'udp';
const MODE: Record<IoMode, number> = { tun: 0, udp: 1 };

/** One wakeup's packets: packet i is `data.subarray(i * slotSize, i * slotSize + lengths[i])`; -1 = truncated. */
export interface PacketBatch {
  data: Uint8Array;
  lengths: Int32Array;
  count: number;
  slotSize: number;
}

export interface ReaderOptions {
  /** Largest packet kept whole (bigger UDP datagrams arrive as length -1). */
  slotSize: number;
  /** Packets per wakeup at most. */
  slots: number;
  /** Called synchronously per wakeup; the batch's memory is reused as soon as it returns. */
  onBatch(batch: PacketBatch): void;
  /** Errors other than EAGAIN; `err.stopped` means the reader gave up. */
  onError(err: NativeIoError): void;
}

export class PacketReader {
  private handle: object | undefined;

  constructor(fd: number, mode: IoMode, opts: ReaderOptions) {
    // One batch object for the reader's lifetime: its views cover the addon's reused memory.
    const batch: PacketBatch = {
      data: new Uint8Array(0),
      lengths: new Int32Array(0),
      count: 0,
      slotSize: opts.slotSize,
    };
    const r = loadNative().startReader(fd, MODE[mode], opts.slotSize, opts.slots, (err, count) => {
      if (err) {
        if (err.stopped) this.handle = undefined;
        opts.onError(err);
        return;
      }
      batch.count = count;
      opts.onBatch(batch);
    });
    batch.data = new Uint8Array(r.buffer);
    batch.lengths = r.lengths;
    this.handle = r.handle;
  }

  get running(): boolean {
    return this.handle !== undefined;
  }

  /** Stops reading (the poll handle is closed on the loop); idempotent. */
  stop(): void {
    if (this.handle) loadNative().stopReader(this.handle);
    this.handle = undefined;
  }
}

/**
 * Writes `count` packets described by `desc` ([offset, length, IPv4 as uint32, port] each) from `data`.
 * Returns how many went out (EAGAIN drops the rest); throws for other errors after trying every packet.
 */
export function writeBatch(fd: number, mode: IoMode, data: Uint8Array, desc: Uint32Array, count: number): number {
  return loadNative().writeBatch(fd, MODE[mode], data, desc, count);
}

/** A non-blocking UDP socket bound to ip:port, created in the calling thread's network namespace. */
export function udpOpen(ip: string, port: number): number {
  return loadNative().udpOpen(ip, port);
}
