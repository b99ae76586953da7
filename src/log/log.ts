// klog-style logging to stderr: `I1121 19:14:20.123456    4242 module] message`.

let verbosity = 0;
export function setVerbosity(v: number): void {
  verbosity = v;
}
export function getVerbosity(): number {
  return verbosity;
}

function header(level: 'I' | 'W' | 'E', where: string): string {
  const d = new Date();
  const p2 = (n: number) => String(n).padStart(2, '0');
  const us = String(d.getMilliseconds() * 1000).padStart(6, '0');
  return `${level}${p2(d.getMonth() + 1)}${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${us} ${String(process.pid).padStart(7)} ${where}] `;
}

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** Logged only when `-v` is at least `level`. */
  v(level: number, msg: string): void;
}

export function logger(where: string): Logger {
  const write = (l: 'I' | 'W' | 'E', msg: string) => process.stderr.write(`${header(l, where) + msg}\n`);
  return {
    info: (m) => write('I', m),
    warn: (m) => write('W', m),
    error: (m) => write('E', m),
    v: (level, m) => {
      if (verbosity >= level) write('I', m);
    },
  };
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
