// The four Kubernetes calls flannel makes (get/list/watch nodes, patch node status, get pod), over
// @kubernetes/client-node. Imported lazily: the library costs ~0.6 s to load, which etcd mode should not pay.
import { existsSync } from 'node:fs';
import { request as httpRequest, type Agent } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeNode } from './node.ts';

type K8s = typeof import('@kubernetes/client-node');

export interface KubeClientOptions {
  /** `--kube-api-url`; overrides the kubeconfig's server. */
  apiUrl?: string;
  /** `--kubeconfig-file`; with neither, the in-cluster service account is used. */
  kubeconfigFile?: string;
}

export type WatchEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'; object: any };

/** An API error with the HTTP status (404, 410, …); `code` 0 when the request never got an answer. */
export class KubeApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

export interface NodeApi {
  readonly server: string;
  getNode(name: string): Promise<KubeNode | null>;
  listNodes(): Promise<{ items: KubeNode[]; resourceVersion: string }>;
  /** Streams watch events from `resourceVersion` until the server ends the stream, it fails, or `signal` aborts. */
  watchNodes(
    resourceVersion: string,
    onEvent: (ev: WatchEvent) => void,
    signal: AbortSignal,
    timeoutSeconds: number,
  ): Promise<void>;
  /** Strategic-merge patch of the nodes/status subresource. */
  patchNodeStatus(name: string, body: object): Promise<void>;
  podNodeName(namespace: string, pod: string): Promise<string | undefined>;
}

function toApiError(e: unknown, what: string): KubeApiError {
  const err = e as { code?: number; statusCode?: number; body?: unknown; message?: string };
  const status = typeof err.code === 'number' ? err.code : typeof err.statusCode === 'number' ? err.statusCode : 0;
  let detail = err.message ?? String(e);
  if (err.body && typeof err.body === 'object' && 'message' in err.body)
    detail = String((err.body as { message: unknown }).message);
  else if (typeof err.body === 'string' && err.body) detail = err.body;
  return new KubeApiError(`${what}: ${status ? `HTTP ${status}: ` : ''}${detail.split('\n')[0]}`, status);
}

/** Keeps what flannel reads; the generated client turns dates into Date objects we do not need. */
function plainNode(n: any): KubeNode {
  const out: KubeNode = {
    metadata: {
      name: n.metadata?.name ?? '',
      resourceVersion: n.metadata?.resourceVersion,
      annotations: n.metadata?.annotations ?? {},
    },
    spec: { podCIDR: n.spec?.podCIDR, podCIDRs: n.spec?.podCIDRs },
  };
  return out;
}

async function loadConfig(k8s: K8s, o: KubeClientOptions): Promise<InstanceType<K8s['KubeConfig']>> {
  const kc = new k8s.KubeConfig();
  if (o.kubeconfigFile) {
    if (!existsSync(o.kubeconfigFile)) throw new Error(`--kubeconfig-file ${o.kubeconfigFile} does not exist`);
    kc.loadFromFile(o.kubeconfigFile);
    if (o.apiUrl) {
      const cur = kc.getCurrentCluster();
      if (!cur) throw new Error(`--kubeconfig-file ${o.kubeconfigFile} has no current cluster`);
      const clusters = kc.clusters.map((c) =>
        c.name === cur.name
          ? { ...c, server: o.apiUrl!, skipTLSVerify: c.skipTLSVerify || o.apiUrl!.startsWith('http:') }
          : c,
      );
      kc.loadFromOptions({ clusters, users: kc.users, contexts: kc.contexts, currentContext: kc.currentContext });
    }
  } else if (o.apiUrl) {
    // The client refuses plain http unless TLS checks are off; there is no TLS to check on http.
    kc.loadFromOptions({
      clusters: [{ name: 'flannel', server: o.apiUrl, skipTLSVerify: o.apiUrl.startsWith('http:') }],
      users: [{ name: 'flannel' }],
      contexts: [{ name: 'flannel', cluster: 'flannel', user: 'flannel' }],
      currentContext: 'flannel',
    });
  } else {
    if (!process.env.KUBERNETES_SERVICE_HOST || !process.env.KUBERNETES_SERVICE_PORT) {
      throw new Error(
        'no --kubeconfig-file or --kube-api-url given and not running in a pod (KUBERNETES_SERVICE_HOST/PORT unset): pass one of them',
      );
    }
    kc.loadFromCluster();
  }
  return kc;
}

/**
 * GETs `url` and feeds each line of the (chunked) body to `onLine`. Resolves when the server ends the body properly
 * or `signal` aborts; rejects on HTTP errors and on a connection cut mid-stream.
 */
function streamLines(
  url: URL,
  agent: Agent | undefined,
  headers: Record<string, string>,
  signal: AbortSignal,
  onLine: (line: string) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) return resolve();
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      agent,
      headers: { ...headers, Accept: 'application/json' },
    });
    let settled = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (err && !signal.aborted) reject(err);
      else resolve();
      req.destroy();
    };
    const onAbort = () => settle();
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', (e) => settle(new KubeApiError(`watch nodes: ${e.message}`, 0)));
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c.slice(0, 1000)));
        res.on('end', () =>
          settle(new KubeApiError(`watch nodes: HTTP ${res.statusCode}: ${body.slice(0, 300)}`, res.statusCode ?? 0)),
        );
        res.on('error', () => settle(new KubeApiError(`watch nodes: HTTP ${res.statusCode}`, res.statusCode ?? 0)));
        return;
      }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          try {
            onLine(line);
          } catch (e) {
            return settle(e as Error);
          }
        }
      });
      res.on('end', () => settle());
      // 'aborted'/'close' without 'end': the connection was cut.
      res.on('aborted', () => settle(new KubeApiError('watch nodes: connection closed mid-stream', 0)));
      res.on('close', () =>
        settle(res.complete ? undefined : new KubeApiError('watch nodes: connection closed mid-stream', 0)),
      );
      res.on('error', (e) => settle(new KubeApiError(`watch nodes: ${e.message}`, 0)));
    });
    req.end();
  });
}

export async function createNodeApi(o: KubeClientOptions): Promise<NodeApi> {
  const k8s: K8s = await import('@kubernetes/client-node');
  const kc = await loadConfig(k8s, o);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const smp = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);
  const server = kc.getCurrentCluster()?.server ?? '';
  return {
    server,
    async getNode(name) {
      try {
        return plainNode(await core.readNode({ name }));
      } catch (e) {
        const err = toApiError(e, `get node ${name}`);
        if (err.status === 404) return null;
        throw err;
      }
    },
    async listNodes() {
      try {
        const list = await core.listNode();
        return { items: list.items.map(plainNode), resourceVersion: list.metadata?.resourceVersion ?? '' };
      } catch (e) {
        throw toApiError(e, 'list nodes');
      }
    },
    async watchNodes(resourceVersion, onEvent, signal, timeoutSeconds) {
      // Our own request rather than the library's Watch: it reports a cut connection as a clean end, and a cut
      // means missed events (list again) while a clean end only means "resume from the last resourceVersion".
      // The kubeconfig's credentials (token, client cert, CA) as node:http(s) options: an agent plus headers.
      const init: RequestOptions = {};
      await kc.applyToHTTPSOptions(init);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(init.headers ?? {})) if (v !== undefined) headers[k] = String(v);
      if (init.auth) headers.Authorization = `Basic ${Buffer.from(init.auth).toString('base64')}`;
      const url = new URL(`${server.replace(/\/$/, '')}/api/v1/nodes`);
      url.searchParams.set('watch', 'true');
      url.searchParams.set('resourceVersion', resourceVersion);
      url.searchParams.set('allowWatchBookmarks', 'true');
      url.searchParams.set('timeoutSeconds', String(timeoutSeconds));
      await streamLines(url, init.agent as Agent | undefined, headers, signal, (line) => {
        let ev: WatchEvent;
        try {
          ev = JSON.parse(line) as WatchEvent;
        } catch {
          throw new KubeApiError(`watch nodes: undecodable event ${JSON.stringify(line.slice(0, 100))}`, 0);
        }
        onEvent(ev);
      });
    },
    async patchNodeStatus(name, body) {
      try {
        await core.patchNodeStatus({ name, body }, smp);
      } catch (e) {
        throw toApiError(e, `patch node ${name} status`);
      }
    },
    async podNodeName(namespace, pod) {
      try {
        return (await core.readNamespacedPod({ name: pod, namespace })).spec?.nodeName;
      } catch (e) {
        throw toApiError(e, `get pod ${namespace}/${pod}`);
      }
    },
  };
}

export { plainNode };
