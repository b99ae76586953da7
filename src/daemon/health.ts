// /healthz (alive), /readyz (rules set up and subnet.env written), /peers (read-only per-peer status, JSON) and
// /metrics (Prometheus text format, see metrics.ts) on --healthz-ip:--healthz-port.
import { createServer, type ServerResponse, type Server } from 'node:http';
import type { Network } from '../backend/backend.ts';
import { errorMessage, logger } from '../log/log.ts';

const log = logger('health');

/** What `GET /metrics` serves. */
export interface MetricsSource {
  readonly contentType: string;
  render(): Promise<string>;
}

export class HealthServer {
  private ready = false;
  private server?: Server;
  private running?: { backend: string; network: Pick<Network, 'peers'> };

  /** Without `metrics`, /metrics is a 404 like any unknown path. */
  constructor(private readonly metrics?: MetricsSource) {}

  markReady(): void {
    this.ready = true;
  }

  /** From now on `GET /peers` answers with `network`'s peers (until then 503, like /readyz). */
  servePeers(backend: string, network: Pick<Network, 'peers'>): void {
    this.running = { backend, network };
  }

  async start(ip: string, port: number): Promise<void> {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('flanneld is running');
      } else if (path === '/readyz') {
        if (this.ready) res.writeHead(200, { 'content-type': 'text/plain' }).end('flanneld is ready');
        else res.writeHead(503, { 'content-type': 'text/plain' }).end('flanneld is not ready yet');
      } else if (path === '/peers') {
        this.peers(req.method ?? 'GET', res);
      } else if (path === '/metrics' && this.metrics) {
        void this.serveMetrics(this.metrics, req.method ?? 'GET', res);
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

  /** `{"backend":"host-gw","peers":[…]}`; an error is `{"error":"…"}` (plus the backend when known). */
  private peers(method: string, res: ServerResponse): void {
    const json = (status: number, body: object, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(`${JSON.stringify(body)}\n`);
    };
    if (method !== 'GET' && method !== 'HEAD')
      return json(405, { error: `${method} /peers: only GET is served (it is read-only)` }, { allow: 'GET, HEAD' });
    const r = this.running;
    if (!r) return json(503, { error: "flanneld's network is not running yet" });
    if (!r.network.peers)
      return json(501, { backend: r.backend, error: `the ${r.backend} backend does not report per-peer status` });
    try {
      json(200, { backend: r.backend, peers: r.network.peers() });
    } catch (e) {
      log.error(`GET /peers failed: ${errorMessage(e)}`);
      json(500, { backend: r.backend, error: `reading the peers failed: ${errorMessage(e)}` });
    }
  }

  private async serveMetrics(metrics: MetricsSource, method: string, res: ServerResponse): Promise<void> {
    if (method !== 'GET' && method !== 'HEAD') {
      res
        .writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' })
        .end(`${method} /metrics: only GET is served\n`);
      return;
    }
    try {
      const body = await metrics.render();
      res.writeHead(200, { 'content-type': metrics.contentType }).end(method === 'HEAD' ? undefined : body);
    } catch (e) {
      log.error(`GET /metrics failed: ${errorMessage(e)}`);
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting the metrics failed: ${errorMessage(e)}\n`);
    }
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
