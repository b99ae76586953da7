// Orders requests on one netlink socket: writes pipelined up to a window, dumps alone.
// The kernel refuses a second dump on a socket while one runs (EBUSY), and the library's multipart
// assembly breaks if an ACK arrives between the parts of a dump, so a dump waits for the socket to be idle.

interface Pending {
  exclusive: boolean;
  start: () => void;
}

export class RequestGate {
  private inflight = 0;
  private exclusiveRunning = false;
  private readonly queue: Pending[] = [];

  constructor(private readonly window: number) {
    if (!Number.isInteger(window) || window < 1)
      throw new Error(`netlink request window ${window} must be a positive integer`);
  }

  /** Runs `fn` when the gate allows; requests start in the order they were queued. */
  run<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        exclusive,
        start: () => {
          let p: Promise<T>;
          try {
            p = fn();
          } catch (e) {
            p = Promise.reject(e);
          }
          p.then(resolve, reject).finally(() => this.finish(exclusive));
        },
      });
      this.pump();
    });
  }

  get pending(): number {
    return this.inflight + this.queue.length;
  }

  private pump(): void {
    while (this.queue.length > 0 && !this.exclusiveRunning) {
      const next = this.queue[0]!;
      if (next.exclusive ? this.inflight > 0 : this.inflight >= this.window) return;
      this.queue.shift();
      this.inflight++;
      if (next.exclusive) this.exclusiveRunning = true;
      next.start();
    }
  }

  private finish(exclusive: boolean): void {
    this.inflight--;
    if (exclusive) this.exclusiveRunning = false;
    this.pump();
  }
}
