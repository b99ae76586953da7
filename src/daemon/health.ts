// /healthz (alive) and /readyz (rules set up and subnet.env written) on --healthz-ip:--healthz-port.
import { createServer, type Server } from 'node:http';
import { logger } from '../log/log.ts';

const log = logger('health');

export class HealthServer {
  private ready = false;
  private server?: Server;

  markReady(): void {
    this.ready = true;
  }

  async start(ip: string, port: number): Promise<void> {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('flanneld is running');
      } else if (path === '/readyz') {
        if (this.ready) res.writeHead(200, { 'content-type': 'text/plain' }).end('flanneld is ready');
        else res.writeHead(503, { 'content-type': 'text/plain' }).end('flanneld is not ready yet');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, ip, () => resolve());
    });
    log.info(`Start healthz server on ${ip}:${port}`);
  }

  /** Graceful stop, bounded to 3 s like flanneld. */
  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        s.closeAllConnections();
        resolve();
      }, 3000);
      s.close(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
