// `flannelctl peers`: flanneld's per-peer status (`GET /peers` on its health server) as a table; exit 1 when a peer
// failed, so scripts and probes can use it.
import { spawnSync } from 'node:child_process';
import type { PeerStatus } from '../backend/backend.ts';
import { isObject } from '../util/json.ts';

/** Where flanneld's health server listens when run like deploy/kube-flannel.yml (`--healthz-port=8081`). */
export const DEFAULT_PEERS_URL = 'http://127.0.0.1:8081';
const TIMEOUT_MS = 5000;

export interface PeersReport {
  backend: string;
  peers: PeerStatus[];
}

/** `--url http://host:port` (or host:port, or the full …/peers URL) → the /peers URL. */
export function peersUrl(base: string): URL {
  let u: URL;
  try {
    u = new URL(base.includes('://') ? base : `http://${base}`);
  } catch {
    throw new Error(`--url ${base}: not a URL; give flanneld's health server, e.g. ${DEFAULT_PEERS_URL}`);
  }
  if (u.protocol !== 'http:') throw new Error(`--url ${base}: flanneld's health server speaks plain http://`);
  if (!u.pathname.endsWith('/peers')) u.pathname = `${u.pathname.replace(/\/+$/, '')}/peers`;
  return u;
}

/** Checks the JSON flanneld sent; anything else is named with the URL it came from. */
export function parsePeersReport(body: string, from: string): PeersReport {
  const bad = (why: string) => new Error(`${from} answered something that is not flanneld's peer status (${why})`);
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw bad('not JSON');
  }
  if (!isObject(v) || typeof v.backend !== 'string' || !Array.isArray(v.peers)) throw bad('no backend and peers');
  for (const p of v.peers as unknown[]) {
    const ok =
      isObject(p) &&
      typeof p.subnet === 'string' &&
      typeof p.publicIP === 'string' &&
      (p.state === 'programmed' || p.state === 'failed') &&
      typeof p.since === 'string' &&
      (p.reason === undefined || typeof p.reason === 'string');
    if (!ok) throw bad(`peer ${JSON.stringify(p)}`);
  }
  return v as unknown as PeersReport;
}

/** SUBNET, PUBLIC IP, STATE, SINCE, REASON; columns padded to their widest cell, REASON last and unpadded. */
export function formatPeersTable(peers: PeerStatus[]): string {
  const rows = [
    ['SUBNET', 'PUBLIC IP', 'STATE', 'SINCE', 'REASON'],
    // Seconds are precise enough to line up with the log lines.
    ...peers.map((p) => [p.subnet, p.publicIP, p.state, p.since.replace(/\.\d+Z$/, 'Z'), p.reason ?? '']),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return `${rows
    .map((r) =>
      r
        .map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]!) : c))
        .join('   ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

/** One GET of flanneld's /peers, with errors that say what to check. */
export async function fetchPeers(base: string): Promise<PeersReport> {
  const url = peersUrl(base);
  const port = url.port || '80';
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    if (err.name === 'TimeoutError') throw new Error(`flanneld at ${url} did not answer within ${TIMEOUT_MS / 1000} s`);
    const why = err.cause?.code ?? err.cause?.message ?? err.message;
    throw new Error(
      `cannot reach flanneld at ${url} (${why}): is flanneld running with --healthz-port=${port}, on an address this host reaches (--healthz-ip)?`,
    );
  }
  const body = await res.text();
  if (res.status === 200) return parsePeersReport(body, url.toString());
  let said = '';
  try {
    const answer: unknown = JSON.parse(body);
    if (isObject(answer)) said = String(answer.error ?? '');
  } catch {
    /* not ours: described by the status below */
  }
  if (res.status === 503)
    throw new Error(
      `flanneld at ${url} is not ready yet (${said || 'its network is not running'}); try again in a moment`,
    );
  if (res.status === 404)
    throw new Error(`flanneld at ${url} has no /peers (404): an older flanneld, or not flanneld at all?`);
  throw new Error(`flanneld at ${url} answered ${res.status}${said ? `: ${said}` : ''}`);
}

export interface PeersOutput {
  out(text: string): void;
  err(text: string): void;
}

const stdio: PeersOutput = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

/** `flannelctl peers [--url U]`: the table on stdout, a summary of failures on stderr; 1 when any peer failed. */
export async function runPeers(url: string, io: PeersOutput = stdio): Promise<number> {
  const r = await fetchPeers(url);
  if (r.peers.length === 0) {
    io.err(`flanneld (${r.backend}) has no peers yet: it knows no other host's lease\n`);
    return 0;
  }
  io.out(formatPeersTable(r.peers));
  const failed = r.peers.filter((p) => p.state === 'failed').length;
  if (failed > 0) io.err(`flannelctl: ${failed} of ${r.peers.length} ${r.backend} peers failed; see REASON\n`);
  return failed > 0 ? 1 : 0;
}

/**
 * `flannelctl lab peers <host>`: the same command, run by this very flannelctl inside the host's namespace, where
 * flanneld's health server listens on loopback. `self` is the argv that starts flannelctl. Returns its exit code.
 */
export function runPeersInNetns(ns: string, port: number, self: string[]): number {
  const args = [...self, 'peers', '--url', `http://127.0.0.1:${port}`];
  const r = spawnSync('ip', ['netns', 'exec', ns, ...args], { stdio: 'inherit', timeout: 3 * TIMEOUT_MS });
  if (r.error) throw new Error(`running flannelctl peers in ${ns} failed: ${r.error.message}`);
  return r.status ?? 1;
}
