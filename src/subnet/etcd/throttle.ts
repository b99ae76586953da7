// Rate-limited error logging: an etcd outage fails every retry, and each would otherwise log a line.
import type { Logger } from '../../log/log.ts';

export class ThrottledLog {
  private last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 30_000,
  ) {}

  /** Logs `msg` under `topic` at most once per interval, mentioning how many repeats were swallowed. */
  error(topic: string, msg: string): void {
    const now = Date.now();
    const seen = this.last.get(topic);
    if (seen && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    const more = seen && seen.suppressed > 0 ? ` (${seen.suppressed} similar errors suppressed)` : '';
    this.last.set(topic, { at: now, suppressed: 0 });
    this.log.error(msg + more);
  }

  /** The topic works again: the next error is logged at once. */
  clear(topic: string): void {
    this.last.delete(topic);
  }
}
