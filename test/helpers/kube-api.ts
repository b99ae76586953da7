// Fixtures for KubeSubnetManager tests against the in-process fake API server: a temp dir with net-conf.json and
// kubeconfig files, a bounded wait, and a manager factory that closes everything it made.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeSubnetManager, type KubeSubnetManagerOptions } from '../../src/subnet/kube/manager.ts';

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
      const file = join(dir, `kubeconfig-${Math.random().toString(36).slice(2)}`);
      writeFileSync(file, [
        'apiVersion: v1', 'kind: Config', 'current-context: t',
        'clusters:', '- name: t', '  cluster:', `    server: ${server}`, '    insecure-skip-tls-verify: true',
        'users:', '- name: t', '  user:', `    token: ${token}`,
        'contexts:', '- name: t', '  context:', '    cluster: t', '    user: t',
      ].join('\n'));
      return file;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}


/**
 * Creates managers from `base()` (read at each call, so it may name a kubeconfig written in `before`) plus
 * per-call overrides; `close` aborts `stop` and closes all still open.
 */
export function kubeManagers(base: () => KubeSubnetManagerOptions) {
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
