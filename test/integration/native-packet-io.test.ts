// The addon's packet I/O for the udp backend: UDP sockets bound inside a namespace, batched sendmmsg/recvmmsg through
// the event-loop reader, truncation, errors other than EAGAIN, and a stop that really stops.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { netnsPath, tunOpen, withNetns, type NativeIoError } from '../../src/native/index.ts';
import { PacketReader, udpOpen, writeBatch, type PacketBatch } from '../../src/native/packet-io.ts';
import { parseIPv4 } from '../../src/ip/ipv4.ts';
import { isRoot, Netns, run } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';

const LO = parseIPv4('127.0.0.1');

describe('native packet I/O', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  let ns: string;
  const fds: number[] = [];
  const open = (ip: string, port: number) => {
    const fd = withNetns(netnsPath(ns), () => udpOpen(ip, port));
    fds.push(fd);
    return fd;
  };

  before(() => {
    ns = netns.add('fl-pio');
  });
  after(() => {
    for (const fd of fds) closeSync(fd);
    netns.cleanup();
  });

  it('binds inside the namespace and names a taken port or a bad address', () => {
    open('127.0.0.1', 40001);
    assert.throws(
      () => open('127.0.0.1', 40001),
      (e: any) => e.code === 'EADDRINUSE' && /bind 127\.0\.0\.1:40001: EADDRINUSE/.test(e.message),
    );
    assert.throws(() => udpOpen('10.0.0.300', 1), /udpOpen: 10\.0\.0\.300:1 is not an IPv4 address and port/);
    // The host namespace has no 10.77.0.1: EADDRNOTAVAIL there too, so nothing here depends on where we run.
    assert.throws(
      () => open('10.77.0.1', 40002),
      (e: any) => e.code === 'EADDRNOTAVAIL',
    );
  });

  it('sends a batch with sendmmsg and reads it back in batches, packet by packet intact', async () => {
    const rx = open('127.0.0.1', 40010);
    const tx = open('127.0.0.1', 40011);
    const got: string[] = [];
    let batches = 0;
    const reader = new PacketReader(rx, 'udp', {
      slotSize: 2048,
      slots: 8,
      onBatch: (b: PacketBatch) => {
        batches++;
        assert.ok(b.count >= 1 && b.count <= 8);
        for (let i = 0; i < b.count; i++)
          got.push(Buffer.from(b.data.subarray(i * b.slotSize, i * b.slotSize + b.lengths[i]!)).toString());
      },
      onError: (e) => assert.fail(e),
    });
    try {
      const n = 20;
      const data = new Uint8Array(n * 100);
      const desc = new Uint32Array(4 * n);
      for (let i = 0; i < n; i++) {
        const text = Buffer.from(`packet-${i}-`.padEnd(30 + i, 'x'));
        data.set(text, i * 100);
        desc.set([i * 100, text.length, LO, 40010], 4 * i);
      }
      assert.equal(writeBatch(tx, 'udp', data, desc, n), n);
      await until('20 datagrams read', () => got.length === n, 3000, 25);
      assert.deepEqual(
        got,
        Array.from({ length: n }, (_, i) => `packet-${i}-`.padEnd(30 + i, 'x')),
      );
      assert.ok(batches <= n && batches >= Math.ceil(n / 8), `${batches} wakeups for ${n} packets in slots of 8`);
    } finally {
      reader.stop();
    }
  });

  it('marks a datagram larger than a slot as truncated (-1)', async () => {
    const rx = open('127.0.0.1', 40020);
    const tx = open('127.0.0.1', 40021);
    const lengths: number[] = [];
    const reader = new PacketReader(rx, 'udp', {
      slotSize: 64,
      slots: 4,
      onBatch: (b) => lengths.push(...b.lengths.subarray(0, b.count)),
      onError: (e) => assert.fail(e),
    });
    try {
      writeBatch(tx, 'udp', new Uint8Array(200), Uint32Array.from([0, 200, LO, 40020, 0, 10, LO, 40020]), 2);
      await until('two datagrams', () => lengths.length === 2, 3000, 25);
      assert.deepEqual(lengths, [-1, 10]);
    } finally {
      reader.stop();
    }
  });

  it('reports send errors other than EAGAIN with the errno and what they cost, after trying every packet', () => {
    const tx = open('127.0.0.1', 40030);
    // No route to 10.9.9.9 in a namespace with only lo; the loopback packet in between still goes out.
    const desc = Uint32Array.from([0, 8, parseIPv4('10.9.9.9'), 9, 0, 8, LO, 40031, 0, 8, parseIPv4('10.9.9.9'), 9]);
    assert.throws(
      () => writeBatch(tx, 'udp', new Uint8Array(8), desc, 3),
      (e: any) => e.code === 'ENETUNREACH' && /sendmmsg \(2 of 3 packets dropped\): ENETUNREACH/.test(e.message),
    );
    assert.throws(
      () => writeBatch(tx, 'udp', new Uint8Array(8), Uint32Array.from([4, 8, LO, 1]), 1),
      /descriptor points outside data/,
    );
    assert.throws(
      () => writeBatch(tx, 'udp', new Uint8Array(8), Uint32Array.from([0, 8, LO, 1]), 2),
      /count exceeds the descriptors/,
    );
  });

  it('stops delivering after stop(), idempotently, and refuses a bad fd', async () => {
    const rx = open('127.0.0.1', 40040);
    const tx = open('127.0.0.1', 40041);
    let seen = 0;
    const reader = new PacketReader(rx, 'udp', {
      slotSize: 256,
      slots: 4,
      onBatch: (b) => (seen += b.count),
      onError: (e) => assert.fail(e),
    });
    const one = () => writeBatch(tx, 'udp', new Uint8Array(4), Uint32Array.from([0, 4, LO, 40040]), 1);
    one();
    await until('first datagram', () => seen === 1, 3000, 25);
    reader.stop();
    reader.stop();
    assert.equal(reader.running, false);
    one();
    await sleep(200);
    assert.equal(seen, 1, 'nothing delivered after stop');
    assert.throws(
      () => new PacketReader(987654, 'udp', { slotSize: 256, slots: 4, onBatch: () => {}, onError: () => {} }),
      /startReader uv_poll: EBADF/,
    );
  });

  it('reports a TUN read error and stops when the device is deleted under it', async () => {
    const tun = withNetns(netnsPath(ns), () => tunOpen('fltest%d'));
    fds.push(tun.fd);
    const errors: NativeIoError[] = [];
    const reader = new PacketReader(tun.fd, 'tun', {
      slotSize: 2048,
      slots: 4,
      onBatch: () => {},
      onError: (e) => errors.push(e),
    });
    try {
      run('ip', ['-n', ns, 'link', 'del', tun.name]);
      await until('a read error', () => errors.length > 0, 3000, 25);
      assert.equal(errors[0]!.stopped, true);
      assert.match(errors[0]!.message, /^read tun: /);
      assert.equal(reader.running, false);
    } finally {
      reader.stop();
    }
  });
});
