// Our rtnetlink encoder, read back by an independent decoder (netlink@0.3.0's parsers and our parse.ts), and the
// batcher that puts many requests in one datagram, driven through a scripted socket.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rt } from 'netlink';
import { WriteBatcher } from '../../src/netlink/batch.ts';
import {
  ackErrno,
  fdbDelete,
  fdbWrite,
  messageSize,
  neighbourDelete,
  neighbourReplace,
  routeRequest,
  writeMessage,
} from '../../src/netlink/encode.ts';
import type { NetlinkError } from '../../src/netlink/errors.ts';
import {
  NLM_F_ACK,
  NLM_F_APPEND,
  NLM_F_CREATE,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  RTM_DELNEIGH,
  RTM_DELROUTE,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
} from '../../src/netlink/rtnl.ts';
import { bufferToIp, bufferToMac } from '../../src/netlink/codec.ts';
import { toRoute } from '../../src/netlink/parse.ts';

describe('rtnetlink encoder', () => {
  it('writes routes as ip route replace/del would: scope, protocol, onlink, table, metric', () => {
    const onlink = routeRequest({ dst: '10.5.3.0/24', gateway: '10.5.3.0', oif: 7, onlink: true }, false);
    assert.equal(onlink.type, RTM_NEWROUTE);
    assert.equal(onlink.flags, NLM_F_CREATE | NLM_F_REPLACE);
    const r = toRoute(rt.parseRouteMessage(onlink.body));
    assert.deepEqual(
      [r.dst, r.gateway, r.oif, r.onlink, r.scope, r.protocol, r.table, r.type],
      ['10.5.3.0/24', '10.5.3.0', 7, true, 'universe', 'boot', 254, 'unicast'],
    );
    const link = toRoute(rt.parseRouteMessage(routeRequest({ dst: 'fd00:1::/64', oif: 3 }, false).body));
    assert.deepEqual([link.dst, link.scope, link.gateway], ['fd00:1::/64', 'link', undefined]);
    const big = toRoute(
      rt.parseRouteMessage(
        routeRequest({ dst: '10.9.0.0/16', gateway: '10.1.1.1', table: 1000, priority: 5 }, false).body,
      ),
    );
    assert.deepEqual([big.table, big.priority], [1000, 5]);
    const hole = toRoute(rt.parseRouteMessage(routeRequest({ dst: '10.6.0.0/16', type: 'blackhole' }, false).body));
    assert.deepEqual([hole.type, hole.scope], ['blackhole', 'universe']);
    const del = routeRequest({ dst: '10.5.3.0/24', gateway: '10.5.3.0', oif: 7 }, true);
    assert.deepEqual([del.type, del.flags], [RTM_DELROUTE, 0]);
    assert.equal(toRoute(rt.parseRouteMessage(del.body)).scope, 'nowhere');
  });

  it('writes neighbours and FDB entries as ip neigh / bridge fdb would', () => {
    const n = neighbourReplace({ index: 4, ip: '10.5.3.0', mac: '0e:01:02:03:04:05' });
    assert.deepEqual([n.type, n.flags], [RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE]);
    const nm = rt.parseNeighborMessage(n.body);
    assert.deepEqual(
      [nm.data.family, nm.data.ifindex, bufferToIp(nm.attrs.dst!), bufferToMac(nm.attrs.lladdr!), nm.data.state],
      [2, 4, '10.5.3.0', '0e:01:02:03:04:05', { permanent: true }],
    );
    const gone = neighbourDelete({ index: 4, ip: 'fd00::1' });
    assert.equal(gone.type, RTM_DELNEIGH);
    assert.equal(rt.parseNeighborMessage(gone.body).data.family, 10);
    const append = fdbWrite({ index: 4, mac: '00:00:00:00:00:00', dst: '198.18.0.9' }, 'append');
    assert.deepEqual([append.type, append.flags], [RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND]);
    const f = rt.parseNeighborMessage(append.body);
    assert.equal(f.data.flags?.self, true);
    assert.deepEqual(
      [f.data.family, f.data.ifindex, bufferToMac(f.attrs.lladdr!), bufferToIp(f.attrs.dst!), f.data.state],
      [7, 4, '00:00:00:00:00:00', '198.18.0.9', { permanent: true }],
    );
    assert.equal(fdbWrite({ index: 4, mac: '0e:00:00:00:00:01' }, 'replace').flags, NLM_F_CREATE | NLM_F_REPLACE);
    assert.equal(rt.parseNeighborMessage(fdbDelete({ index: 4, mac: '0e:00:00:00:00:01' }).body).attrs.dst, undefined);
  });

  it('refuses bad addresses with the input named', () => {
    assert.throws(() => routeRequest({ dst: '10.1.300.0/24' }, false), /invalid IP address "10.1.300.0"/);
    assert.throws(() => neighbourReplace({ index: 1, ip: '10.0.0.1', mac: 'zz' }), /invalid MAC address "zz"/);
    assert.throws(() => routeRequest({ dst: '10.1.0.0/24', protocol: 'bird' }, false), /unknown route protocol "bird"/);
  });

  it('frames messages with REQUEST|ACK, the sequence number and 4-byte alignment', () => {
    const r = neighbourReplace({ index: 2, ip: '10.0.0.1', mac: '0e:00:00:00:00:01' });
    const out = Buffer.alloc(messageSize(r) + 4, 0xff);
    const n = writeMessage(out, 4, r, 0x40000001, 99);
    assert.equal(n % 4, 0);
    assert.equal(out.readUInt32LE(4), 16 + r.body.length);
    assert.equal(out.readUInt16LE(8), RTM_NEWNEIGH);
    assert.equal(out.readUInt16LE(10), r.flags | NLM_F_REQUEST | NLM_F_ACK);
    assert.deepEqual([out.readUInt32LE(12), out.readUInt32LE(16)], [0x40000001, 99]);
    const ack = Buffer.alloc(20);
    assert.equal(ackErrno(2, ack), 0);
    ack.writeInt32LE(-17, 0);
    assert.equal(ackErrno(2, ack), 17);
    assert.equal(ackErrno(24, ack), undefined);
  });
});

/** A socket that records datagrams and answers nothing by itself. */
function scriptedSocket() {
  const sent: Buffer[] = [];
  let fail: Error | undefined;
  return {
    sent,
    failNext(e: Error) {
      fail = e;
    },
    socket: {
      send(d: Buffer, done: (e?: Error) => void) {
        sent.push(d);
        const e = fail;
        fail = undefined;
        queueMicrotask(() => done(e));
      },
      port: () => 42,
    },
  };
}

/** The sequence numbers of the messages in one datagram. */
function seqs(d: Buffer): number[] {
  const out: number[] = [];
  for (let at = 0; at < d.length; at += (d.readUInt32LE(at) + 3) & ~3) out.push(d.readUInt32LE(at + 8));
  return out;
}

function ack(seq: number, errno: number) {
  const data = Buffer.alloc(20);
  data.writeInt32LE(-errno, 0);
  return { type: 2, seq, data };
}

describe('netlink write batcher', () => {
  const req = (i: number) => neighbourReplace({ index: 2, ip: `10.0.${i >> 8}.${i & 255}`, mac: '0e:00:00:00:00:01' });

  it('sends the requests of one turn in one datagram and settles each by its own ACK', async () => {
    const s = scriptedSocket();
    const b = new WriteBatcher(s.socket, 1000);
    const results = [0, 1, 2].map((i) =>
      b.submit(`op${i}`, req(i)).then(
        () => 'ok',
        (e: NetlinkError) => e.code,
      ),
    );
    await new Promise((r) => setImmediate(r));
    assert.equal(s.sent.length, 1);
    const [a, m, z] = seqs(s.sent[0]!);
    assert.equal(s.sent[0]!.readUInt32LE(12), 42, 'the port in the header');
    b.receive([ack(z!, 0), ack(a!, 0), ack(m!, 17), ack(12345, 0)]);
    assert.deepEqual(await Promise.all(results), ['ok', 'EEXIST', 'ok']);
    assert.equal(b.pending, 0);
  });

  it('splits a large turn into datagrams of at most 64 KiB, in order', async () => {
    const s = scriptedSocket();
    const b = new WriteBatcher(s.socket, 1000);
    const all = Array.from({ length: 3000 }, (_, i) => b.submit(`op${i}`, req(i)));
    await new Promise((r) => setImmediate(r));
    assert.ok(s.sent.length > 1);
    assert.ok(s.sent.every((d) => d.length <= 64 * 1024));
    const order = s.sent.flatMap(seqs);
    assert.equal(order.length, 3000);
    assert.deepEqual(
      order,
      [...order].sort((x, y) => x - y),
    );
    b.receive(order.map((q) => ack(q, 0)));
    await Promise.all(all);
  });

  it('fails unanswered requests with ETIMEDOUT, a failed send with its code, and everything on failAll', async () => {
    const s = scriptedSocket();
    const b = new WriteBatcher(s.socket, 30);
    const lost = b.submit('newNeighbor lost', req(1)).catch((e: NetlinkError) => `${e.op}: ${e.code}`);
    assert.equal(await lost, 'newNeighbor lost: ETIMEDOUT');
    s.failNext(Object.assign(new Error('no buffer space'), { code: 'ENOBUFS' }));
    assert.equal(await b.submit('x', req(2)).catch((e: NetlinkError) => e.code), 'ENOBUFS');
    const open = b.submit('y', req(3)).catch((e: NetlinkError) => e.code);
    b.failAll('ECLOSED', 'closed');
    assert.equal(await open, 'ECLOSED');
    assert.equal(b.pending, 0);
  });
});
