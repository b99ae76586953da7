import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdClientConfig, exponentialBackoff } from '../../src/subnet/etcd/client.ts';

describe('etcd client options', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flannel-etcd-client-'));
    for (const f of ['key.pem', 'cert.pem', 'ca.pem']) writeFileSync(join(dir, f), `-----${f}-----\n`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('uses the endpoints as hosts and rejects malformed or empty ones', () => {
    assert.deepEqual(etcdClientConfig({ endpoints: ['http://127.0.0.1:4001', ' http://127.0.0.1:2379 '] }).hosts, ['http://127.0.0.1:4001', 'http://127.0.0.1:2379']);
    assert.throws(() => etcdClientConfig({ endpoints: [] }), /--etcd-endpoints is empty/);
    assert.throws(() => etcdClientConfig({ endpoints: ['127.0.0.1:2379'] }), /"127\.0\.0\.1:2379" is not an endpoint; use the form http:\/\/host:port/);
  });

  it('uses client TLS only when both key and cert are given', () => {
    const both = etcdClientConfig({ endpoints: ['https://e:2379'], keyFile: join(dir, 'key.pem'), certFile: join(dir, 'cert.pem'), caFile: join(dir, 'ca.pem') });
    assert.equal(both.credentials?.privateKey?.toString(), '-----key.pem-----\n');
    assert.equal(both.credentials?.certChain?.toString(), '-----cert.pem-----\n');
    assert.equal(both.credentials?.rootCertificate?.toString(), '-----ca.pem-----\n');
    assert.equal(etcdClientConfig({ endpoints: ['https://e:2379'], keyFile: join(dir, 'key.pem'), caFile: join(dir, 'ca.pem') }).credentials, undefined);
    assert.equal(etcdClientConfig({ endpoints: ['https://e:2379'], caFile: join(dir, 'ca.pem') }).credentials, undefined);
  });

  it('names the flag of an unreadable TLS file', () => {
    assert.throws(() => etcdClientConfig({ endpoints: ['https://e:2379'], keyFile: join(dir, 'missing.pem'), certFile: join(dir, 'cert.pem') }), /--etcd-keyfile .*missing\.pem: cannot read the file/);
  });

  it('passes username and password as etcd auth', () => {
    assert.deepEqual(etcdClientConfig({ endpoints: ['http://e:2379'], username: 'flannel', password: 'pw' }).auth, { username: 'flannel', password: 'pw' });
    assert.equal(etcdClientConfig({ endpoints: ['http://e:2379'] }).auth, undefined);
  });

  it('backs off watch reconnects from 100 ms doubling up to 5 s', () => {
    const seen: number[] = [];
    let b = exponentialBackoff();
    for (let i = 0; i < 9; i++) {
      seen.push(b.duration);
      b = b.next(undefined) as typeof b;
    }
    assert.deepEqual(seen, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  });
});
