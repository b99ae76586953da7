// Fixtures for KubeSubnetManager tests against the in-process fake API server: a temp dir with net-conf.json and
// kubeconfig files, a manager factory that closes everything it made, and a describe block's server with both.
import { after, before } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeApiServer, type NodeInit } from '../../src/lab/kube-api/server.ts';
import { KubeSubnetManager, type KubeSubnetManagerOptions } from '../../src/subnet/kube/manager.ts';

/**
 * Writes a kubeconfig at `file` for `server` with bearer `token` for user `user` and returns `file`. TLS verification
 * is off: client-node refuses plain http otherwise, and the fake server speaks only plain HTTP.
 */
export function writeKubeconfig(file: string, server: string, token: string, user = 't'): string {
  const lines = ['apiVersion: v1', 'kind: Config', 'current-context: t', 'clusters:', '- name: t', '  cluster:'];
  lines.push(`    server: ${server}`, '    insecure-skip-tls-verify: true', 'users:', `- name: ${user}`, '  user:');
  lines.push(`    token: ${token}`, 'contexts:', '- name: t', '  context:', '    cluster: t', `    user: ${user}`, '');
  writeFileSync(file, lines.join('\n'), { mode: 0o600 });
  return file;
}

/** A reader of a watch response's newline-delimited JSON events: `events(n)` waits up to 3 s for the first n. */
export function watchEvents(res: Response): (n: number) => Promise<any[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  return async (n) => {
    const deadline = Date.now() + 3000;
    while (text.split('\n').filter(Boolean).length < n && Date.now() < deadline) {
      const { done, value } = await reader.read();
      if (done) break; // the server ended the watch: no more events will come
      text += decoder.decode(value, { stream: true });
    }
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  };
}

/** A temp dir holding `net-conf.json` (the given JSON) and kubeconfig files written on demand. */
export function kubeDir(prefix: string, netConfJson: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const netConf = join(dir, 'net-conf.json');
  writeFileSync(netConf, netConfJson);
  return {
    dir,
    netConf,
    /** Writes a kubeconfig for `server` with bearer `token` (insecure TLS) and returns its path. */
    kubeconfig(server: string, token: string): string {
      return writeKubeconfig(join(dir, `kubeconfig-${Math.random().toString(36).slice(2)}`), server, token);
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Creates managers from `base()` (read at each call, so it may name a kubeconfig written in `before`) plus
 * per-call overrides; `close` aborts `stop` and closes all still open.
 */
function kubeManagers(base: () => KubeSubnetManagerOptions) {
  const managers: KubeSubnetManager[] = [];
  const stop = new AbortController();
  return {
    stop,
    make: async (over: Partial<KubeSubnetManagerOptions> = {}) => {
      const m = await KubeSubnetManager.create({ retryIntervalMs: 100, retryTimeoutMs: 1000, ...base(), ...over });
      managers.push(m);
      return m;
    },
    /** Closes the managers made so far; later `make` calls start a new set. */
    closeMade: async () => {
      for (const m of managers.splice(0)) await m.close();
    },
    close: async () => {
      stop.abort();
      for (const m of managers.splice(0)) await m.close();
    },
  };
}

/**
 * For the describe block it is called in: a fake API server (bookmarks every 500 ms) that listens and holds `nodes`
 * from `before` on, and kubeManagers for `nodeName` with `kd`'s net-conf.json and a kubeconfig with `token`; `after`
 * closes the managers, then the server.
 */
export function kubeSuite(
  kd: ReturnType<typeof kubeDir>,
  o: { token: string; nodeName: string; nodes: NodeInit[]; setNodeNetworkUnavailable: boolean },
) {
  const server = new KubeApiServer({ token: o.token, bookmarkIntervalMs: 500 });
  let url = '';
  let cfg = '';
  const managers = kubeManagers(() => ({
    kubeconfigFile: cfg,
    nodeName: o.nodeName,
    netConfigPath: kd.netConf,
    annotationPrefix: 'flannel.alpha.coreos.com',
    setNodeNetworkUnavailable: o.setNodeNetworkUnavailable,
  }));
  before(async () => {
    url = await server.listen(0, '127.0.0.1');
    cfg = kd.kubeconfig(url, o.token);
    for (const n of o.nodes) server.addNode(n);
  });
  after(async () => {
    await managers.close();
    await server.close();
  });
  return { server, url: () => url, ...managers };
}
