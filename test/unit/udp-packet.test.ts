// The udp backend's packet logic on hand-built IPv4 packets: TTL/checksum, ICMP net unreachable, peer lookup,
// and the wire format (the UDP payload is the inner packet, identical but for TTL and header checksum).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPv4Net, parseIPv4 } from '../../src/ip/ipv4.ts';
import {
  decrementTtl,
  internetChecksum,
  ipv4HeaderLength,
  netUnreachable,
  readU32,
  wantsUnreachable,
} from '../../src/backend/udp/packet.ts';
import { PeerRoutes } from '../../src/backend/udp/routes.ts';
import { parseUdpOptions, udpDeviceMtu } from '../../src/backend/udp/options.ts';

/** An IPv4 packet with a correct header checksum: `payload` after a 20-byte (or `options`-longer) header. */
function ipv4(o: {
  src: string;
  dst: string;
  ttl: number;
  proto: number;
  payload: number[];
  frag?: number;
  id?: number;
  options?: number[];
}): Uint8Array {
  const opts = o.options ?? [];
  const hl = 20 + opts.length;
  const p = new Uint8Array(hl + o.payload.length);
  const dv = new DataView(p.buffer);
  p[0] = 0x40 | (hl / 4);
  dv.setUint16(2, p.length);
  dv.setUint16(4, o.id ?? 0x1234);
  dv.setUint16(6, o.frag ?? 0x4000);
  p[8] = o.ttl;
  p[9] = o.proto;
  dv.setUint32(12, parseIPv4(o.src));
  dv.setUint32(16, parseIPv4(o.dst));
  p.set(opts, 20);
  dv.setUint16(10, internetChecksum(p, 0, hl));
  p.set(o.payload, hl);
  return p;
}

const echo = (ttl: number) =>
  ipv4({
    src: '10.244.1.0',
    dst: '10.244.2.5',
    ttl,
    proto: 1,
    payload: [8, 0, 0xf7, 0xfc, 0, 1, 0, 2, 0xaa, 0xbb, 0xcc],
  });

describe('udp packet logic', () => {
  it('checksums a known header (the textbook example)', () => {
    // Header from a real capture: 45 00 00 73 00 00 40 00 40 11 [b8 61] c0 a8 00 01 c0 a8 00 c7.
    const h = Uint8Array.from([
      0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7,
    ]);
    assert.equal(internetChecksum(h, 0, 20), 0xb861);
    h[10] = 0xb8;
    h[11] = 0x61;
    assert.equal(internetChecksum(h, 0, 20), 0, 'a correct header sums to zero');
  });

  it('decrements TTL and keeps the header checksum valid, for every TTL and many headers', () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
    for (let ttl = 2; ttl <= 255; ttl++) {
      for (let k = 0; k < 20; k++) {
        const p = ipv4({
          src: `10.${rnd() & 255}.${rnd() & 255}.${rnd() & 255}`,
          dst: `192.168.${rnd() & 255}.${rnd() & 255}`,
          ttl,
          proto: rnd() & 255,
          id: rnd(),
          payload: [1, 2, 3],
        });
        const before = Uint8Array.from(p);
        assert.equal(decrementTtl(p, 0), true);
        assert.equal(p[8], ttl - 1);
        assert.equal(internetChecksum(p, 0, 20), 0, `TTL ${ttl}: header checksum still valid`);
        // Nothing but TTL (byte 8) and checksum (10-11) changed.
        for (let i = 0; i < p.length; i++) if (i !== 8 && i !== 10 && i !== 11) assert.equal(p[i], before[i]);
      }
    }
  });

  it('works at an offset inside a larger buffer (the reader slab) and touches nothing around it', () => {
    const slab = new Uint8Array(4096).fill(0xee);
    const p = echo(64);
    slab.set(p, 2048);
    assert.equal(decrementTtl(slab, 2048), true);
    assert.equal(slab[2048 + 8], 63);
    assert.equal(internetChecksum(slab, 2048, 20), 0);
    assert.ok(slab.subarray(0, 2048).every((b) => b === 0xee));
    assert.ok(slab.subarray(2048 + p.length).every((b) => b === 0xee));
  });

  it('drops at TTL 1 and 0 without touching the packet', () => {
    for (const ttl of [0, 1]) {
      const p = echo(ttl);
      const before = Uint8Array.from(p);
      assert.equal(decrementTtl(p, 0), false);
      assert.deepEqual(p, before);
    }
  });

  it('validates the IPv4 header length', () => {
    assert.equal(ipv4HeaderLength(echo(64), 0, 31), 20);
    assert.equal(
      ipv4HeaderLength(
        ipv4({ src: '1.1.1.1', dst: '2.2.2.2', ttl: 9, proto: 17, payload: [], options: [1, 1, 1, 0] }),
        0,
        24,
      ),
      24,
    );
    assert.equal(ipv4HeaderLength(echo(64), 0, 19), 0, 'shorter than a header');
    const v6 = echo(64);
    v6[0] = 0x60;
    assert.equal(ipv4HeaderLength(v6, 0, v6.length), 0, 'IPv6 is not forwarded');
    const badIhl = echo(64);
    badIhl[0] = 0x44;
    assert.equal(ipv4HeaderLength(badIhl, 0, badIhl.length), 0);
  });

  it('builds ICMP destination net unreachable back to the sender, quoting header + 8 bytes', () => {
    const tcp = ipv4({
      src: '10.244.1.7',
      dst: '10.244.99.3',
      ttl: 64,
      proto: 6,
      payload: Array.from({ length: 40 }, (_, i) => i),
    });
    const icmp = netUnreachable(tcp, 0, tcp.length);
    assert.equal(icmp.length, 20 + 8 + 20 + 8);
    assert.equal(icmp[0], 0x45);
    assert.equal(new DataView(icmp.buffer).getUint16(2), icmp.length, 'total length');
    assert.equal(icmp[9], 1, 'protocol ICMP');
    assert.ok(icmp[8]! > 1, 'a TTL that survives the kernel');
    assert.equal(readU32(icmp, 12), parseIPv4('10.244.99.3'), 'from the unreachable destination');
    assert.equal(readU32(icmp, 16), parseIPv4('10.244.1.7'), 'to the sender');
    assert.equal(internetChecksum(icmp, 0, 20), 0, 'IP checksum');
    assert.deepEqual([icmp[20], icmp[21]], [3, 0], 'type 3 code 0');
    assert.deepEqual([...icmp.subarray(24, 28)], [0, 0, 0, 0], 'unused word');
    assert.equal(internetChecksum(icmp, 20, icmp.length - 20), 0, 'ICMP checksum');
    assert.deepEqual(icmp.subarray(28), tcp.subarray(0, 28), 'quoted header and first 8 bytes');
  });

  it('quotes a short packet whole', () => {
    const udp = ipv4({ src: '10.244.1.7', dst: '10.244.99.3', ttl: 64, proto: 17, payload: [1, 2, 3] });
    const icmp = netUnreachable(udp, 0, udp.length);
    assert.deepEqual(icmp.subarray(28), udp);
    assert.equal(internetChecksum(icmp, 20, icmp.length - 20), 0, 'odd-length ICMP checksum');
  });

  it('sends no ICMP error about ICMP or non-first fragments', () => {
    assert.equal(wantsUnreachable(echo(64), 0), false, 'ICMP');
    const first = ipv4({ src: '1.1.1.1', dst: '2.2.2.2', ttl: 9, proto: 17, payload: [0], frag: 0x2000 });
    assert.equal(wantsUnreachable(first, 0), true, 'first fragment (MF, offset 0)');
    const later = ipv4({ src: '1.1.1.1', dst: '2.2.2.2', ttl: 9, proto: 17, payload: [0], frag: 0x2000 | 185 });
    assert.equal(wantsUnreachable(later, 0), false, 'offset 185');
    const last = ipv4({ src: '1.1.1.1', dst: '2.2.2.2', ttl: 9, proto: 6, payload: [0], frag: 370 });
    assert.equal(wantsUnreachable(last, 0), false, 'last fragment');
  });

  it('matches destinations to peer subnets, longest prefix first', () => {
    const r = new PeerRoutes();
    r.set(IPv4Net.parse('10.244.2.0/24'), parseIPv4('192.168.1.12'));
    r.set(IPv4Net.parse('10.244.3.0/24'), parseIPv4('192.168.1.13'));
    r.set(IPv4Net.parse('10.244.2.128/25'), parseIPv4('192.168.1.99'));
    assert.equal(r.lookup(parseIPv4('10.244.2.5')), parseIPv4('192.168.1.12'));
    assert.equal(r.lookup(parseIPv4('10.244.2.200')), parseIPv4('192.168.1.99'));
    assert.equal(r.lookup(parseIPv4('10.244.3.255')), parseIPv4('192.168.1.13'));
    assert.equal(r.lookup(parseIPv4('10.244.4.1')), undefined);
    assert.equal(r.size, 3);
    assert.equal(r.delete(IPv4Net.parse('10.244.2.128/25')), true);
    assert.equal(r.delete(IPv4Net.parse('10.244.2.128/25')), false);
    assert.equal(r.lookup(parseIPv4('10.244.2.200')), parseIPv4('192.168.1.12'));
    r.set(IPv4Net.parse('10.244.2.0/24'), parseIPv4('192.168.1.50'));
    assert.equal(r.lookup(parseIPv4('10.244.2.1')), parseIPv4('192.168.1.50'), 'a changed lease moves the subnet');
  });

  it('reads Port (default 8285) and derives MTU ext − 28', () => {
    assert.deepEqual(parseUdpOptions({ Type: 'udp' }), { port: 8285 });
    assert.deepEqual(parseUdpOptions({ Type: 'udp', port: 9000 }), { port: 9000 });
    assert.throws(() => parseUdpOptions({ Port: 70000 }), /udp Backend.Port 70000 is out of range; use 1-65535/);
    assert.equal(udpDeviceMtu(1500), 1472);
    assert.throws(() => udpDeviceMtu(90), /MTU 90 is too small/);
  });
});
