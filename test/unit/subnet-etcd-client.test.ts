import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdClientConfig, etcdErrorContext } from '../../src/subnet/etcd/client.ts';
import {
  EtcdDeadlineError,
  EtcdEndpointDownError,
  EtcdServerError,
  EtcdUnreachableError,
  isRecoverable,
} from '../../src/subnet/etcd/errors.ts';
import { SilenceWatch, endpointBreaker, retryPolicy } from '../../src/subnet/etcd/fault-handling.ts';
import { LogRecorder } from '../helpers/log.ts';

const REFUSED = 'connect ECONNREFUSED 127.0.0.1:2379';
const refused = () => new EtcdUnreachableError('http://e:2379', REFUSED);
const deadline = () => new EtcdDeadlineError('http://e:2379', 10_000);
const denied = () => new EtcdServerError('http://e:2379', 7, 'etcdserver: permission denied');

describe('etcd client options', () => {
  let dir: string;
  const f = (name: string) => join(dir, name);
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flannel-etcd-client-'));
    for (const name of ['key.pem', 'cert.pem', 'ca.pem']) writeFileSync(f(name), `-----${name}-----\n`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('uses the endpoints, trimmed, and rejects malformed, empty or mixed-scheme ones', () => {
    assert.deepEqual(etcdClientConfig({ endpoints: ['http://127.0.0.1:4001', ' http://127.0.0.1:2379 '] }).endpoints, [
      'http://127.0.0.1:4001',
      'http://127.0.0.1:2379',
    ]);
    assert.throws(() => etcdClientConfig({ endpoints: [] }), /--etcd-endpoints is empty/);
    assert.throws(
      () => etcdClientConfig({ endpoints: ['127.0.0.1:2379'] }),
      /"127\.0\.0\.1:2379" is not an endpoint; use the form http:\/\/host:port/,
    );
    assert.throws(
      () => etcdClientConfig({ endpoints: ['https://a:2379', 'http://b:2379'] }),
      /--etcd-endpoints mixes http:\/\/ and https:\/\/ endpoints \(https:\/\/a:2379,http:\/\/b:2379\)/,
    );
  });

  it('verifies etcd with --etcd-cafile alone, and adds a client certificate when key and cert are given', () => {
    const caOnly = etcdClientConfig({ endpoints: ['https://e:2379'], caFile: f('ca.pem') }).tls;
    assert.equal(caOnly?.ca?.toString(), '-----ca.pem-----\n');
    assert.equal(caOnly?.key, undefined);
    assert.equal(caOnly?.cert, undefined);
    const all = etcdClientConfig({
      endpoints: ['https://e:2379'],
      keyFile: f('key.pem'),
      certFile: f('cert.pem'),
      caFile: f('ca.pem'),
    }).tls;
    assert.equal(all?.key?.toString(), '-----key.pem-----\n');
    assert.equal(all?.cert?.toString(), '-----cert.pem-----\n');
    assert.equal(all?.ca?.toString(), '-----ca.pem-----\n');
    // Without a CA, Node verifies against the system roots.
    const noCA = etcdClientConfig({
      endpoints: ['https://e:2379'],
      keyFile: f('key.pem'),
      certFile: f('cert.pem'),
    }).tls;
    assert.equal(noCA?.ca, undefined);
    assert.equal(noCA?.key?.toString(), '-----key.pem-----\n');
    const roots = etcdClientConfig({ endpoints: ['https://e:2379'] });
    assert.equal(roots.tls, undefined, 'the system roots for https://');
    assert.equal(roots.secure, true);
  });

  it('wants --etcd-keyfile and --etcd-certfile together, naming both', () => {
    assert.throws(
      () => etcdClientConfig({ endpoints: ['https://e:2379'], keyFile: f('key.pem'), caFile: f('ca.pem') }),
      /^Error: --etcd-keyfile is given without --etcd-certfile: a client certificate needs both; pass --etcd-certfile and --etcd-keyfile, or neither$/,
    );
    assert.throws(
      () => etcdClientConfig({ endpoints: ['https://e:2379'], certFile: f('cert.pem') }),
      /^Error: --etcd-certfile is given without --etcd-keyfile: a client certificate needs both; pass --etcd-certfile and --etcd-keyfile, or neither$/,
    );
  });

  it('ignores the TLS files for http:// endpoints, like flanneld, and warns that it connects insecurely', () => {
    const rec = new LogRecorder();
    try {
      const plain = etcdClientConfig({ endpoints: ['http://e:2379'], caFile: f('ca.pem') });
      assert.equal(plain.tls, undefined);
      assert.equal(plain.secure, false);
      assert.equal(etcdClientConfig({ endpoints: ['http://e:2379'] }).tls, undefined);
    } finally {
      rec.stop();
    }
    assert.equal(
      rec.find(
        'connecting to etcd without TLS (insecure): --etcd-endpoints are http://; --etcd-cafile/--etcd-certfile/--etcd-keyfile are ignored for http:// endpoints',
      ).length,
      1,
    );
    assert.equal(
      rec.matching(/connecting to etcd without TLS \(insecure\): --etcd-endpoints are http:\/\/$/).length,
      1,
    );
  });

  it('names the flag of an unreadable TLS file', () => {
    assert.throws(
      () => etcdClientConfig({ endpoints: ['https://e:2379'], keyFile: f('missing.pem'), certFile: f('cert.pem') }),
      /--etcd-keyfile .*missing\.pem: cannot read the file/,
    );
    assert.throws(
      () => etcdClientConfig({ endpoints: ['https://e:2379'], caFile: f('missing.pem') }),
      /--etcd-cafile .*missing\.pem: cannot read the file/,
    );
  });

  it('passes username and password as etcd auth', () => {
    assert.deepEqual(etcdClientConfig({ endpoints: ['http://e:2379'], username: 'flannel', password: 'pw' }).auth, {
      username: 'flannel',
      password: 'pw',
    });
    assert.equal(etcdClientConfig({ endpoints: ['http://e:2379'] }).auth, undefined);
  });

  it('gives error messages the TLS files only for https:// endpoints', () => {
    assert.deepEqual(
      etcdErrorContext({ endpoints: [' https://e:2379'], caFile: 'ca', certFile: 'c', keyFile: 'k', username: 'u' }),
      { endpoints: ['https://e:2379'], caFile: 'ca', certFile: 'c', keyFile: 'k', username: 'u' },
    );
    assert.deepEqual(etcdErrorContext({ endpoints: ['http://e:2379'], caFile: 'ca' }), {
      endpoints: ['http://e:2379'],
      caFile: undefined,
      certFile: undefined,
      keyFile: undefined,
      username: undefined,
    });
  });

  it('sets a 10 s call deadline unless told otherwise', () => {
    assert.equal(etcdClientConfig({ endpoints: ['http://e:2379'] }).callTimeoutMs, 10_000);
    assert.equal(etcdClientConfig({ endpoints: ['http://e:2379'], callTimeoutMs: 500 }).callTimeoutMs, 500);
  });

  it('counts no connection, no answer and a busy etcd as worth another try, and a refusal not', () => {
    assert.equal(isRecoverable(refused()), true);
    assert.equal(isRecoverable(deadline()), true);
    assert.equal(isRecoverable(new EtcdServerError('http://e:2379', 14, 'etcdserver: no leader')), true);
    assert.equal(isRecoverable(new EtcdServerError('http://e:2379', 2, 'etcdserver: leader changed')), true);
    assert.equal(isRecoverable(denied()), false);
    assert.equal(
      isRecoverable(new EtcdServerError('http://e:2379', 5, 'etcdserver: requested lease not found')),
      false,
    );
    assert.equal(isRecoverable(new EtcdEndpointDownError('http://e:2379', refused(), 'x')), false);
    assert.equal(isRecoverable(new Error('boom')), false);
  });
});

describe('etcd endpoint breaker', () => {
  const setup = () => {
    let t = 0;
    const breaker = endpointBreaker({
      endpoint: 'http://e:2379',
      describe: (e) => `described: ${(e as Error).message}`,
      now: () => t,
    });
    return { breaker, advance: (ms: number) => (t += ms) };
  };
  const fail = (e: Error) => () => Promise.reject(e);

  it('rests the endpoint after 3 consecutive unreachable failures and throws their cause meanwhile', async () => {
    const { breaker, advance } = setup();
    for (let i = 0; i < 3; i++) await assert.rejects(breaker.execute(fail(refused())), EtcdUnreachableError);
    let called = false;
    const resting = await breaker.execute(() => (called = true)).catch((e: unknown) => e);
    assert.equal(called, false);
    assert.ok(resting instanceof EtcdEndpointDownError);
    assert.equal(resting.endpoint, 'http://e:2379');
    assert.ok(resting.cause instanceof EtcdUnreachableError);
    assert.equal(
      resting.message,
      `described: http://e:2379: ${REFUSED} (resting it for a few seconds after repeated failures)`,
    );
    advance(4999);
    await assert.rejects(
      breaker.execute(() => 1),
      EtcdEndpointDownError,
    );
    advance(1);
    assert.equal(await breaker.execute(() => 1), 1, 'one trial call after 5 s, which closes it again');
    assert.equal(await breaker.execute(() => 2), 2);
  });

  it('rests again at once when the trial call fails, and lets only one trial through', async () => {
    const { breaker, advance } = setup();
    for (let i = 0; i < 3; i++) await assert.rejects(breaker.execute(fail(deadline())));
    advance(5000);
    let release!: (e: Error) => void;
    const trial = breaker.execute(() => new Promise<never>((_, rej) => (release = rej)));
    await assert.rejects(
      breaker.execute(() => 1),
      EtcdEndpointDownError,
      'while the trial runs',
    );
    release(refused());
    await assert.rejects(trial, EtcdUnreachableError);
    await assert.rejects(
      breaker.execute(() => 1),
      (e: unknown) => e instanceof EtcdEndpointDownError && e.cause instanceof EtcdUnreachableError,
    );
  });

  it('counts errors etcd answered with (permission denied) as a working endpoint', async () => {
    const { breaker } = setup();
    for (let i = 0; i < 2; i++) await assert.rejects(breaker.execute(fail(refused())));
    await assert.rejects(breaker.execute(fail(denied())));
    for (let i = 0; i < 2; i++) await assert.rejects(breaker.execute(fail(refused())));
    assert.equal(await breaker.execute(() => 'still called'), 'still called');
  });
});

describe('etcd call retry and silence watch', () => {
  const watch = () => {
    let t = 0;
    const silences: number[] = [];
    const w = new SilenceWatch({ intervalMs: 10_000, onSilence: (ms) => silences.push(ms), now: () => t });
    return { w, silences, advance: (ms: number) => (t += ms) };
  };

  it('reports every check while calls wait without any answer for an interval', () => {
    const { w, silences, advance } = watch();
    w.begin();
    advance(9999);
    w.check();
    assert.deepEqual(silences, []);
    advance(1);
    w.check();
    // A timed-out call and its retry: still no answer, the silence goes on.
    w.end(false);
    w.begin();
    advance(10_000);
    w.check();
    assert.deepEqual(silences, [10_000, 20_000]);
    w.end(true);
    w.check();
    assert.deepEqual(silences, [10_000, 20_000], 'an answer ends it; nothing waits');
  });

  it('counts from the latest answer, and goes on while calls keep being made', () => {
    const { w, silences, advance } = watch();
    w.begin();
    w.begin();
    advance(8000);
    w.end(true);
    advance(8000);
    w.check();
    assert.deepEqual(silences, [], 'the other call is 16 s old but etcd answered 8 s ago');
    advance(2000);
    w.check();
    assert.deepEqual(silences, [10_000]);
    w.end(false);
    advance(5000);
    w.begin(); // a retry that fails at once (the endpoint rests)
    w.end(false);
    advance(5000);
    w.check();
    assert.deepEqual(silences, [10_000, 20_000], 'a call began 5 s ago: the caller is retrying');
    advance(5000);
    w.check();
    assert.deepEqual(silences, [10_000, 20_000], 'no call for an interval: nobody waits');
  });

  it('says nothing about a single call that failed at once', () => {
    const { w, silences, advance } = watch();
    w.begin();
    w.end(false);
    advance(10_000);
    w.check();
    assert.deepEqual(silences, []);
  });

  it('retries recoverable failures up to 3 times, others not, and tells the watch whether the call ran out of time', async () => {
    const ends: boolean[] = [];
    const w = { begin: () => {}, end: (answered: boolean) => ends.push(answered) } as unknown as SilenceWatch;
    const policy = retryPolicy(w);
    let calls = 0;
    await assert.rejects(
      policy.execute(() => (calls++, Promise.reject(refused()))),
      EtcdUnreachableError,
    );
    assert.equal(calls, 4);
    calls = 0;
    await assert.rejects(
      policy.execute(() => (calls++, Promise.reject(denied()))),
      EtcdServerError,
    );
    assert.equal(calls, 1);
    calls = 0;
    await assert.rejects(
      policy.execute(() => (calls++, Promise.reject(deadline()))),
      EtcdDeadlineError,
    );
    assert.equal(calls, 4);
    calls = 0;
    await assert.rejects(
      policy.execute(() => (calls++, Promise.reject(new EtcdEndpointDownError('http://e:2379', deadline(), 'x')))),
      EtcdEndpointDownError,
    );
    assert.equal(calls, 1, 'a resting endpoint is not retried at once');
    calls = 0;
    assert.equal(await policy.execute(() => (++calls < 3 ? Promise.reject(deadline()) : 'ok')), 'ok');
    // refused: failed at once; denied: etcd answered; deadline: no answer; resting after deadlines: no answer; ok.
    assert.deepEqual(ends, [true, true, false, false, true]);
  });
});
