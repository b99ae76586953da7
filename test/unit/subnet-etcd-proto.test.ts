import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  GrpcFrames,
  decodeRange,
  decodeTxn,
  decodeWatchResponse,
  grpcFrame,
  leaseGrantRequest,
  prefixEnd,
  putIfRequest,
  putRequest,
  rangeRequest,
  watchCreateRequest,
} from '../../src/subnet/etcd/proto.ts';

const hex = (b: Buffer) => b.toString('hex');
const bytes = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');
// A lease ID as etcd hands them out: more than 53 bits, so a double would round it.
const LEASE = '7587899324241200135';
const LEASE_VARINT = '8788cba6bac7e8a669';

describe('etcd protobuf messages', () => {
  it('writes the request fields flannel sends, in wire form', () => {
    // PutRequest: key 1 "a", value 2 "b", lease 3.
    assert.equal(hex(putRequest('a', 'b')), '0a0161120162');
    assert.equal(hex(putRequest('a', 'b', LEASE)), `0a0161120162 18${LEASE_VARINT}`.replace(' ', ''));
    assert.equal(hex(putRequest('a', '', '0')), '0a01611200', 'an empty value is still sent; lease 0 is none');
    // RangeRequest over a prefix: range_end 2 is the prefix with its last byte incremented; count_only 9.
    assert.equal(hex(rangeRequest('/a/', true)), '0a032f612f 12032f6130'.replace(' ', ''));
    assert.equal(hex(rangeRequest('k', false, true)), '0a016b4801');
    // LeaseGrantRequest: TTL 1 = 86400.
    assert.equal(hex(leaseGrantRequest(86400)), '0880a305');
  });

  it('writes the create-if-absent and replace-if-unchanged transactions', () => {
    // TxnRequest: compare 1 {target 2 (VERSION is 0: left out), key 3, version 4 (0: left out)}, success 2 {put 2}.
    assert.equal(
      hex(putIfRequest('k', 'version', '0', { key: 'k', value: 'v' })),
      '0a031a016b 1208 1206 0a016b120176'.replace(/ /g, ''),
    );
    // target MOD (2), mod_revision 6 = 9.
    assert.equal(
      hex(putIfRequest('k', 'modRevision', '9', { key: 'k', value: 'v', lease: '5' })),
      '0a07 1002 1a016b 3009 120a 1208 0a016b120176 1805'.replace(/ /g, ''),
    );
  });

  it('writes a watch create request with start revision and prev_kv', () => {
    // WatchRequest: create_request 1 {key 1, range_end 2, start_revision 3, prev_kv 6}.
    assert.equal(hex(watchCreateRequest('/a/', true, '42')), '0a0e 0a032f612f 12032f6130 182a 3001'.replace(/ /g, ''));
  });

  it('takes a prefix end past 0xff bytes, and all keys for a prefix of 0xff only', () => {
    assert.deepEqual(prefixEnd('ab'), Buffer.from('ac'));
    assert.deepEqual(prefixEnd('a\u00ff'), Buffer.from([0x61, 0xc3, 0xc0]), 'UTF-8 bytes, not characters');
    assert.deepEqual(prefixEnd(''), Buffer.from([0]));
  });

  it('reads a range answer: revision, keys, values, large lease IDs and mod revisions', () => {
    // RangeResponse {header 1 {revision 3 = 300}, kvs 2 {key 1, mod_revision 3, value 5, lease 6}, kvs 2 {key 1}}.
    const kv1 = `0a016b 1805 2a0176 30${LEASE_VARINT}`.replace(/ /g, '');
    const res = bytes(`0a03 18ac02 12${(kv1.length / 2).toString(16).padStart(2, '0')} ${kv1} 1203 0a016c`);
    assert.deepEqual(decodeRange(res), {
      revision: '300',
      kvs: [
        { key: 'k', value: 'v', lease: LEASE, modRevision: '5' },
        { key: 'l', value: '', lease: '0', modRevision: '0' },
      ],
    });
    assert.deepEqual(decodeRange(Buffer.alloc(0)), { revision: '0', kvs: [] });
  });

  it('reads whether a transaction succeeded: proto3 leaves a false one out', () => {
    assert.deepEqual(decodeTxn(bytes('0a02 1807 1001')), { succeeded: true, revision: '7' });
    assert.deepEqual(decodeTxn(bytes('0a02 1807')), { succeeded: false, revision: '7' });
  });

  it('skips fields it does not know, of every wire type', () => {
    // cluster_id 1 (varint), an unknown fixed64 (field 9), fixed32 (field 10) and bytes (field 11) before revision.
    const header = '0801 490102030405060708 5501020304 5a0178 1805';
    assert.deepEqual(decodeTxn(bytes(`0a${(header.replace(/ /g, '').length / 2).toString(16)} ${header}`)), {
      succeeded: false,
      revision: '5',
    });
    assert.throws(() => decodeRange(bytes('0a05 18')), /truncated/);
  });

  it('reads watch answers: created, events with the previous value, compaction', () => {
    assert.deepEqual(decodeWatchResponse(bytes('1801')), { kind: 'created' });
    // events 11 {type 1 = DELETE, kv 2 {key 1, mod_revision 3}, prev_kv 3 {key 1, value 5}} and a PUT (type left out).
    const del = '0801 1205 0a016b 1809 1a06 0a016b 2a0176';
    const put = '1205 0a016c 180a';
    const delLen = (del.replace(/ /g, '').length / 2).toString(16);
    const putLen = (put.replace(/ /g, '').length / 2).toString(16);
    assert.deepEqual(decodeWatchResponse(bytes(`5a${delLen} ${del} 5a0${putLen} ${put}`)), {
      kind: 'events',
      events: [
        {
          type: 'delete',
          kv: { key: 'k', value: '', lease: '0', modRevision: '9' },
          prev: { key: 'k', value: 'v', lease: '0', modRevision: '0' },
        },
        { type: 'put', kv: { key: 'l', value: '', lease: '0', modRevision: '10' } },
      ],
    });
    // canceled 4, compact_revision 5 = 58, no cancel_reason.
    assert.deepEqual(decodeWatchResponse(bytes('1801 2001 283a')), {
      kind: 'canceled',
      reason: 'required revision has been compacted (compact revision 58)',
    });
    const reason = Buffer.from('etcdserver: permission denied').toString('hex');
    assert.deepEqual(decodeWatchResponse(bytes(`2001 32${(reason.length / 2).toString(16)} ${reason}`)), {
      kind: 'canceled',
      reason: 'etcdserver: permission denied',
    });
  });

  it('frames gRPC messages and takes them out of chunks split anywhere', () => {
    const a = grpcFrame(Buffer.from('hello'));
    assert.equal(hex(a), '000000000568656c6c6f');
    const b = grpcFrame(Buffer.alloc(0));
    const stream = Buffer.concat([a, b, grpcFrame(Buffer.from('x'))]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const f = new GrpcFrames();
      const got = [...f.push(stream.subarray(0, cut)), ...f.push(stream.subarray(cut))].map((m) => m.toString());
      assert.deepEqual(got, ['hello', '', 'x'], `cut at ${cut}`);
    }
    assert.throws(() => new GrpcFrames().push(bytes('0100000000')), /compressed/);
  });
});
