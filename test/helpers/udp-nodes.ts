// Hosts running the udp backend inside this test process (see backend-node.ts), and a hand-driven "real flannel"
// peer: a UDP socket in its own namespace that a child process reads and writes.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { NetworkConfig } from '../../src/config/network-config.ts';
import { UdpBackend } from '../../src/backend/udp/backend.ts';
import type { UdpNetwork } from '../../src/backend/udp/network.ts';
import type { Backend, BackendContext } from '../../src/backend/backend.ts';
import { BackendNode, backendConfig } from './backend-node.ts';

export function udpConfig(backend: Record<string, unknown> = {}): NetworkConfig {
  return backendConfig('udp', backend);
}

export class UdpNode extends BackendNode<UdpNetwork> {
  protected createBackend(ctx: BackendContext): Backend {
    return new UdpBackend(ctx);
  }

  override async stop(): Promise<void> {
    // A data-plane failure ends run() with that error; stopping still has to close the handle.
    this.running = this.running.catch(() => undefined);
    await super.stop();
  }
}

const PEER_SCRIPT = `
const dgram = require('node:dgram');
const [ip, port] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => process.stdout.write(JSON.stringify({ from: r.address + ':' + r.port, hex: m.toString('hex') }) + '\\n'));
s.bind(Number(port), ip, () => process.stdout.write('{"ready":true}\\n'));
require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => {
  const [to, toPort, hex] = l.split(' ');
  s.send(Buffer.from(hex, 'hex'), Number(toPort), to);
});
`;

/** A peer that speaks the udp backend's wire format by hand: what it receives and what it sends are raw bytes. */
export class WirePeer {
  private child!: ChildProcessWithoutNullStreams;
  private readonly received: { from: string; payload: Buffer }[] = [];
  private waiters: (() => void)[] = [];

  constructor(
    readonly ns: string,
    readonly ip: string,
    readonly port: number,
  ) {}

  async start(): Promise<this> {
    this.child = spawn('ip', [
      'netns',
      'exec',
      this.ns,
      process.execPath,
      '-e',
      PEER_SCRIPT,
      this.ip,
      String(this.port),
    ]);
    const lines = createInterface({ input: this.child.stdout });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('wire peer did not start within 5 s')), 5000);
      lines.on('line', (l) => {
        const m = JSON.parse(l);
        if (m.ready) {
          clearTimeout(t);
          resolve();
          return;
        }
        this.received.push({ from: m.from, payload: Buffer.from(m.hex, 'hex') });
        for (const w of this.waiters.splice(0)) w();
      });
      this.child.on('exit', (code) => reject(new Error(`wire peer exited with ${code}`)));
    });
    return this;
  }

  send(to: string, port: number, payload: Uint8Array): void {
    this.child.stdin.write(`${to} ${port} ${Buffer.from(payload).toString('hex')}\n`);
  }

  /** The first received datagram (removed from the queue) that `match` accepts, within `timeoutMs`. */
  async next(match: (p: Buffer) => boolean, timeoutMs = 3000): Promise<{ from: string; payload: Buffer }> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex((r) => match(r.payload));
      if (i >= 0) return this.received.splice(i, 1)[0]!;
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no matching datagram within ${timeoutMs} ms (${this.received.length} others)`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  stop(): void {
    this.child?.kill('SIGKILL');
  }
}
