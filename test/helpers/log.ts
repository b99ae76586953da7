// A recorder for the daemon's log lines: our logger writes them to stderr.

/** Records what is written to stderr (our logger's output) until stop(); still passes it through. */
export class LogRecorder {
  readonly lines: string[] = [];
  private readonly original = process.stderr.write.bind(process.stderr);

  constructor() {
    process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
      this.lines.push(...String(chunk).split('\n').filter(Boolean));
      return (this.original as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
  }

  /** Lines containing every one of `parts`. */
  find(...parts: string[]): string[] {
    return this.lines.filter((l) => parts.every((p) => l.includes(p)));
  }

  /** Lines matching `re`. */
  matching(re: RegExp): string[] {
    return this.lines.filter((l) => re.test(l));
  }

  stop(): void {
    process.stderr.write = this.original;
  }
}
