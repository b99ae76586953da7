// The whole path end to end: `flannelctl lab up` (etcd + 3 flanneld + CNI pods), checked against the spec's
// reference state, a flanneld restart without packet loss, and `lab down` leaving nothing behind.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { bridgeJson, ipJson, isRoot, nsRun } from '../helpers/netns.ts';

const dist = join(import.meta.dirname, '../../dist');
const ctl = (args: string[]) => execFileSync(process.execPath, [join(dist, 'flannelctl.cjs'), 'lab', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
const hosts = ['flab-h1', 'flab-h2', 'flab-h3'];
const underlay: Record<string, string> = { 'flab-h1': '192.168.100.11', 'flab-h2': '192.168.100.12', 'flab-h3': '192.168.100.13' };

function subnetEnv(host: string): Record<string, string> {
  const text = readFileSync(`/run/flannel-lab/${host.replace('flab-', '')}/subnet.env`, 'utf8');
  return Object.fromEntries(text.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
function etcdctl(args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', 'flab-etcd', 'etcdctl', '--endpoints=http://192.168.100.2:2379', ...args], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' } });
}
function etcdLeases(): Record<string, { value: any; lease: string }> {
  const out = etcdctl(['get', '--prefix', '/coreos.com/network/subnets/', '-w', 'json']);
  // Lease IDs are int64: keep them as strings, JSON numbers would lose precision.
  const kvs = (JSON.parse(out.replace(/"lease":(\d+)/g, '"lease":"$1"')).kvs ?? []) as { key: string; value: string; lease?: string }[];
  return Object.fromEntries(kvs.map((kv) => [Buffer.from(kv.key, 'base64').toString(), { value: Buffer.from(kv.value, 'base64').toString(), lease: kv.lease ?? '0' }]));
}

describe('lab: 3 hosts × 2 pods over vxlan', { skip: !isRoot || !existsSync(join(dist, 'flannelctl.cjs')) ? 'needs root and `npm run build`' : false }, () => {
  let upOutput = '';
  before(() => {
    upOutput = ctl(['up', '--hosts', '3', '--pods-per-host', '2']);
  });
  after(() => {
    try {
      ctl(['down']);
    } catch {
      /* checked in the last test */
    }
  });

  it('ends with a full ping matrix at 0 % loss', () => {
    // 6 pods: 30 pod pairs, plus 6 pods × 2 other hosts' underlay IPs.
    assert.match(upOutput, /All 42 pairs at 0 % loss\./, upOutput);
  });

  it('writes subnet.env per host with the spec lines in order', () => {
    const subnets = new Set<string>();
    for (const h of hosts) {
      const file = `/run/flannel-lab/${h.replace('flab-', '')}/subnet.env`;
      const lines = readFileSync(file, 'utf8').split('\n');
      assert.equal(lines[0], 'FLANNEL_NETWORK=10.244.0.0/16');
      assert.match(lines[1]!, /^FLANNEL_SUBNET=10\.244\.\d+\.1\/24$/);
      assert.equal(lines[2], 'FLANNEL_MTU=1450');
      assert.equal(lines[3], 'FLANNEL_IPMASQ=true');
      assert.equal((statSync(file).mode & 0o777).toString(8), '644');
      subnets.add(lines[1]!);
    }
    assert.equal(subnets.size, 3, 'every host has its own subnet');
  });

  it('holds one lease per host in etcd with the spec key and JSON and a 24 h etcd lease', () => {
    const leases = etcdLeases();
    assert.equal(Object.keys(leases).length, 3);
    for (const h of hosts) {
      const sub = subnetEnv(h).FLANNEL_SUBNET!.replace('.1/24', '.0-24');
      const entry = leases[`/coreos.com/network/subnets/${sub}`];
      assert.ok(entry, `lease for ${h} (${sub})`);
      assert.notEqual(entry.lease, '0', 'backed by an etcd lease');
      const ttl = JSON.parse(etcdctl(['lease', 'timetolive', BigInt(entry.lease).toString(16), '-w', 'json']));
      assert.equal(ttl['granted-ttl'], 86400);
      const mac = ipJson(h, ['link', 'show', 'flannel.1'])[0].address;
      assert.equal(entry.value, `{"PublicIP":"${underlay[h]}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`);
    }
  });

  it("programs Appendix A's vxlan state on every host", () => {
    for (const h of hosts) {
      const env = subnetEnv(h);
      const own = env.FLANNEL_SUBNET!.replace('.1/24', '.0');
      const link = ipJson(h, ['-d', 'link', 'show', 'flannel.1'])[0];
      assert.equal(link.mtu, 1450);
      assert.equal(link.linkinfo.info_kind, 'vxlan');
      const vx = link.linkinfo.info_data;
      assert.equal(vx.id, 1);
      assert.equal(vx.local, underlay[h]);
      assert.equal(vx.port, 8472);
      assert.equal(vx.learning, false);
      assert.equal(vx.link, 'eth0');
      assert.match(link.address, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      assert.equal(parseInt(link.address.slice(0, 2), 16) & 3, 2, 'locally administered unicast MAC');
      const addrs = ipJson(h, ['-4', 'addr', 'show', 'flannel.1'])[0].addr_info;
      assert.deepEqual(addrs.map((a: any) => `${a.local}/${a.prefixlen}`), [`${own}/32`]);
      for (const peer of hosts.filter((p) => p !== h)) {
        const peerSubnet = subnetEnv(peer).FLANNEL_SUBNET!.replace('.1/24', '.0');
        const peerMac = ipJson(peer, ['link', 'show', 'flannel.1'])[0].address;
        const route = ipJson(h, ['route', 'show', `${peerSubnet}/24`])[0];
        assert.equal(route.gateway, peerSubnet);
        assert.equal(route.dev, 'flannel.1');
        assert.ok(route.flags.includes('onlink'));
        const neigh = ipJson(h, ['neigh', 'show', 'dev', 'flannel.1', 'to', peerSubnet])[0];
        assert.equal(neigh.lladdr, peerMac);
        assert.deepEqual(neigh.state, ['PERMANENT']);
        const fdb = bridgeJson(h, ['fdb', 'show', 'dev', 'flannel.1']).filter((f: any) => f.mac === peerMac);
        assert.equal(fdb.length, 1);
        assert.equal(fdb[0].dst, underlay[peer]);
        assert.ok(fdb[0].flags.includes('self'));
        assert.equal(fdb[0].state, 'permanent');
      }
    }
  });

  it('installs the FLANNEL-POSTRTG and FLANNEL-FWD rules', () => {
    const own = subnetEnv('flab-h1').FLANNEL_SUBNET!.replace('.1/24', '.0/24');
    const nat = nsRun('flab-h1', 'iptables', ['-t', 'nat', '-S', 'FLANNEL-POSTRTG']);
    assert.match(nat, new RegExp(`-A FLANNEL-POSTRTG -s ${own.replace(/\./g, '\\.')} -d 10\\.244\\.0\\.0/16 -m comment --comment "flanneld masq" -j RETURN`));
    assert.match(nat, /-A FLANNEL-POSTRTG -s 10\.244\.0\.0\/16 ! -d 224\.0\.0\.0\/4 -m comment --comment "flanneld masq" -j MASQUERADE/);
    const fwd = nsRun('flab-h1', 'iptables', ['-t', 'filter', '-S', 'FLANNEL-FWD']);
    assert.match(fwd, /-A FLANNEL-FWD -s 10\.244\.0\.0\/16 -m comment --comment "flanneld forward" -j ACCEPT/);
  });

  it('restarts one flanneld without losing a pod-to-pod ping, keeping its subnet', async () => {
    const before = subnetEnv('flab-h2').FLANNEL_SUBNET;
    const target = JSON.parse(readFileSync('/run/flannel-lab/state.json', 'utf8')).pods['flab-h2-p1'] as string;
    // 0.05 s interval for about 8 s, bounded by -c and -w.
    const pinger = spawn('ip', ['netns', 'exec', 'flab-h1-p1', 'ping', '-n', '-q', '-i', '0.05', '-c', '160', '-w', '20', target], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    pinger.stdout.on('data', (b) => (out += b));
    const done = new Promise<number>((r) => pinger.on('close', (c) => r(c ?? 1)));
    await new Promise((r) => setTimeout(r, 1000));
    ctl(['restart', 'h2']);
    await done;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
    assert.ok(m, out);
    assert.ok(Number(m[1]) >= 100, `sent ${m[1]}`);
    assert.equal(Number(m[1]) - Number(m[2]), 0, `lost pings during the restart: ${out}`);
    assert.equal(subnetEnv('flab-h2').FLANNEL_SUBNET, before);
    assert.equal(Object.keys(etcdLeases()).length, 3, 'no second lease for the restarted host');
  });

  it('lab status reports the matrix again at 0 % loss', () => {
    assert.match(ctl(['status']), /All 42 pairs at 0 % loss\./);
  });

  it('lab down leaves no namespace, process or file behind', () => {
    ctl(['down']);
    const names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    assert.doesNotMatch(names, /flab-/);
    assert.equal(existsSync('/run/flannel-lab'), false);
    const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    assert.doesNotMatch(ps, /flanneld\.cjs|etcd --name lab/);
  });
});
