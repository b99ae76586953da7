// Entry point of the flannel CNI plugin (bundled to dist/flannel.cjs). Keep imports light: it starts on every pod event.
import { readFileSync, writeSync } from 'node:fs';
import { runPlugin } from './plugin.ts';

function writeAll(fd: number, data: Buffer | string): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off);
}

const status = runPlugin({
  env: process.env,
  readStdin: () => readFileSync(0),
  stdout: (d) => writeAll(1, d),
  stderr: (t) => writeAll(2, t),
});
// Everything was written synchronously: leave now rather than tear the runtime down (a few ms per pod event).
process.exit(status);
