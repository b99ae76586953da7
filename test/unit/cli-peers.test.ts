// `flannelctl peers`: the table, the checks on what flanneld answers, and flanneld's /peers endpoint itself (a real
// HealthServer on loopback, no root needed).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { PeerStatus } from '../../src/backend/backend.ts';
import { fetchPeers, formatPeersTable, parsePeersReport, peersUrl, runPeers } from '../../src/cli/peers.ts';
import { HealthServer } from '../../src/daemon/health.ts';
import { freePort } from '../helpers/etcd.ts';

const FLANNELCTL = join(import.meta.dirname, '../../src/cli/flannelctl.ts');

const ok: PeerStatus = {
  subnet: '10.244.2.0/24',
  publicIP: '192.168.150.12',
  state: 'programmed',
  since: '2025-03-01T10:00:00.123Z',
};
const bad: PeerStatus = {
  subnet: '10.244.13.0/24',
  publicIP: '10.99.0.3',
  state: 'failed',
  reason:
    'the kernel refused the route: network is unreachable (ENETUNREACH); peer 10.99.0.3 is reached through gateway 192.168.150.1, not directly on eth0',
  since: '2025-03-01T10:00:05.900Z',
};

describe('flannelctl peers: table', () => {
  it('pads every column but the last, drops the milliseconds and leaves REASON empty for programmed peers', () => {
    assert.equal(
      formatPeersTable([ok, bad]),
      [
        'SUBNET           PUBLIC IP        STATE        SINCE                  REASON',
        '10.244.2.0/24    192.168.150.12   programmed   2025-03-01T10:00:00Z',
        `10.244.13.0/24   10.99.0.3        failed       2025-03-01T10:00:05Z   ${bad.reason}`,
        '',
      ].join('\n'),
    );
  });

  it('prints only the header for no peers', () => {
    assert.equal(formatPeersTable([]), 'SUBNET   PUBLIC IP   STATE   SINCE   REASON\n');
  });
});

describe('flannelctl peers: input checks', () => {
  it('turns --url into the /peers URL and refuses what is not plain http', () => {
    assert.equal(peersUrl('http://127.0.0.1:8081').toString(), 'http://127.0.0.1:8081/peers');
    assert.equal(peersUrl('http://127.0.0.1:8081/').toString(), 'http://127.0.0.1:8081/peers');
    assert.equal(peersUrl('http://10.0.0.5:9000/peers').toString(), 'http://10.0.0.5:9000/peers');
    assert.equal(peersUrl('127.0.0.1:8081').toString(), 'http://127.0.0.1:8081/peers');
    assert.throws(
      () => peersUrl('https://127.0.0.1:8081'),
      /--url https:\/\/127\.0\.0\.1:8081: flanneld's health server speaks plain http:\/\//,
    );
    assert.throws(
      () => peersUrl('not a url'),
      /--url not a url: not a URL; give flanneld's health server, e.g\. http:\/\/127\.0\.0\.1:8081/,
    );
  });

  it("accepts flanneld's JSON and names the URL when the answer is something else", () => {
    const body = JSON.stringify({ backend: 'host-gw', peers: [ok, bad] });
    assert.deepEqual(parsePeersReport(body, 'http://x/peers'), { backend: 'host-gw', peers: [ok, bad] });
    assert.throws(
      () => parsePeersReport('<html>', 'http://x/peers'),
      /http:\/\/x\/peers answered something that is not flanneld's peer status \(not JSON\)/,
    );
    assert.throws(() => parsePeersReport('{"peers":[]}', 'http://x/peers'), /\(no backend and peers\)/);
    assert.throws(
      () =>
        parsePeersReport(JSON.stringify({ backend: 'host-gw', peers: [{ ...ok, state: 'maybe' }] }), 'http://x/peers'),
      /\(peer \{.*"state":"maybe"/,
    );
  });
});

describe("flanneld's GET /peers and flannelctl peers against it", () => {
  const health = new HealthServer();
  let url: string;
  let peers: PeerStatus[] = [];
  before(async () => {
    const port = await freePort();
    await health.start('127.0.0.1', port);
    url = `http://127.0.0.1:${port}`;
  });
  after(() => health.stop());

  it('answers 503 until the network runs, like /readyz', async () => {
    const res = await fetch(`${url}/peers`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { error: "flanneld's network is not running yet" });
    await assert.rejects(fetchPeers(url), {
      message: `flanneld at ${url}/peers is not ready yet (flanneld's network is not running yet); try again in a moment`,
    });
  });

  it("serves the backend's peers as JSON once the network runs, read-only", async () => {
    health.servePeers('host-gw', { peers: () => peers });
    peers = [ok, bad];
    const res = await fetch(`${url}/peers`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.deepEqual(await res.json(), { backend: 'host-gw', peers: [ok, bad] });
    const post = await fetch(`${url}/peers`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  it('flannelctl peers prints the table, says how many failed and exits 1; 0 when all are programmed', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s) };
    assert.equal(await runPeers(url, io), 1);
    assert.deepEqual(out, [formatPeersTable([ok, bad])]);
    assert.deepEqual(err, ['flannelctl: 1 of 2 host-gw peers failed; see REASON\n']);

    peers = [ok];
    out.length = err.length = 0;
    assert.equal(await runPeers(url, io), 0);
    assert.deepEqual(out, [formatPeersTable([ok])]);
    assert.deepEqual(err, []);

    peers = [];
    out.length = 0;
    assert.equal(await runPeers(url, io), 0);
    assert.deepEqual(out, []);
    assert.deepEqual(err, ["flanneld (host-gw) has no peers yet: it knows no other host's lease\n"]);
  });

  it('says so when the backend keeps no per-peer status', async () => {
    const other = new HealthServer();
    const port = await freePort();
    await other.start('127.0.0.1', port);
    try {
      other.servePeers('vxlan', {});
      const res = await fetch(`http://127.0.0.1:${port}/peers`);
      assert.equal(res.status, 501);
      await assert.rejects(fetchPeers(`http://127.0.0.1:${port}`), {
        message: `flanneld at http://127.0.0.1:${port}/peers answered 501: the vxlan backend does not report per-peer status`,
      });
    } finally {
      await other.stop();
    }
  });

  it('the flannelctl process: table on stdout, exit 1 for a failed peer; a clear error when flanneld is not there; exit 2 for a stray argument', async () => {
    peers = [ok, bad];
    // Async, not spawnSync: the health server answering the child runs in this process.
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const p = spawn(process.execPath, ['--import', 'tsx', FLANNELCTL, ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 20_000,
        });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (b) => (stdout += b));
        p.stderr.on('data', (b) => (stderr += b));
        p.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    const r = await run(['peers', '--url', url]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, formatPeersTable([ok, bad]));

    const closed = await freePort();
    const gone = await run(['peers', `--url=http://127.0.0.1:${closed}`]);
    assert.equal(gone.code, 1);
    assert.equal(gone.stdout, '');
    assert.equal(
      gone.stderr,
      `flannelctl: cannot reach flanneld at http://127.0.0.1:${closed}/peers (ECONNREFUSED): is flanneld running with --healthz-port=${closed}, on an address this host reaches (--healthz-ip)?\n`,
    );

    const stray = spawnSync(process.execPath, ['--import', 'tsx', FLANNELCTL, 'peers', 'h1'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(stray.status, 2);
    assert.match(stray.stderr, /^flannelctl: peers: unexpected argument h1\nUsage: flannelctl peers \[--url URL\]\n/);
  });
});
