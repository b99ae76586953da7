import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdAuthenticationFailedError, GRPCUnavailableError } from 'etcd3';
import {
  EtcdEndpointDownError,
  describeEtcdError,
  isEtcdError,
  type EtcdErrorContext,
} from '../../src/subnet/etcd/errors.ts';

// The messages etcd3 1.1.2 / grpc-js 1.14 give against etcd 3.4 (seen in test/integration/etcd-tls.test.ts).
const unavailable = (last: string) =>
  new GRPCUnavailableError(`14 UNAVAILABLE: No connection established. Last error: ${last}. Resolution note: `);
const TLS: EtcdErrorContext = { endpoints: ['https://127.0.0.1:2379'], caFile: '/etc/flannel/ca.pem' };
const PLAIN: EtcdErrorContext = { endpoints: ['http://127.0.0.1:2379'] };

describe('etcd error descriptions', () => {
  it('names the endpoint and the cause of a refused connection instead of the circuit breaker', () => {
    assert.equal(
      describeEtcdError(unavailable('Error: connect ECONNREFUSED 127.0.0.1:2379'), PLAIN),
      'etcd at http://127.0.0.1:2379 is unreachable: connect ECONNREFUSED 127.0.0.1:2379',
    );
    const resting = new EtcdEndpointDownError(
      'http://10.0.0.2:2379',
      unavailable('Error: connect EHOSTUNREACH 10.0.0.2:2379'),
      'x',
    );
    assert.equal(
      describeEtcdError(resting, { endpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'] }),
      'etcd at http://10.0.0.2:2379 is unreachable: connect EHOSTUNREACH 10.0.0.2:2379',
    );
    assert.equal(
      describeEtcdError(new Error('Execution prevented because the circuit breaker is open'), PLAIN),
      'etcd at http://127.0.0.1:2379 is unreachable: its last requests failed, so the client pauses calls to it for a few seconds',
    );
  });

  it('picks the endpoint the message names, else lists them all', () => {
    const ctx = { endpoints: ['http://127.0.0.1:4001', 'http://127.0.0.1:2379'] };
    assert.match(
      describeEtcdError(unavailable('Error: connect ECONNREFUSED 127.0.0.1:4001'), ctx),
      /^etcd at http:\/\/127\.0\.0\.1:4001 is unreachable/,
    );
    assert.match(
      describeEtcdError(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded after 10.002s,LB pick: 0.001s'), ctx),
      /^etcd at http:\/\/127\.0\.0\.1:4001, http:\/\/127\.0\.0\.1:2379 is unreachable: no answer within 10s$/,
    );
  });

  it('names --etcd-cafile when it does not verify etcd, and the system roots without it', () => {
    assert.equal(
      describeEtcdError(unavailable('Error: unable to verify the first certificate'), TLS),
      "etcd at https://127.0.0.1:2379 is unreachable: its TLS certificate does not verify against the CA in --etcd-cafile=/etc/flannel/ca.pem (unable to verify the first certificate); pass the CA that signed etcd's certificate",
    );
    assert.equal(
      describeEtcdError(unavailable('Error: self-signed certificate in certificate chain'), {
        endpoints: TLS.endpoints,
      }),
      "etcd at https://127.0.0.1:2379 is unreachable: its TLS certificate does not verify against the system's CA roots (self-signed certificate in certificate chain); pass the CA that signed it with --etcd-cafile",
    );
    assert.match(
      describeEtcdError(
        unavailable(
          "Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: Host: localhost. is not cert's CN: etcd",
        ),
        TLS,
      ),
      /is unreachable: its TLS certificate is not for this address \(Hostname\/IP does not match certificate's altnames: Host: localhost\. is not cert's CN: etcd\); use an endpoint address/,
    );
  });

  it('says etcd wants a client certificate when it rejects the handshake', () => {
    const alert =
      '80ACC280F97F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42\n (2026-12-02T06:00:38.892Z)';
    assert.equal(
      describeEtcdError(unavailable(alert), TLS),
      'etcd at https://127.0.0.1:2379 is unreachable: it refused the TLS handshake (sslv3 alert bad certificate, SSL alert number 42): it wants a client certificate; pass --etcd-certfile and --etcd-keyfile',
    );
    assert.match(
      describeEtcdError(unavailable(alert), { ...TLS, certFile: '/c.pem', keyFile: '/k.pem' }),
      /it refused the client certificate --etcd-certfile=\/c\.pem in the TLS handshake \(sslv3 alert bad certificate, SSL alert number 42\)/,
    );
  });

  it('points at the scheme when TLS meets plain HTTP or the other way round', () => {
    assert.match(
      describeEtcdError(unavailable('Failed to connect (2026-12-02T06:02:38.251Z)'), PLAIN),
      /is unreachable: the connection failed \(Failed to connect\); if etcd serves TLS, use an https:\/\/ endpoint$/,
    );
    assert.match(
      describeEtcdError(
        unavailable('Error: Client network socket disconnected before secure TLS connection was established'),
        TLS,
      ),
      /the TLS handshake failed \(.*\); is it serving plain http\? then use an http:\/\/ endpoint$/,
    );
  });

  it('names the user and the flags of a refused login, a missing login and a denied key', () => {
    const ctx = { ...PLAIN, username: 'flannel' };
    assert.equal(
      describeEtcdError(
        new EtcdAuthenticationFailedError(
          '3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password',
        ),
        ctx,
      ),
      'etcd at http://127.0.0.1:2379 refused user "flannel": authentication failed, invalid user name or password; check --etcd-username and --etcd-password',
    );
    assert.equal(
      describeEtcdError(new Error('3 INVALID_ARGUMENT: etcdserver: user name is empty'), PLAIN),
      'etcd at http://127.0.0.1:2379 requires authentication (user name is empty); pass --etcd-username and --etcd-password',
    );
    assert.equal(
      describeEtcdError(new Error('7 PERMISSION_DENIED: etcdserver: permission denied'), ctx),
      'etcd at http://127.0.0.1:2379 denied user "flannel" access (permission denied); its role needs readwrite on the --etcd-prefix keys',
    );
  });

  it('keeps the message of errors that are not about etcd itself', () => {
    const missing = new Error('flannel config not found in etcd store. Did you create your config using etcdv3 API?');
    assert.equal(describeEtcdError(missing, PLAIN), missing.message);
    assert.equal(isEtcdError(missing), false);
    assert.equal(isEtcdError(unavailable('Error: connect ECONNREFUSED 127.0.0.1:2379')), true);
    assert.equal(isEtcdError(new EtcdEndpointDownError('http://e:2379', new Error('x'), 'x')), true);
    assert.equal(isEtcdError(new Error('7 PERMISSION_DENIED: etcdserver: permission denied')), true);
  });
});
