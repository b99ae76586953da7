// Our rtnetlink decoder for route, neighbour and FDB messages, fed by an independent encoder (netlink@0.3.0's
// formatters) and by hand-made truncated messages.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AttrStream, rt } from 'netlink';
import { decodeFdb, decodeNeighbour, decodeRoute, messageFamily } from '../../src/netlink/decode.ts';

const ip = (...b: number[]) => Buffer.from(b);
function routeMessage(x: Omit<rt.RouteMessage, 'kind'>): Buffer {
  const out = new AttrStream();
  rt.formatRouteMessage({ kind: 'route', ...x }, out);
  return Buffer.concat(out.bufs);
}
function neighbourMessage(x: Omit<rt.NeighborMessage, 'kind'>): Buffer {
  const out = new AttrStream();
  rt.formatNeighborMessage({ kind: 'neighbor', ...x }, out);
  return Buffer.concat(out.bufs);
}

describe('rtnetlink decoder', () => {
  it('reads an onlink route via a gateway with metric, preferred source and a table above 255', () => {
    const m = routeMessage({
      data: {
        family: 2,
        dstLen: 24,
        table: 252,
        protocol: 'BOOT',
        scope: 'UNIVERSE',
        type: 'UNICAST',
        flags: { __unknown: 4 },
      },
      attrs: {
        dst: ip(10, 5, 3, 0),
        gateway: ip(10, 5, 3, 0),
        oif: 7,
        prefsrc: ip(10, 5, 1, 0),
        priority: 5,
        table: 1000,
      },
    });
    assert.equal(messageFamily(m), 2);
    assert.deepEqual(decodeRoute(m), {
      dst: '10.5.3.0/24',
      gateway: '10.5.3.0',
      oif: 7,
      prefsrc: '10.5.1.0',
      priority: 5,
      scope: 'universe',
      protocol: 'boot',
      onlink: true,
      table: 1000,
      type: 'unicast',
    });
  });

  it('reads a default route, an IPv6 link route, a kernel route and a protocol it has no name for', () => {
    const def = decodeRoute(
      routeMessage({
        data: { family: 2, table: 254, protocol: 'STATIC', type: 'UNICAST' },
        attrs: { gateway: ip(192, 0, 2, 1) },
      }),
    );
    assert.deepEqual(
      [def.dst, def.gateway, def.table, def.protocol, def.oif],
      [null, '192.0.2.1', 254, 'static', undefined],
    );
    const v6 = decodeRoute(
      routeMessage({
        data: { family: 10, dstLen: 64, table: 254, protocol: 'KERNEL', scope: 'LINK', type: 'UNICAST' },
        attrs: { dst: Buffer.from('fd000001000000000000000000000000', 'hex'), oif: 3 },
      }),
    );
    assert.deepEqual([v6.dst, v6.scope, v6.protocol, v6.onlink], ['fd00:1::/64', 'link', 'kernel', false]);
    const odd = decodeRoute(
      routeMessage({
        data: { family: 2, table: 254, protocol: 77 as rt.RouteProtocol, type: 'BLACKHOLE', scope: 'NOWHERE' },
        attrs: {},
      }),
    );
    assert.deepEqual([odd.protocol, odd.type, odd.scope], ['77', 'blackhole', 'nowhere']);
  });

  it('reads neighbours with every state bit in ip neigh order, and skips one without an address', () => {
    const m = neighbourMessage({
      data: { family: 2, ifindex: 9, state: { reachable: true, stale: true, noarp: true } },
      attrs: { dst: ip(10, 70, 2, 0), lladdr: Buffer.from('0e0000000003', 'hex') },
    });
    assert.deepEqual(decodeNeighbour(m), {
      index: 9,
      ip: '10.70.2.0',
      mac: '0e:00:00:00:00:03',
      permanent: false,
      state: ['reachable', 'stale', 'noarp'],
    });
    const incomplete = neighbourMessage({
      data: { family: 2, ifindex: 9, state: { incomplete: true } },
      attrs: { dst: ip(10, 0, 0, 1) },
    });
    assert.deepEqual(decodeNeighbour(incomplete)?.mac, null);
    assert.equal(decodeNeighbour(neighbourMessage({ data: { family: 2, ifindex: 9 }, attrs: {} })), undefined);
  });

  it('reads FDB entries: vxlan self entries with a remote, bridge port entries with their master', () => {
    const vx = neighbourMessage({
      data: { family: 7, ifindex: 4, state: { permanent: true }, flags: { self: true } },
      attrs: { lladdr: Buffer.alloc(6), dst: ip(198, 18, 0, 9) },
    });
    assert.equal(messageFamily(vx), 7);
    assert.deepEqual(decodeFdb(vx), {
      index: 4,
      mac: '00:00:00:00:00:00',
      self: true,
      permanent: true,
      dst: '198.18.0.9',
    });
    const port = neighbourMessage({
      data: { family: 7, ifindex: 12, state: { reachable: true }, flags: { master: true } },
      attrs: { lladdr: Buffer.from('0a580a050302', 'hex'), master: 5 },
    });
    assert.deepEqual(decodeFdb(port), {
      index: 12,
      mac: '0a:58:0a:05:03:02',
      self: false,
      permanent: false,
      master: 5,
    });
    assert.equal(decodeFdb(neighbourMessage({ data: { family: 7, ifindex: 4 }, attrs: {} })), undefined);
  });

  it('refuses a message shorter than its header and stops at a truncated attribute', () => {
    assert.throws(() => decodeRoute(Buffer.alloc(8)), /route message of 8 bytes is shorter than its 12-byte header/);
    assert.throws(() => decodeFdb(Buffer.alloc(3)), /neighbour message of 3 bytes/);
    const m = routeMessage({ data: { family: 2, dstLen: 24, table: 254 }, attrs: { dst: ip(10, 1, 0, 0), oif: 2 } });
    // Cut into the last attribute (oif): the ones before it are still read.
    const r = decodeRoute(m.subarray(0, m.length - 2));
    assert.deepEqual([r.dst, r.oif], ['10.1.0.0/24', undefined]);
  });
});
