// Many write requests in one datagram: requests made in the same turn of the event loop are sent together (the
// kernel handles the messages of a datagram one after another, in order, and ACKs each), answered by sequence number.
// One send and one timer per datagram instead of one per request: what lets thousands of peers go in at kernel speed.
import { getSystemErrorName } from 'node:util';
import { ackErrno, messageSize, writeMessage, type Request } from './encode.ts';
import { NetlinkError } from './errors.ts';

/** Datagrams stay well under the socket's send buffer (1 MiB) and the kernel's per-message allocation. */
const MAX_DATAGRAM = 64 * 1024;
/** Our sequence numbers live apart from the library's (which count up from 1), so answers cannot be confused. */
const SEQ_FIRST = 0x40000000;

/** The requests of one datagram still unanswered, and the one timer that fails them. */
interface Datagram {
  unanswered: number;
  timer?: ReturnType<typeof setTimeout>;
}

interface Queued {
  op: string;
  seq: number;
  request: Request;
  resolve: () => void;
  reject: (e: NetlinkError) => void;
  datagram?: Datagram;
}

export interface BatchSocket {
  /** Sends one datagram to the kernel; the callback gets the send's error, if any. */
  send(datagram: Buffer, done: (error?: Error) => void): void;
  /** The socket's netlink port id, for the headers. */
  port(): number;
}

export class WriteBatcher {
  private seq = SEQ_FIRST;
  private queued: Queued[] = [];
  private scheduled = false;
  private readonly waiting = new Map<number, Queued>();

  constructor(
    private readonly socket: BatchSocket,
    private readonly timeoutMs: number,
  ) {}

  /** Queues one request; resolves on the kernel's ACK, rejects with its errno name (or ETIMEDOUT). */
  submit(op: string, request: Request): Promise<void> {
    return new Promise((resolve, reject) => {
      const seq = this.seq;
      this.seq = this.seq >= 0xffffffff ? SEQ_FIRST : this.seq + 1;
      this.queued.push({ op, seq, request, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // After the current turn's other requests have been queued.
        setImmediate(() => this.flush());
      }
    });
  }

  /** Messages the socket received that no library request claimed; ACKs of ours settle their request. */
  receive(messages: ReadonlyArray<{ type: number; seq: number; data: Buffer }>): void {
    for (const m of messages) {
      const w = this.waiting.get(m.seq);
      if (!w) continue;
      const errno = ackErrno(m.type, m.data);
      if (errno === undefined) continue;
      this.settle(w, errno === 0 ? undefined : new NetlinkError(w.op, errnoName(errno)));
    }
  }

  /** Fails everything waiting or queued (the socket closed). */
  failAll(code: string, detail: string): void {
    const all = [...this.waiting.values(), ...this.queued];
    this.queued = [];
    for (const w of all) this.settle(w, new NetlinkError(w.op, code, detail));
  }

  get pending(): number {
    return this.waiting.size + this.queued.length;
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.queued;
    this.queued = [];
    const port = this.socket.port();
    for (let i = 0; i < all.length; ) {
      let size = 0;
      let j = i;
      while (j < all.length && (j === i || size + messageSize(all[j]!.request) <= MAX_DATAGRAM)) {
        size += messageSize(all[j]!.request);
        j++;
      }
      this.sendChunk(all.slice(i, j), size, port);
      i = j;
    }
  }

  private sendChunk(chunk: Queued[], size: number, port: number): void {
    const datagram = Buffer.alloc(size);
    const d: Datagram = { unanswered: chunk.length };
    let at = 0;
    for (const q of chunk) {
      at += writeMessage(datagram, at, q.request, q.seq, port);
      q.datagram = d;
      this.waiting.set(q.seq, q);
    }
    d.timer = setTimeout(() => {
      for (const q of chunk) if (this.waiting.get(q.seq) === q) this.settle(q, new NetlinkError(q.op, 'ETIMEDOUT'));
    }, this.timeoutMs);
    this.socket.send(datagram, (error) => {
      if (!error) return;
      const code = (error as { code?: unknown }).code;
      const e = (q: Queued) => new NetlinkError(q.op, typeof code === 'string' ? code : 'EUNKNOWN', error.message);
      for (const q of chunk) if (this.waiting.get(q.seq) === q) this.settle(q, e(q));
    });
  }

  /** Ends one request: answered (error undefined) or failed; the datagram's timer goes with its last request. */
  private settle(q: Queued, error: NetlinkError | undefined): void {
    this.waiting.delete(q.seq);
    const d = q.datagram;
    if (d && --d.unanswered === 0) clearTimeout(d.timer);
    if (error) q.reject(error);
    else q.resolve();
  }
}

function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `errno ${errno}`;
  }
}
