// A small Kubernetes API server for the lab and the tests: the node calls flanneld makes, with the real server's
// semantics (resourceVersion, watch streams with bookmarks and 410 Gone, patch content types, bearer tokens).
// Plain HTTP only: it runs on the lab's private underlay and on loopback in tests.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { applyPatch, PatchError, type PatchType } from './patch.ts';
import { NodeCreateError, normalizePodCIDRs, podCIDRChange, validateNewNode } from './node-create.ts';
import type { ApiNode, NodeInit } from './types.ts';

export type { ApiNode, NodeInit } from './types.ts';

export interface RecordedPatch {
  node: string;
  subresource: 'status' | '';
  contentType: string;
  body: unknown;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';
interface HistoryEvent {
  rv: number;
  type: EventType;
  object: ApiNode;
}

export interface KubeApiServerOptions {
  /** Bearer token every request must carry; undefined accepts anonymous requests. */
  token?: string;
  /** Watch events kept for resuming watches; older resourceVersions get 410 Gone. */
  historyLimit?: number;
  /** How often watches that asked for bookmarks get one. */
  bookmarkIntervalMs?: number;
}

interface Watcher {
  res: ServerResponse;
  bookmarks: boolean;
}

const PATCH_TYPES: Record<string, PatchType> = {
  'application/strategic-merge-patch+json': 'strategic',
  'application/merge-patch+json': 'merge',
};

function statusBody(code: number, reason: string, message: string): object {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

export class KubeApiServer {
  private readonly nodes = new Map<string, ApiNode>();
  private readonly pods = new Map<string, { namespace: string; name: string; nodeName: string }>();
  private history: HistoryEvent[] = [];
  /** resourceVersion of the newest event no longer in `history` (0: nothing forgotten). */
  private forgottenUpTo = 0;
  private rv = 1;
  private uid = 0;
  private readonly watchers = new Set<Watcher>();
  private readonly server: Server;
  private bookmarkTimer: NodeJS.Timeout | null = null;
  /** Every accepted PATCH, for tests that check what flanneld sent. */
  readonly patches: RecordedPatch[] = [];
  /** Requests by method and path (without query), for tests that count lists. */
  readonly requests: string[] = [];
  /** Watches answered with ERROR 410 Gone. */
  goneCount = 0;

  constructor(private readonly opts: KubeApiServerOptions = {}) {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  async listen(port: number, host: string): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    this.bookmarkTimer = setInterval(() => this.sendBookmarks(), this.opts.bookmarkIntervalMs ?? 60_000);
    this.bookmarkTimer.unref();
    const a = this.server.address() as AddressInfo;
    return `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    if (this.bookmarkTimer) clearInterval(this.bookmarkTimer);
    this.dropWatches();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  get watchCount(): number {
    return this.watchers.size;
  }

  // ---- helpers to drive the cluster -------------------------------------------------------------------------

  getNode(name: string): ApiNode | undefined {
    const n = this.nodes.get(name);
    return n && structuredClone(n);
  }

  listNodes(): ApiNode[] {
    return [...this.nodes.values()].map((n) => structuredClone(n));
  }

  addNode(init: NodeInit): ApiNode {
    if (this.nodes.has(init.name)) throw new Error(`node ${init.name} already exists`);
    const cidrs = init.podCIDRs ?? (init.podCIDR ? [init.podCIDR] : undefined);
    const node: ApiNode = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: init.name,
        resourceVersion: '',
        uid: `uid-${++this.uid}`,
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      },
      spec: {},
      status: {},
    };
    if (init.annotations) node.metadata.annotations = { ...init.annotations };
    if (cidrs) {
      node.spec.podCIDR = cidrs[0];
      node.spec.podCIDRs = cidrs;
    }
    return this.commit('ADDED', node);
  }

  /** Changes a node in place (as kubectl or another controller would) and notifies watchers. */
  modifyNode(name: string, change: (n: ApiNode) => void): ApiNode {
    const cur = this.nodes.get(name);
    if (!cur) throw new Error(`no node ${name}`);
    const next = structuredClone(cur);
    change(next);
    return this.commit('MODIFIED', next);
  }

  deleteNode(name: string): void {
    const cur = this.nodes.get(name);
    if (!cur) throw new Error(`no node ${name}`);
    this.nodes.delete(name);
    const rv = ++this.rv;
    const gone = structuredClone(cur);
    gone.metadata.resourceVersion = String(rv);
    this.record({ rv, type: 'DELETED', object: gone });
  }

  addPod(namespace: string, name: string, nodeName: string): void {
    this.pods.set(`${namespace}/${name}`, { namespace, name, nodeName });
  }

  /** Cuts every open watch stream (a network blip or an API server restart). */
  dropWatches(): void {
    for (const w of this.watchers) w.res.destroy();
    this.watchers.clear();
  }

  /** Ends every open watch stream cleanly, as the server does when a watch's timeoutSeconds is up. */
  endWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  /** Forgets the watch history, as etcd compaction does: resuming from any older resourceVersion gets 410 Gone. */
  compact(): void {
    this.forgottenUpTo = this.rv;
    this.history = [];
  }

  // ---- internals -------------------------------------------------------------------------------------------

  private commit(type: EventType, node: ApiNode): ApiNode {
    const rv = ++this.rv;
    node.metadata.resourceVersion = String(rv);
    this.nodes.set(node.metadata.name, node);
    this.record({ rv, type, object: structuredClone(node) });
    return structuredClone(node);
  }

  private record(ev: HistoryEvent): void {
    this.history.push(ev);
    const limit = this.opts.historyLimit ?? 10_000;
    while (this.history.length > limit) this.forgottenUpTo = this.history.shift()!.rv;
    const line = `${JSON.stringify({ type: ev.type, object: ev.object })}\n`;
    for (const w of this.watchers) w.res.write(line);
  }

  private sendBookmarks(): void {
    const line = `${JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } } })}\n`;
    for (const w of this.watchers) if (w.bookmarks) w.res.write(line);
  }

  private send(res: ServerResponse, code: number, body: object): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private fail(res: ServerResponse, code: number, reason: string, message: string): void {
    this.send(res, code, statusBody(code, reason, message));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push(`${req.method} ${url.pathname}${url.searchParams.has('watch') ? '?watch' : ''}`);
    if (this.opts.token !== undefined && req.headers.authorization !== `Bearer ${this.opts.token}`) {
      return this.fail(res, 401, 'Unauthorized', 'Unauthorized');
    }
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] !== 'api' || parts[1] !== 'v1')
      return this.fail(res, 404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    const [, , kind, a, b, c] = parts;
    if (kind === 'nodes' && a === undefined && req.method === 'GET') {
      const w = url.searchParams.get('watch');
      return w === '1' || w === 'true' ? this.watch(url, req, res) : this.list(res);
    }
    if (kind === 'nodes' && a === undefined && req.method === 'POST') return void this.create(req, res);
    if (kind === 'nodes' && a !== undefined && (b === undefined || (b === 'status' && c === undefined))) {
      if (req.method === 'GET') return this.get(res, a);
      if (req.method === 'PATCH') return void this.patch(req, res, a, b === 'status' ? 'status' : '');
      if (req.method === 'DELETE' && b === undefined) return void this.remove(req, res, a);
      return this.fail(res, 405, 'MethodNotAllowed', `${req.method} is not supported on nodes${b ? `/${b}` : ''} here`);
    }
    if (kind === 'namespaces' && b === 'pods' && c !== undefined && req.method === 'GET') {
      const pod = this.pods.get(`${a}/${c}`);
      if (!pod) return this.fail(res, 404, 'NotFound', `pods "${c}" not found`);
      return this.send(res, 200, {
        kind: 'Pod',
        apiVersion: 'v1',
        metadata: { name: pod.name, namespace: pod.namespace },
        spec: { nodeName: pod.nodeName },
      });
    }
    return this.fail(res, 404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
  }

  private list(res: ServerResponse): void {
    this.send(res, 200, {
      kind: 'NodeList',
      apiVersion: 'v1',
      metadata: { resourceVersion: String(this.rv) },
      items: [...this.nodes.values()],
    });
  }

  private get(res: ServerResponse, name: string): void {
    const n = this.nodes.get(name);
    if (!n) return this.fail(res, 404, 'NotFound', `nodes "${name}" not found`);
    this.send(res, 200, n);
  }

  private watch(url: URL, req: IncomingMessage, res: ServerResponse): void {
    const rvText = url.searchParams.get('resourceVersion') ?? '';
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    // Headers go out now, as the real server's do: a client waiting for them must not wait for the first event.
    res.flushHeaders();
    const w: Watcher = { res, bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true' };
    if (rvText === '' || rvText === '0') {
      // "Any" version: the current state as ADDED events, then changes.
      for (const n of this.nodes.values()) res.write(`${JSON.stringify({ type: 'ADDED', object: n })}\n`);
    } else {
      const from = Number(rvText);
      if (!/^\d+$/.test(rvText) || from < this.forgottenUpTo) {
        this.goneCount++;
        const gone = statusBody(410, 'Expired', `too old resource version: ${rvText} (${this.forgottenUpTo + 1})`);
        res.end(`${JSON.stringify({ type: 'ERROR', object: gone })}\n`);
        return;
      }
      for (const ev of this.history)
        if (ev.rv > from) res.write(`${JSON.stringify({ type: ev.type, object: ev.object })}\n`);
    }
    this.watchers.add(w);
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? '0');
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : null;
    timer?.unref();
    const done = () => {
      if (timer) clearTimeout(timer);
      this.watchers.delete(w);
    };
    res.on('close', done);
    req.on('close', done);
  }

  private async body(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  /** POST /api/v1/nodes: 201 with the stored node, 409 AlreadyExists, 400/422 for bodies the real server refuses. */
  private async create(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    const text = await this.body(req);
    if (contentType !== 'application/json') {
      return this.fail(
        res,
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got "${contentType}")`,
      );
    }
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      return this.fail(res, 400, 'BadRequest', `error decoding body: ${(e as Error).message}`);
    }
    let node: ApiNode;
    try {
      node = validateNewNode(obj);
    } catch (e) {
      if (e instanceof NodeCreateError)
        return this.fail(res, e.code, { 400: 'BadRequest', 422: 'Invalid', 500: 'InternalError' }[e.code], e.message);
      throw e;
    }
    const name = node.metadata.name;
    if (this.nodes.has(name)) {
      return this.send(res, 409, {
        ...statusBody(409, 'AlreadyExists', `nodes "${name}" already exists`),
        details: { name, kind: 'nodes' },
      });
    }
    node.metadata.uid = `uid-${++this.uid}`;
    node.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    this.send(res, 201, this.commit('ADDED', node));
  }

  /**
   * DELETE /api/v1/nodes/<name>: nodes have no graceful deletion, so the node goes at once; like the real server the
   * answer is a Success Status naming it (not the object), and DeleteOptions preconditions that do not hold get 409.
   */
  private async remove(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const text = await this.body(req);
    let pre: { uid?: unknown; resourceVersion?: unknown } = {};
    if (text.trim()) {
      try {
        pre = (JSON.parse(text) as { preconditions?: typeof pre })?.preconditions ?? {};
      } catch (e) {
        return this.fail(res, 400, 'BadRequest', `error decoding DeleteOptions: ${(e as Error).message}`);
      }
    }
    const cur = this.nodes.get(name);
    if (!cur)
      return this.send(res, 404, {
        ...statusBody(404, 'NotFound', `nodes "${name}" not found`),
        details: { name, kind: 'nodes' },
      });
    if (pre.uid !== undefined && pre.uid !== cur.metadata.uid) {
      return this.fail(
        res,
        409,
        'Conflict',
        `Precondition failed: UID in precondition: ${String(pre.uid)}, UID in object meta: ${cur.metadata.uid}`,
      );
    }
    if (pre.resourceVersion !== undefined && pre.resourceVersion !== cur.metadata.resourceVersion) {
      return this.fail(
        res,
        409,
        'Conflict',
        `Precondition failed: ResourceVersion in precondition: ${String(pre.resourceVersion)}, ResourceVersion in object meta: ${cur.metadata.resourceVersion}`,
      );
    }
    this.deleteNode(name);
    this.send(res, 200, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name, kind: 'nodes', uid: cur.metadata.uid },
    });
  }

  private async patch(
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    subresource: 'status' | '',
  ): Promise<void> {
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    const text = await this.body(req);
    const type = PATCH_TYPES[contentType];
    if (!type) {
      return this.fail(
        res,
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got "${contentType}")`,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      return this.fail(res, 400, 'BadRequest', `error decoding patch: ${(e as Error).message}`);
    }
    const cur = this.nodes.get(name);
    if (!cur) return this.fail(res, 404, 'NotFound', `nodes "${name}" not found`);
    const wantRv = (body as { metadata?: { resourceVersion?: unknown } })?.metadata?.resourceVersion;
    if (wantRv !== undefined && wantRv !== cur.metadata.resourceVersion) {
      return this.fail(
        res,
        409,
        'Conflict',
        `Operation cannot be fulfilled on nodes "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    let next: ApiNode;
    try {
      next = applyPatch(cur, body, type, subresource) as ApiNode;
    } catch (e) {
      if (e instanceof PatchError) return this.fail(res, 422, 'Invalid', e.message);
      throw e;
    }
    if (subresource === '') {
      const bad = normalizePodCIDRs(next.spec) ?? podCIDRChange(cur.spec, next.spec);
      if (bad) return this.fail(res, 422, 'Invalid', `Node "${name}" is invalid: ${bad}`);
    }
    this.patches.push({ node: name, subresource, contentType, body });
    // A patch that changes nothing does not bump the resourceVersion (and sends no watch event).
    const { resourceVersion: _a, ...before } = cur.metadata;
    const { resourceVersion: _b, ...after } = next.metadata;
    const same = JSON.stringify([before, cur.spec, cur.status]) === JSON.stringify([after, next.spec, next.status]);
    this.send(res, 200, same ? cur : this.commit('MODIFIED', next));
  }
}
