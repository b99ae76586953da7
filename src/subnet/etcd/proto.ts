// etcd v3's gRPC messages in protobuf wire form: just the fields flannel sends and reads, with field numbers from
// etcd's rpc.proto and kv.proto (packages etcdserverpb and mvccpb), and gRPC's length-prefixed framing. int64 fields
// travel as strings here: etcd lease IDs use all 63 bits.

/** A key as flannel reads it: text key and value, the etcd lease it is attached to ('0': none), its mod revision. */
export interface KeyValue {
  key: string;
  value: string;
  lease: string;
  modRevision: string;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
  prev?: KeyValue;
}

// ---- writing ----

/** A message under construction: each field appended in wire form. */
class Writer {
  private readonly chunks: Buffer[] = [];

  private varint(v: bigint): void {
    const out: number[] = [];
    let n = BigInt.asUintN(64, v);
    while (n > 0x7fn) {
      out.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    out.push(Number(n));
    this.chunks.push(Buffer.from(out));
  }

  private tag(field: number, wire: 0 | 2): void {
    this.varint(BigInt((field << 3) | wire));
  }

  /** A varint field (int64, bool, enum); zero is left out, as proto3 does. */
  int(field: number, v: bigint | number | string | boolean | undefined): this {
    const n = typeof v === 'boolean' ? (v ? 1n : 0n) : BigInt(v ?? 0);
    if (n !== 0n) {
      this.tag(field, 0);
      this.varint(n);
    }
    return this;
  }

  /** A bytes, string or sub-message field; always written (an empty key is not the same as none for a range). */
  bytes(field: number, b: Buffer | string): this {
    const buf = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
    this.tag(field, 2);
    this.varint(BigInt(buf.length));
    this.chunks.push(buf);
    return this;
  }

  message(field: number, w: Writer): this {
    return this.bytes(field, w.finish());
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

const w = () => new Writer();

/**
 * The range_end that makes a range cover every key starting with `prefix`: the prefix with its last byte below 0xff
 * incremented (etcd's own rule; "\0", all keys, when every byte is 0xff).
 */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix, 'utf8');
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function keyRange(msg: Writer, key: string, prefix: boolean): Writer {
  msg.bytes(1, key);
  return prefix ? msg.bytes(2, prefixEnd(key)) : msg;
}

/** RangeRequest: one key or a prefix; `countOnly` asks for the count alone. */
export function rangeRequest(key: string, prefix = false, countOnly = false): Buffer {
  return keyRange(w(), key, prefix).int(9, countOnly).finish();
}

function put(key: string, value: string, lease?: string): Writer {
  return w().bytes(1, key).bytes(2, value).int(3, lease);
}

export function putRequest(key: string, value: string, lease?: string): Buffer {
  return put(key, value, lease).finish();
}

export function deleteRequest(key: string): Buffer {
  return keyRange(w(), key, false).finish();
}

/** A TxnRequest that puts `p` if `key`'s version (0: absent) or mod revision still equals `value`. */
export function putIfRequest(
  key: string,
  target: 'version' | 'modRevision',
  value: string,
  p: { key: string; value: string; lease?: string },
): Buffer {
  // Compare: result EQUAL (0) is the default; target VERSION = 0, MOD = 2; version = 4, mod_revision = 6.
  const compare = w()
    .int(2, target === 'version' ? 0 : 2)
    .bytes(3, key);
  if (target === 'version') compare.int(4, value);
  else compare.int(6, value);
  return w()
    .message(1, compare)
    .message(2, w().message(2, put(p.key, p.value, p.lease)))
    .finish();
}

export const leaseGrantRequest = (ttlSeconds: number) => w().int(1, ttlSeconds).finish();
export const leaseIdRequest = (id: string) => w().int(1, id).finish();
export const authenticateRequest = (name: string, password: string) => w().bytes(1, name).bytes(2, password).finish();

/** A WatchRequest with a create_request: from `startRevision`, with each change's previous value. */
export function watchCreateRequest(key: string, prefix: boolean, startRevision: string): Buffer {
  return w()
    .message(1, keyRange(w(), key, prefix).int(3, startRevision).int(6, true))
    .finish();
}

// ---- reading ----

/** A decoded message: per field number, its values in order (varints as bigint, length-delimited as bytes). */
export class Message {
  private readonly fields = new Map<number, (bigint | Buffer)[]>();

  constructor(buf: Buffer) {
    let i = 0;
    const varint = (): bigint => {
      // Up to 7 bytes fit a double exactly; lease IDs and other large int64s take the bigint path.
      let n = 0;
      let shift = 0;
      for (; shift < 49; shift += 7) {
        if (i >= buf.length) throw new Error('truncated protobuf varint');
        const b = buf[i++]!;
        n += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) return BigInt(n);
      }
      let big = BigInt(n);
      for (let s = BigInt(shift); ; s += 7n) {
        if (i >= buf.length || s > 63n) throw new Error('malformed protobuf varint');
        const b = buf[i++]!;
        big |= BigInt(b & 0x7f) << s;
        if (b < 0x80) return BigInt.asIntN(64, big);
      }
    };
    while (i < buf.length) {
      const tag = Number(varint());
      const field = tag >>> 3;
      let value: bigint | Buffer;
      switch (tag & 7) {
        case 0:
          value = varint();
          break;
        case 2: {
          const len = Number(varint());
          if (i + len > buf.length) throw new Error('truncated protobuf field');
          value = buf.subarray(i, i + len);
          i += len;
          break;
        }
        case 1:
          i += 8;
          continue;
        case 5:
          i += 4;
          continue;
        default:
          throw new Error(`protobuf wire type ${tag & 7} is not supported`);
      }
      const list = this.fields.get(field);
      if (list) list.push(value);
      else this.fields.set(field, [value]);
    }
  }

  int(field: number): string {
    const v = this.fields.get(field)?.at(-1);
    return typeof v === 'bigint' ? v.toString() : '0';
  }

  bool(field: number): boolean {
    return this.int(field) !== '0';
  }

  bytes(field: number): Buffer | undefined {
    const v = this.fields.get(field)?.at(-1);
    return Buffer.isBuffer(v) ? v : undefined;
  }

  string(field: number): string {
    return this.bytes(field)?.toString('utf8') ?? '';
  }

  message(field: number): Message | undefined {
    const b = this.bytes(field);
    return b ? new Message(b) : undefined;
  }

  messages(field: number): Message[] {
    return (this.fields.get(field) ?? []).filter((v): v is Buffer => Buffer.isBuffer(v)).map((b) => new Message(b));
  }
}

/** mvccpb.KeyValue: key 1, mod_revision 3, value 5, lease 6. */
export function decodeKv(m: Message): KeyValue {
  return { key: m.string(1), value: m.string(5), lease: m.int(6), modRevision: m.int(3) };
}

/** The store revision of a response (ResponseHeader, field 1 of every response; its revision is field 3). */
export function revisionOf(m: Message): string {
  return m.message(1)?.int(3) ?? '0';
}

/** RangeResponse: header 1, kvs 2. */
export function decodeRange(buf: Buffer): { revision: string; kvs: KeyValue[] } {
  const m = new Message(buf);
  return { revision: revisionOf(m), kvs: m.messages(2).map(decodeKv) };
}

/** TxnResponse: header 1, succeeded 2. */
export function decodeTxn(buf: Buffer): { succeeded: boolean; revision: string } {
  const m = new Message(buf);
  return { succeeded: m.bool(2), revision: revisionOf(m) };
}

/** One message of a watch stream: its events, or that it started, or that etcd ended it (compaction, say). */
export type WatchMessage =
  | { kind: 'created' }
  | { kind: 'events'; events: WatchEvent[] }
  | { kind: 'canceled'; reason: string };

/** WatchResponse: created 3, canceled 4, compact_revision 5, cancel_reason 6, events 11 (mvccpb.Event: type 1, kv 2, prev_kv 3). */
export function decodeWatchResponse(buf: Buffer): WatchMessage {
  const m = new Message(buf);
  if (m.bool(4)) {
    const compact = m.int(5);
    const reason =
      m.string(6) ||
      (compact !== '0' ? `required revision has been compacted (compact revision ${compact})` : 'canceled by etcd');
    return { kind: 'canceled', reason };
  }
  if (m.bool(3)) return { kind: 'created' };
  // Without events: a progress notification.
  return {
    kind: 'events',
    events: m.messages(11).map((ev) => {
      const prev = ev.message(3);
      return {
        type: ev.int(1) === '1' ? 'delete' : 'put',
        kv: decodeKv(ev.message(2) ?? new Message(Buffer.alloc(0))),
        ...(prev ? { prev: decodeKv(prev) } : {}),
      };
    }),
  };
}

/** gRPC's message framing: a flag byte (0: not compressed), a 4-byte big-endian length, the message. */
export function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/**
 * Collects the complete gRPC messages of a stream's data chunks; keeps a partial one for later. A large answer (the
 * listing of 5,000 leases is about 1 MB in 16 KB chunks) is joined once, when its last chunk is in, not on every
 * chunk: that was 60 growing copies, and a malloc heap that stayed fragmented.
 */
export class GrpcFrames {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Buffer[] = [];
    while (this.buffered >= 5) {
      const head = this.peek(5);
      if (head[0] !== 0) throw new Error('etcd sent a compressed gRPC message, which flannel never asks for');
      const len = head.readUInt32BE(1);
      if (this.buffered < 5 + len) break;
      out.push(this.take(5 + len).subarray(5));
    }
    return out;
  }

  /** The first `n` buffered bytes, without consuming them. */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    return first.length >= n ? first : Buffer.concat(this.chunks, this.buffered).subarray(0, n);
  }

  /** Removes and returns the first `n` buffered bytes (n ≤ buffered), copying only when they span chunks. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const all = Buffer.concat(this.chunks);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    return all.subarray(0, n);
  }
}
