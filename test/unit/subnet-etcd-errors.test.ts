import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  EtcdDeadlineError,
  EtcdEndpointDownError,
  EtcdServerError,
  EtcdUnreachableError,
  NO_HTTP2_ANSWER,
  describeEtcdError,
  isEtcdError,
  tidyCause,
  type EtcdErrorContext,
} from '../../src/subnet/etcd/errors.ts';

const TLS: EtcdErrorContext = { endpoints: ['https://127.0.0.1:2379'], caFile: '/etc/flannel/ca.pem' };
const PLAIN: EtcdErrorContext = { endpoints: ['http://127.0.0.1:2379'] };
// What Node's socket and TLS layers say (seen in test/integration/etcd-tls.test.ts), as the client tidies it.
const unreachable = (reason: string, endpoint = 'http://127.0.0.1:2379') =>
  new EtcdUnreachableError(endpoint, tidyCause(reason));
const tlsUnreachable = (reason: string) => unreachable(reason, 'https://127.0.0.1:2379');
const ALERT =
  '80ACC280F97F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42\n';

describe('etcd error descriptions', () => {
  it('names the endpoint and the cause of a refused connection, also while the endpoint rests', () => {
    assert.equal(
      describeEtcdError(unreachable('Error: connect ECONNREFUSED 127.0.0.1:2379'), PLAIN),
      'etcd at http://127.0.0.1:2379 is unreachable: connect ECONNREFUSED 127.0.0.1:2379',
    );
    const resting = new EtcdEndpointDownError(
      'http://10.0.0.2:2379',
      unreachable('connect EHOSTUNREACH 10.0.0.2:2379', 'http://10.0.0.2:2379'),
      'x',
    );
    assert.equal(
      describeEtcdError(resting, { endpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'] }),
      'etcd at http://10.0.0.2:2379 is unreachable: connect EHOSTUNREACH 10.0.0.2:2379',
    );
  });

  it('says how long a silent endpoint was given', () => {
    assert.equal(
      describeEtcdError(new EtcdDeadlineError('http://127.0.0.1:4001', 10_002), PLAIN),
      'etcd at http://127.0.0.1:4001 is unreachable: no answer within 10s',
    );
  });

  it('names --etcd-cafile when it does not verify etcd, and the system roots without it', () => {
    assert.equal(
      describeEtcdError(tlsUnreachable('unable to verify the first certificate'), TLS),
      "etcd at https://127.0.0.1:2379 is unreachable: its TLS certificate does not verify against the CA in --etcd-cafile=/etc/flannel/ca.pem (unable to verify the first certificate); pass the CA that signed etcd's certificate",
    );
    assert.equal(
      describeEtcdError(tlsUnreachable('self-signed certificate in certificate chain'), { endpoints: TLS.endpoints }),
      "etcd at https://127.0.0.1:2379 is unreachable: its TLS certificate does not verify against the system's CA roots (self-signed certificate in certificate chain); pass the CA that signed it with --etcd-cafile",
    );
    assert.match(
      describeEtcdError(
        tlsUnreachable(
          "Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: Host: localhost. is not cert's CN: etcd",
        ),
        TLS,
      ),
      /is unreachable: its TLS certificate is not for this address \(Hostname\/IP does not match certificate's altnames: Host: localhost\. is not cert's CN: etcd\); use an endpoint address/,
    );
  });

  it("cuts OpenSSL's text to the alert, and says etcd wants a client certificate when it rejects the handshake", () => {
    assert.equal(tidyCause(ALERT), 'sslv3 alert bad certificate, SSL alert number 42');
    assert.equal(
      describeEtcdError(tlsUnreachable(ALERT), TLS),
      'etcd at https://127.0.0.1:2379 is unreachable: it refused the TLS handshake (sslv3 alert bad certificate, SSL alert number 42): it wants a client certificate; pass --etcd-certfile and --etcd-keyfile',
    );
    assert.match(
      describeEtcdError(tlsUnreachable(ALERT), { ...TLS, certFile: '/c.pem', keyFile: '/k.pem' }),
      /it refused the client certificate --etcd-certfile=\/c\.pem in the TLS handshake \(sslv3 alert bad certificate, SSL alert number 42\)/,
    );
  });

  it('points at the scheme when TLS meets plain HTTP or the other way round', () => {
    assert.equal(
      describeEtcdError(unreachable(`${NO_HTTP2_ANSWER} to /etcdserverpb.KV/Range`), PLAIN),
      `etcd at http://127.0.0.1:2379 is unreachable: ${NO_HTTP2_ANSWER} to /etcdserverpb.KV/Range; if etcd serves TLS, use an https:// endpoint`,
    );
    assert.match(
      describeEtcdError(
        tlsUnreachable('Client network socket disconnected before secure TLS connection was established'),
        TLS,
      ),
      /the TLS handshake failed \(.*\); is it serving plain http\? then use an http:\/\/ endpoint$/,
    );
  });

  it('names the user and the flags of a refused login, a missing login and a denied key', () => {
    const ctx = { ...PLAIN, username: 'flannel' };
    const answer = (code: number, message: string) => new EtcdServerError('http://127.0.0.1:2379', code, message);
    assert.equal(
      describeEtcdError(answer(3, 'etcdserver: authentication failed, invalid user ID or password'), ctx),
      'etcd at http://127.0.0.1:2379 refused user "flannel": authentication failed, invalid user name or password; check --etcd-username and --etcd-password',
    );
    assert.equal(
      describeEtcdError(answer(3, 'etcdserver: user name is empty'), PLAIN),
      'etcd at http://127.0.0.1:2379 requires authentication (user name is empty); pass --etcd-username and --etcd-password',
    );
    assert.equal(
      describeEtcdError(answer(7, 'etcdserver: permission denied'), ctx),
      'etcd at http://127.0.0.1:2379 denied user "flannel" access (permission denied); its role needs readwrite on the --etcd-prefix keys',
    );
    assert.equal(
      describeEtcdError(answer(9, 'etcdserver: mvcc: required revision has been compacted'), ctx),
      'etcd at http://127.0.0.1:2379 answered: etcdserver: mvcc: required revision has been compacted',
    );
  });

  it('keeps the message of errors that are not about etcd itself', () => {
    const missing = new Error('flannel config not found in etcd store. Did you create your config using etcdv3 API?');
    assert.equal(describeEtcdError(missing, PLAIN), missing.message);
    assert.equal(isEtcdError(missing), false);
    assert.equal(isEtcdError(unreachable('connect ECONNREFUSED 127.0.0.1:2379')), true);
    assert.equal(isEtcdError(new EtcdEndpointDownError('http://e:2379', new Error('x'), 'x')), true);
    assert.equal(isEtcdError(new EtcdServerError('http://e:2379', 7, 'etcdserver: permission denied')), true);
    assert.equal(isEtcdError(new EtcdDeadlineError('http://e:2379', 1000)), true);
  });
});
