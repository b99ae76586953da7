// flanneld's --etcd-* TLS and auth flags against a real etcd (loopback only, own CA made with openssl), and the log
// lines of an etcd that is unreachable or frozen.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdSubnetManager, type EtcdSubnetManagerOptions } from '../../src/subnet/etcd/manager.ts';
import type { LeaseAttrs, LeaseEvent } from '../../src/subnet/lease.ts';
import { etcdMissing, freePort, startEtcd, type EtcdHandle } from '../helpers/etcd.ts';
import { LogRecorder } from '../helpers/log.ts';
import { findTool, missingToolMessage } from '../helpers/tools.ts';
import { until, within } from '../helpers/wait.ts';

const PREFIX = '/coreos.com/network';
const CONFIG = '{"Network":"10.6.0.0/16","Backend":{"Type":"vxlan"}}';
const ATTRS: LeaseAttrs = {
  publicIP: '192.0.2.7',
  publicIPv6: null,
  backendType: 'vxlan',
  backendData: { VNI: 1, VtepMAC: '02:00:00:00:00:07' },
};
const skip =
  etcdMissing ||
  (findTool('openssl') ? false : missingToolMessage('openssl')) ||
  (findTool('etcdctl') ? false : missingToolMessage('etcdctl'));

interface Certs {
  dir: string;
  ca: string;
  otherCA: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** A CA, a server certificate for IP 127.0.0.1 and a client certificate, plus an unrelated CA; EC P-256, 1 day. */
function makeCerts(dir: string): Certs {
  const p = (f: string) => join(dir, f);
  const openssl = (...args: string[]) =>
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  for (const ca of ['ca', 'other-ca']) {
    openssl(
      'req',
      '-x509',
      ...key,
      '-keyout',
      p(`${ca}.key`),
      '-out',
      p(`${ca}.pem`),
      '-days',
      '1',
      '-subj',
      `/CN=flannel-test-${ca}`,
      ...caExt,
    );
  }
  const sign = (name: string, cn: string, ext: string) => {
    writeFileSync(p(`${name}.ext`), ext);
    openssl('req', ...key, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${cn}`);
    openssl(
      'x509',
      '-req',
      '-in',
      p(`${name}.csr`),
      '-CA',
      p('ca.pem'),
      '-CAkey',
      p('ca.key'),
      '-CAcreateserial',
      '-out',
      p(`${name}.pem`),
      '-days',
      '1',
      '-extfile',
      p(`${name}.ext`),
    );
  };
  sign('server', 'etcd', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  sign('client', 'flannel', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: p('ca.pem'),
    otherCA: p('other-ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
  };
}

describe('etcd over TLS, with auth, unreachable and frozen', { skip }, () => {
  let certs: Certs;
  const log = new LogRecorder();
  const managers: EtcdSubnetManager[] = [];
  const etcds: EtcdHandle[] = [];
  const stop = new AbortController();

  before(() => {
    certs = makeCerts(mkdtempSync(join(tmpdir(), 'flannel-etcd-tls-')));
  });

  after(async () => {
    stop.abort();
    log.stop();
    for (const m of managers) await m.close();
    for (const e of etcds) {
      if (e.pid !== undefined) process.kill(e.pid, 'SIGCONT');
      await e.destroy();
    }
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  const etcd = async (opts: Parameters<typeof startEtcd>[0]): Promise<EtcdHandle> => {
    const e = await startEtcd(opts);
    etcds.push(e);
    return e;
  };

  const manager = (e: { endpoint: string }, extra: Partial<EtcdSubnetManagerOptions> = {}): EtcdSubnetManager => {
    const m = new EtcdSubnetManager({ endpoints: [e.endpoint], prefix: PREFIX, renewMarginMinutes: 60, ...extra });
    managers.push(m);
    return m;
  };

  /** getNetworkConfig until its first "Couldn't fetch" line that matches `re`, then aborts it; returns the line. */
  const configFailure = async (m: EtcdSubnetManager, re: RegExp): Promise<string> => {
    const from = log.lines.length;
    const abort = new AbortController();
    const done = m.getNetworkConfig(AbortSignal.any([abort.signal, stop.signal])).catch(() => undefined);
    try {
      return await until(
        `a "Couldn't fetch network config" line matching ${re}; log:\n${log.lines.slice(from).join('\n')}`,
        () => log.lines.slice(from).find((l) => l.includes("Couldn't fetch network config") && re.test(l)),
        15_000,
        50,
      );
    } finally {
      abort.abort();
      await done;
    }
  };

  const linesSince = (from: number) => log.lines.slice(from).join('\n');
  /** Milliseconds of the day of a klog line (`W1202 06:14:23.045000 …`). */
  const klogTime = (line: string): number | undefined => {
    const m = /^[IWE]\d{4} (\d\d):(\d\d):(\d\d)\.(\d{3})/.exec(line);
    return m ? ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4]) : undefined;
  };

  describe('client-certificate auth (--client-cert-auth)', () => {
    let e: EtcdHandle;
    before(async () => {
      e = await etcd({
        tls: { certFile: certs.serverCert, keyFile: certs.serverKey, clientCAFile: certs.ca },
        etcdctlTls: { caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey },
      });
      e.etcdctl('put', `${PREFIX}/config`, CONFIG);
    });

    it('reads the config and acquires a lease with --etcd-cafile, --etcd-certfile and --etcd-keyfile', async () => {
      const m = manager(e, { caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey });
      const config = await within(15_000, 'the config', m.getNetworkConfig(stop.signal));
      assert.equal(config.network?.toString(), '10.6.0.0/16');
      const lease = await within(15_000, 'a lease', m.acquireLease(ATTRS, stop.signal));
      assert.match(e.etcdctl('get', m.registry.subnetKey(lease), '--print-value-only'), /"PublicIP":"192\.0\.2\.7"/);
    });

    it('without a client certificate says that etcd wants one and which flags give it', async () => {
      const line = await configFailure(manager(e, { caFile: certs.ca }), /is unreachable/);
      assert.match(
        line,
        new RegExp(
          `etcd at ${e.endpoint} is unreachable: it refused the TLS handshake \\(.*bad certificate.*\\): it wants a client certificate; pass --etcd-certfile and --etcd-keyfile; retrying in 1s$`,
        ),
      );
    });
  });

  describe('server-only TLS', () => {
    let e: EtcdHandle;
    before(async () => {
      e = await etcd({
        tls: { certFile: certs.serverCert, keyFile: certs.serverKey },
        etcdctlTls: { caFile: certs.ca },
      });
      e.etcdctl('put', `${PREFIX}/config`, CONFIG);
    });

    it('verifies etcd with --etcd-cafile alone (no client certificate)', async () => {
      const m = manager(e, { caFile: certs.ca });
      const config = await within(15_000, 'the config', m.getNetworkConfig(stop.signal));
      assert.equal(config.network?.toString(), '10.6.0.0/16');
      await within(15_000, 'a lease', m.acquireLease({ ...ATTRS, publicIP: '192.0.2.8' }, stop.signal));
    });

    it("names --etcd-cafile when its CA did not sign etcd's certificate, and never the circuit breaker", async () => {
      const from = log.lines.length;
      const m = manager(e, { caFile: certs.otherCA });
      const first = await configFailure(m, /is unreachable/);
      assert.match(
        first,
        new RegExp(
          `etcd at ${e.endpoint} is unreachable: its TLS certificate does not verify against the CA in --etcd-cafile=${certs.otherCA} \\(unable to verify the first certificate\\)`,
        ),
      );
      // Later attempts find the endpoint resting after the failures: still the same cause, with a longer interval.
      const later = await configFailure(m, /retrying in [248]s$/);
      assert.match(later, /does not verify against the CA in --etcd-cafile=.*other-ca\.pem/);
      assert.doesNotMatch(linesSince(from), /circuit breaker/);
    });

    it('without --etcd-cafile verifies against the system roots and says so', async () => {
      const line = await configFailure(manager(e), /is unreachable/);
      assert.match(
        line,
        /its TLS certificate does not verify against the system's CA roots \(unable to verify the first certificate\); pass the CA that signed it with --etcd-cafile/,
      );
    });

    it('says to use https:// when an http:// endpoint meets its TLS port', async () => {
      const plain = e.endpoint.replace('https://', 'http://');
      const m = new EtcdSubnetManager({ endpoints: [plain], prefix: PREFIX, renewMarginMinutes: 60 });
      managers.push(m);
      const line = await configFailure(m, /is unreachable/);
      assert.match(
        line,
        new RegExp(
          `etcd at ${plain} is unreachable: the connection closed before any HTTP/2 answer to /etcdserverpb\\.KV/Range; if etcd serves TLS, use an https:// endpoint`,
        ),
      );
    });
  });

  describe('etcd auth (over server-only TLS)', () => {
    let e: EtcdHandle;
    before(async () => {
      e = await etcd({
        tls: { certFile: certs.serverCert, keyFile: certs.serverKey },
        etcdctlTls: { caFile: certs.ca },
        auth: {
          rootPassword: 'root-secret',
          users: [{ name: 'flannel', password: 'flannel-secret', prefix: `${PREFIX}/` }],
        },
      });
      e.etcdctl('put', `${PREFIX}/config`, CONFIG);
      e.etcdctl('put', '/other/network/config', CONFIG);
    });

    it('reads the config and acquires a lease under the prefix with --etcd-username and --etcd-password', async () => {
      const m = manager(e, { caFile: certs.ca, username: 'flannel', password: 'flannel-secret' });
      const config = await within(15_000, 'the config', m.getNetworkConfig(stop.signal));
      assert.equal(config.network?.toString(), '10.6.0.0/16');
      const lease = await within(15_000, 'a lease', m.acquireLease({ ...ATTRS, publicIP: '192.0.2.9' }, stop.signal));
      assert.match(e.etcdctl('get', m.registry.subnetKey(lease), '--print-value-only'), /"PublicIP":"192\.0\.2\.9"/);
    });

    it('is refused outside the prefix', async () => {
      const m = manager(e, {
        caFile: certs.ca,
        username: 'flannel',
        password: 'flannel-secret',
        prefix: '/other/network',
      });
      const line = await configFailure(m, /permission denied/);
      assert.match(line, new RegExp(`etcd at ${e.endpoint} denied user "flannel" access \\(permission denied\\)`));
      await assert.rejects(m.client.put('/other/key', 'x'), /permission denied/);
    });

    it('refuses a wrong password, naming the user and the flags', async () => {
      const line = await configFailure(
        manager(e, { caFile: certs.ca, username: 'flannel', password: 'wrong' }),
        /refused/,
      );
      assert.match(
        line,
        new RegExp(
          `etcd at ${e.endpoint} refused user "flannel": authentication failed, invalid user name or password; check --etcd-username and --etcd-password; retrying in 1s$`,
        ),
      );
    });
  });

  describe('flag errors', () => {
    const make = (extra: Partial<EtcdSubnetManagerOptions>) => () =>
      manager({ endpoint: 'https://127.0.0.1:2379' }, extra);

    it('wants --etcd-keyfile and --etcd-certfile together', () => {
      assert.throws(
        make({ keyFile: certs.clientKey }),
        /--etcd-keyfile is given without --etcd-certfile: .*pass --etcd-certfile and --etcd-keyfile, or neither/,
      );
      assert.throws(
        make({ certFile: certs.clientCert, caFile: certs.ca }),
        /--etcd-certfile is given without --etcd-keyfile: .*pass --etcd-certfile and --etcd-keyfile, or neither/,
      );
    });

    it('names the file that is no PEM certificate or key, or whose key does not match', () => {
      assert.throws(
        make({ caFile: certs.clientKey }),
        new RegExp(`--etcd-cafile ${certs.clientKey}: not a PEM certificate`),
      );
      assert.throws(
        make({ certFile: certs.clientKey, keyFile: certs.clientCert }),
        new RegExp(`--etcd-certfile ${certs.clientKey}: not a PEM certificate`),
      );
      assert.throws(
        make({ certFile: certs.clientCert, keyFile: certs.serverKey }),
        new RegExp(`--etcd-keyfile ${certs.serverKey} is not the key of --etcd-certfile ${certs.clientCert}`),
      );
    });
  });

  describe('an unreachable or frozen etcd', () => {
    it('names the unreachable endpoint and its cause, backing off 1 s, 2 s, 4 s', async () => {
      const endpoint = `http://127.0.0.1:${await freePort()}`;
      const from = log.lines.length;
      const m = manager({ endpoint }, { waitLogIntervalMs: 1000 });
      const line = await configFailure(m, /retrying in 4s$/);
      assert.match(
        line,
        new RegExp(
          `Couldn't fetch network config: etcd at ${endpoint} is unreachable: connect ECONNREFUSED 127\\.0\\.0\\.1:\\d+`,
        ),
      );
      const text = linesSince(from);
      assert.match(
        text,
        /is unreachable: connect ECONNREFUSED [^\n]*; retrying in 1s\n[^\n]*is unreachable: connect ECONNREFUSED [^\n]*; retrying in 2s\n/,
      );
      assert.doesNotMatch(text, /circuit breaker/);
      assert.doesNotMatch(text, /waiting for etcd/, 'a refused connection fails at once: nothing to wait for');
    });

    it('logs that it waits for a frozen etcd (SIGSTOP), then carries on when it answers again', async () => {
      const e = await etcd({});
      e.etcdctl('put', `${PREFIX}/config`, CONFIG);
      const m = manager(e, { callTimeoutMs: 2500, waitLogIntervalMs: 1000 });
      await within(10_000, 'the config', m.getNetworkConfig(stop.signal));
      const from = log.lines.length;
      process.kill(e.pid!, 'SIGSTOP');
      try {
        const pending = m.getNetworkConfig(stop.signal);
        const waiting = new RegExp(`waiting for etcd at ${e.endpoint} \\(no answer for \\d+s\\)`);
        await until(
          `two waiting lines; log:\n${linesSince(from)}`,
          () => log.lines.slice(from).filter((l) => waiting.test(l)).length >= 2,
          10_000,
          100,
        );
        await until(
          `the timeout named; log:\n${linesSince(from)}`,
          () => /etcd at [^\n]* is unreachable: no answer within \d+s; retrying in 1s/.test(linesSince(from)),
          15_000,
          100,
        );
        // Through the 5 s the endpoint rests (calls fail at once) and the trial call after it: never silent for
        // longer than the retry interval (4 s at most here) plus one waiting-line interval.
        await until(
          `a line after "retrying in 4s"; log:\n${linesSince(from)}`,
          () => /retrying in 4s\n./.test(linesSince(from)),
          15_000,
          100,
        );
        const times = log.lines
          .slice(from)
          .map(klogTime)
          .filter((t) => t !== undefined);
        const gaps = times.slice(1).map((t, i) => t - times[i]!);
        assert.ok(Math.max(...gaps) <= 5500, `gaps ${gaps} ms; log:\n${linesSince(from)}`);
        process.kill(e.pid!, 'SIGCONT');
        const config = await within(25_000, 'the config after SIGCONT', pending);
        assert.equal(config.network?.toString(), '10.6.0.0/16');
      } finally {
        process.kill(e.pid!, 'SIGCONT');
      }
    });

    it('notices a frozen etcd under an idle watch (HTTP/2 keepalive) and logs while it waits', async () => {
      const e = await etcd({});
      e.etcdctl('put', `${PREFIX}/config`, CONFIG);
      const m = manager(e, { callTimeoutMs: 2500, waitLogIntervalMs: 1000 });
      const own = await within(
        10_000,
        'a lease',
        (async () => {
          await m.getNetworkConfig(stop.signal);
          return m.acquireLease({ ...ATTRS, publicIP: '192.0.2.10' }, stop.signal);
        })(),
      );
      const watching = new AbortController();
      const events = m.watchLeases(own, AbortSignal.any([watching.signal, stop.signal]))[Symbol.asyncIterator]();
      await within(10_000, 'the first snapshot', events.next());
      // An event through the watch: the watch stream is up.
      e.etcdctl(
        'put',
        `${PREFIX}/subnets/10.6.200.0-24`,
        '{"PublicIP":"192.0.2.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:0b"}}',
      );
      const added = await within(10_000, 'the added event', events.next());
      assert.deepEqual(
        (added.value as LeaseEvent[]).map((ev) => `${ev.type} ${ev.lease.subnet}`),
        ['added 10.6.200.0/24'],
      );
      void events.next().catch(() => undefined);
      const from = log.lines.length;
      process.kill(e.pid!, 'SIGSTOP');
      try {
        // keepalive: a ping 7 s after the last one, 3 s for its answer; then the listing waits and says so.
        await until(
          `the watch disconnected; log:\n${linesSince(from)}`,
          () => /watch of subnet leases disconnected/.test(linesSince(from)),
          15_000,
          100,
        );
        await until(
          `a waiting line; log:\n${linesSince(from)}`,
          () => new RegExp(`waiting for etcd at ${e.endpoint} \\(no answer for \\d+s\\)`).test(linesSince(from)),
          10_000,
          100,
        );
      } finally {
        process.kill(e.pid!, 'SIGCONT');
        watching.abort();
        await events.return?.(undefined);
      }
    });
  });
});
