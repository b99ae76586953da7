// The udp backend in namespaces: the kernel state of docs/COMPATIBILITY.md, "Kernel state per backend", ping across,
// ICMP net unreachable, TTL handling, lease churn, and the wire format against a hand-driven peer (raw IP packet as the
// UDP payload, nothing else).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IPv4Net, parseIPv4 } from '../../src/ip/ipv4.ts';
import { internetChecksum, readU32 } from '../../src/backend/udp/packet.ts';
import { MemoryCluster } from '../helpers/memory-subnet-manager.ts';
import { ipJson, isRoot, Netns } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { Underlay } from '../helpers/backend-node.ts';
import { UdpNode, WirePeer, udpConfig } from '../helpers/udp-nodes.ts';
import { requireTool } from '../helpers/tools.ts';

const A = { addr: '192.168.61.11', subnet: '10.244.1.0/24' };
const B = { addr: '192.168.61.12', subnet: '10.244.2.0/24' };
const C = { addr: '192.168.61.13', subnet: '10.244.3.0/24' };

/** Asynchronous: the data plane runs on this process's event loop, so a blocking spawnSync would starve it. */
async function ping(ns: string, dst: string, extra: string[] = []): Promise<{ ok: boolean; out: string }> {
  const { stdout, stderr, code } = await runAsync('ip', [
    'netns',
    'exec',
    ns,
    'ping',
    '-n',
    '-c',
    '2',
    '-i',
    '0.2',
    '-W',
    '1',
    ...extra,
    dst,
  ]);
  return { ok: code === 0, out: `${stdout}${stderr}` };
}

function runAsync(
  cmd: string,
  args: string[],
  timeoutMs = 10_000,
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ stdout, stderr, code: err ? (typeof err.code === 'number' ? err.code : null) : 0 });
    });
    child.stdin?.end();
  });
}

/** Prints the error code of a TCP connect (or "connected"); bounded by a 3 s timeout. */
const CONNECT_SCRIPT = `
const s = require('node:net').connect(Number(process.argv[2]), process.argv[1]);
s.setTimeout(3000, () => { console.log('TIMEOUT'); process.exit(); });
s.on('connect', () => { console.log('connected'); process.exit(); });
s.on('error', (e) => { console.log(e.code); process.exit(); });
`;

/** An ICMP echo request as a real flannel peer would put it in a UDP payload. */
function echoRequest(src: string, dst: string, id: number, seq: number, data: number[]): Uint8Array {
  const icmpLen = 8 + data.length;
  const p = new Uint8Array(20 + icmpLen);
  const dv = new DataView(p.buffer);
  p[0] = 0x45;
  dv.setUint16(2, p.length);
  dv.setUint16(4, 0x4242);
  dv.setUint16(6, 0x4000);
  p[8] = 64;
  p[9] = 1;
  dv.setUint32(12, parseIPv4(src));
  dv.setUint32(16, parseIPv4(dst));
  dv.setUint16(10, internetChecksum(p, 0, 20));
  p[20] = 8;
  dv.setUint16(24, id);
  dv.setUint16(26, seq);
  p.set(data, 28);
  dv.setUint16(22, internetChecksum(p, 20, icmpLen));
  return p;
}

/** The packets of a pcap file (LINKTYPE_RAW on a TUN device: each record is an IP packet). */
function pcapPackets(file: string): Buffer[] {
  const b = readFileSync(file);
  assert.equal(b.readUInt32LE(0), 0xa1b2c3d4, 'little-endian microsecond pcap');
  const out: Buffer[] = [];
  for (let off = 24; off + 16 <= b.length; ) {
    const incl = b.readUInt32LE(off + 8);
    out.push(b.subarray(off + 16, off + 16 + incl));
    off += 16 + incl;
  }
  return out;
}

describe('udp backend', { skip: !isRoot && 'needs root' }, () => {
  const netns = new Netns();
  const cluster = new MemoryCluster(udpConfig());
  let a: UdpNode;
  let b: UdpNode;
  let peer: WirePeer;
  let nsC: string;
  const tmp = mkdtempSync(join(tmpdir(), 'fl-udp-'));

  before(async () => {
    const underlay = new Underlay(netns);
    a = await new UdpNode(underlay.host('fl-ua', A.addr), A.addr, A.subnet, cluster).start();
    b = await new UdpNode(underlay.host('fl-ub', B.addr), B.addr, B.subnet, cluster).start();
    nsC = underlay.host('fl-uc', C.addr);
    peer = await new WirePeer(nsC, C.addr, 8285).start();
  });
  after(async () => {
    peer?.stop();
    await a?.stop();
    await b?.stop();
    netns.cleanup();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('creates flannel0 as documented: tun without PI, mtu ext − 28, lease network /32, route for Network', () => {
    const [link] = ipJson(a.ns, ['-d', 'link', 'show', 'flannel0']);
    assert.equal(link.linkinfo.info_kind, 'tun');
    assert.equal(link.linkinfo.info_data.type, 'tun');
    assert.equal(link.linkinfo.info_data.pi, false);
    assert.equal(link.mtu, 1472);
    assert.ok(link.flags.includes('UP'));
    const [addr] = ipJson(a.ns, ['-4', 'addr', 'show', 'flannel0']);
    assert.deepEqual(
      addr.addr_info.map((x: any) => `${x.local}/${x.prefixlen}`),
      ['10.244.1.0/32'],
    );
    const routes = ipJson(a.ns, ['route', 'show', 'dev', 'flannel0']);
    assert.deepEqual(
      routes.map((r: any) => [r.dst, r.gateway, r.scope]),
      [['10.244.0.0/16', undefined, undefined]],
    );
    assert.equal(a.network.mtu, 1472, 'subnet.env MTU');
  });

  it('publishes only PublicIP: no BackendType, no BackendData', () => {
    const lease = cluster.leases.get(A.subnet)!;
    assert.deepEqual(lease.attrs, { publicIP: A.addr, publicIPv6: null, backendType: '' });
  });

  it('binds the UDP socket to <interface IP>:8285', () => {
    const out = spawnSync('ip', ['netns', 'exec', a.ns, 'ss', '-Hnlu'], { encoding: 'utf8' }).stdout;
    assert.match(out, new RegExp(`${A.addr.replace(/\./g, '\\.')}:8285\\b`), out);
  });

  it('pings across the overlay', async () => {
    await until(
      'both peers known',
      () => a.network.dataPlane.routes.size >= 1 && b.network.dataPlane.routes.size >= 1,
      3000,
      25,
    );
    const r = await ping(a.ns, '10.244.2.0');
    assert.ok(r.ok, r.out);
    assert.match(r.out, /2 received/);
    assert.ok(a.network.dataPlane.stats.toPeers >= 2 && b.network.dataPlane.stats.fromPeers >= 2);
  });

  it('reports each peer programmed once the data plane routes to it, with its subnet, public IP and since', async () => {
    const p = await until(
      'B programmed on A',
      () => a.network.peers().find((x) => x.subnet === B.subnet && x.state === 'programmed'),
      3000,
      25,
    );
    assert.deepEqual(a.network.peers(), [{ subnet: B.subnet, publicIP: B.addr, state: 'programmed', since: p.since }]);
    assert.match(p.since, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Date.parse(p.since) <= Date.now());
    assert.equal(a.network.dataPlane.routes.get(IPv4Net.parse(B.subnet)), parseIPv4(B.addr), 'in the routing table');
    assert.deepEqual(
      b.network.peers().map((x) => [x.subnet, x.publicIP, x.state]),
      [[A.subnet, A.addr, 'programmed']],
    );
  });

  it('answers an unknown destination with ICMP net unreachable (TCP connect fails with ENETUNREACH)', async () => {
    const before = a.network.dataPlane.stats.noRoute;
    const r = await runAsync('ip', [
      'netns',
      'exec',
      a.ns,
      process.execPath,
      '-e',
      CONNECT_SCRIPT,
      '10.244.99.1',
      '80',
    ]);
    assert.equal(r.stdout.trim(), 'ENETUNREACH', `${r.stdout}${r.stderr}`);
    assert.ok(a.network.dataPlane.stats.noRoute > before);
  });

  it('sends no ICMP error about ICMP: ping to an unknown destination just times out (as real flannel)', async () => {
    const before = a.network.dataPlane.stats.noRoute;
    const r = await ping(a.ns, '10.244.99.1', ['-c', '1']);
    assert.equal(r.ok, false);
    assert.match(r.out, /1 packets transmitted, 0 received/);
    assert.doesNotMatch(r.out, /Unreachable/);
    assert.ok(a.network.dataPlane.stats.noRoute > before, 'the echo request reached the data plane');
  });

  it('drops a packet whose TTL runs out: 1 at the sender, 2 at the receiver (each side decrements)', async () => {
    const before = a.network.dataPlane.stats.ttlExpired;
    const t1 = await ping(a.ns, '10.244.2.0', ['-t', '1']);
    assert.equal(t1.ok, false, t1.out);
    assert.match(t1.out, /0 received/);
    assert.doesNotMatch(t1.out, /Time to live exceeded|Unreachable/);
    assert.ok(a.network.dataPlane.stats.ttlExpired >= before + 2);
    assert.equal((await ping(a.ns, '10.244.2.0', ['-t', '2'])).ok, false);
    const t3 = await ping(a.ns, '10.244.2.0', ['-t', '3']);
    assert.ok(t3.ok, t3.out);
  });

  it('sends the inner packet as the UDP payload, byte-identical but for TTL − 1 and the header checksum', async () => {
    cluster.put(C.subnet, { publicIP: C.addr, publicIPv6: null, backendType: '' });
    await until('C known on A', () => a.network.dataPlane.routes.size >= 2, 3000, 25);
    requireTool('tcpdump');
    const pcap = join(tmp, 'flannel0.pcap');
    const dump = spawn('ip', [
      'netns',
      'exec',
      a.ns,
      'tcpdump',
      '-i',
      'flannel0',
      '-n',
      '-U',
      '-c',
      '1',
      '-w',
      pcap,
      'icmp and dst host 10.244.3.5',
    ]);
    const exited = new Promise<void>((r) => dump.on('exit', () => r()));
    let err = '';
    dump.stderr.on('data', (d) => (err += d));
    await until('tcpdump listening', () => /listening on/.test(err), 5000, 25);
    try {
      await runAsync('ip', ['netns', 'exec', a.ns, 'ping', '-n', '-c', '1', '-W', '1', '-p', 'c0ffee', '10.244.3.5']);
      const got = await peer.next((p) => p.length >= 20 && readU32(p, 16) === parseIPv4('10.244.3.5'));
      assert.equal(got.from, `${A.addr}:8285`, 'sent from the bound socket');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      const [inner] = pcapPackets(pcap);
      assert.ok(inner, `tcpdump captured nothing: ${err}`);
      const wire = got.payload;
      assert.equal(wire.length, inner.length, 'no extra header');
      assert.equal(wire[8], inner[8]! - 1, 'TTL decremented once');
      assert.equal(internetChecksum(wire, 0, 20), 0, 'header checksum valid');
      for (let i = 0; i < inner.length; i++) {
        if (i !== 8 && i !== 10 && i !== 11) assert.equal(wire[i], inner[i], `byte ${i}`);
      }
      assert.ok(wire.includes(Buffer.from('c0ffeec0ffee', 'hex')), 'ping pattern in the payload');
    } finally {
      dump.kill('SIGKILL');
    }
  });

  it('takes a raw IP packet from a peer and returns the kernel answer the same way', async () => {
    const data = [...Buffer.from('flannel-wire-test')];
    peer.send(A.addr, 8285, echoRequest('10.244.3.5', '10.244.1.0', 0x77, 3, data));
    const reply = await peer.next((p) => p.length >= 28 && p[9] === 1 && p[20] === 0 && p.readUInt16BE(24) === 0x77);
    const r = reply.payload;
    assert.equal(readU32(r, 12), parseIPv4('10.244.1.0'));
    assert.equal(readU32(r, 16), parseIPv4('10.244.3.5'));
    assert.equal(r.readUInt16BE(26), 3, 'sequence');
    assert.deepEqual([...r.subarray(28)], data, 'echo data');
    assert.equal(internetChecksum(r, 0, 20), 0);
    assert.equal(internetChecksum(r, 20, r.length - 20), 0);
    // A's kernel sends with TTL 64; the TUN side takes one.
    assert.equal(r[8], 63);
  });

  it('drops garbage from the UDP socket and keeps forwarding', async () => {
    const before = a.network.dataPlane.stats.malformed;
    peer.send(A.addr, 8285, Uint8Array.from([1, 2, 3]));
    peer.send(A.addr, 8285, new Uint8Array(40).fill(0x60));
    await until('garbage counted', () => a.network.dataPlane.stats.malformed >= before + 2, 3000, 25);
    assert.ok((await ping(a.ns, '10.244.2.0')).ok);
  });

  it('ignores leases of other backends and forgets removed ones', async () => {
    cluster.put('10.244.4.0/24', {
      publicIP: '192.168.61.14',
      publicIPv6: null,
      backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: '0e:00:00:00:00:04' },
    });
    cluster.remove(C.subnet);
    await until('C forgotten', () => a.network.dataPlane.routes.size === 1, 3000, 25);
    for (const dst of ['10.244.4.1', '10.244.3.5']) {
      const r = await runAsync('ip', ['netns', 'exec', a.ns, process.execPath, '-e', CONNECT_SCRIPT, dst, '80']);
      assert.equal(r.stdout.trim(), 'ENETUNREACH', `${dst}: ${r.stdout}${r.stderr}`);
    }
    assert.ok((await ping(a.ns, '10.244.2.0')).ok, 'B still reachable');
    assert.deepEqual(
      a.network.peers().map((x) => [x.subnet, x.state]),
      [[B.subnet, 'programmed']],
      'no other backend, nor the removed peer',
    );
  });

  it('reports a peer whose PublicIP it cannot route to failed with why, and programmed once its lease is fixed', async () => {
    cluster.put('10.244.5.0/24', { publicIP: 'not-an-ip', publicIPv6: null, backendType: '' });
    const failed = await until(
      'the bad peer failed',
      () => a.network.peers().find((x) => x.subnet === '10.244.5.0/24'),
      3000,
      25,
    );
    assert.deepEqual(failed, {
      subnet: '10.244.5.0/24',
      publicIP: 'not-an-ip',
      state: 'failed',
      reason: 'not in the routing table: its PublicIP cannot be used (invalid IPv4 address "not-an-ip")',
      since: failed.since,
    });
    assert.equal(a.network.dataPlane.routes.get(IPv4Net.parse('10.244.5.0/24')), undefined);
    await new Promise((r) => setTimeout(r, 5));
    cluster.put('10.244.5.0/24', { publicIP: '192.168.61.15', publicIPv6: null, backendType: '' });
    const ok = await until(
      'the fixed peer programmed',
      () => a.network.peers().find((x) => x.subnet === '10.244.5.0/24' && x.state === 'programmed'),
      3000,
      25,
    );
    assert.equal(ok.reason, undefined);
    assert.ok(Date.parse(ok.since) > Date.parse(failed.since), `${ok.since} after ${failed.since}`);
    assert.deepEqual(
      a.network.peers().map((x) => x.subnet),
      [B.subnet, '10.244.5.0/24'],
      'sorted by subnet',
    );
    cluster.remove('10.244.5.0/24');
    await until('it gone', () => a.network.peers().length === 1 && a.network.dataPlane.routes.size === 1, 3000, 25);
  });

  it('removes flannel0 when the network stops (its TUN fd closes)', async () => {
    await b.stop();
    await until(
      'flannel0 gone on B',
      () => ipJson(b.ns, ['link']).every((l: any) => l.ifname !== 'flannel0'),
      3000,
      25,
    );
    assert.equal(
      spawnSync('ip', ['netns', 'exec', b.ns, 'ss', '-Hnlu'], { encoding: 'utf8' }).stdout.includes(':8285'),
      false,
    );
  });
});
