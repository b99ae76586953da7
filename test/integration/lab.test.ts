// The whole path end to end: `flannelctl lab up` (etcd + 3 flanneld + CNI pods), checked against the reference state of
// docs/COMPATIBILITY.md, "Kernel state per backend", a flanneld restart without packet loss, and `lab down` leaving
// nothing behind.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { bridgeJson, ipJson, nsRun, pings } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import {
  assertLabGone,
  etcdctl,
  etcdLeases,
  lab,
  LAB_HOSTS as hosts,
  LAB_UNDERLAY as underlay,
  labDownQuietly,
  labPids,
  labSkip,
  subnetEnv,
  subnetEnvFile,
  vtepMac,
} from '../helpers/lab.ts';

describe('lab: 3 hosts × 2 pods over vxlan', { skip: labSkip }, () => {
  let upOutput = '';
  before(() => {
    upOutput = lab(['up', '--hosts', '3', '--pods-per-host', '2']);
  });
  after(labDownQuietly);

  it('ends with a full ping matrix at 0 % loss', () => {
    // 6 pods: 30 pod pairs, plus 6 pods × 2 other hosts' underlay IPs.
    assert.match(upOutput, /All 42 pairs at 0 % loss\./, upOutput);
  });

  it('writes subnet.env per host with the spec lines in order', () => {
    const subnets = new Set<string>();
    for (const h of hosts) {
      const file = subnetEnvFile(h);
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
      const mac = vtepMac(h);
      assert.equal(
        entry.value,
        `{"PublicIP":"${underlay[h]}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`,
      );
    }
  });

  it('programs the documented vxlan state on every host', () => {
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
      assert.deepEqual(
        addrs.map((a: any) => `${a.local}/${a.prefixlen}`),
        [`${own}/32`],
      );
      for (const peer of hosts.filter((p) => p !== h)) {
        const peerSubnet = subnetEnv(peer).FLANNEL_SUBNET!.replace('.1/24', '.0');
        const peerMac = vtepMac(peer);
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
    assert.match(
      nat,
      new RegExp(
        `-A FLANNEL-POSTRTG -s ${own.replace(/\./g, '\\.')} -d 10\\.244\\.0\\.0/16 -m comment --comment "flanneld masq" -j RETURN`,
      ),
    );
    assert.match(
      nat,
      /-A FLANNEL-POSTRTG -s 10\.244\.0\.0\/16 ! -d 224\.0\.0\.0\/4 -m comment --comment "flanneld masq" -j MASQUERADE/,
    );
    const fwd = nsRun('flab-h1', 'iptables', ['-t', 'filter', '-S', 'FLANNEL-FWD']);
    assert.match(fwd, /-A FLANNEL-FWD -s 10\.244\.0\.0\/16 -m comment --comment "flanneld forward" -j ACCEPT/);
  });

  it('restarts one flanneld without losing a pod-to-pod ping, keeping its subnet', async () => {
    const before = subnetEnv('flab-h2').FLANNEL_SUBNET;
    const target = JSON.parse(readFileSync('/run/flannel-lab/state.json', 'utf8')).pods['flab-h2-p1'] as string;
    // 0.05 s interval for about 8 s, bounded by -c and -w.
    const pinger = spawn(
      'ip',
      ['netns', 'exec', 'flab-h1-p1', 'ping', '-n', '-q', '-i', '0.05', '-c', '160', '-w', '20', target],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    pinger.stdout.on('data', (b) => (out += b));
    const done = new Promise<number>((r) => pinger.on('close', (c) => r(c ?? 1)));
    await new Promise((r) => setTimeout(r, 1000));
    lab(['restart', 'h2']);
    await done;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
    assert.ok(m, out);
    assert.ok(Number(m[1]) >= 100, `sent ${m[1]}`);
    assert.equal(Number(m[1]) - Number(m[2]), 0, `lost pings during the restart: ${out}`);
    assert.equal(subnetEnv('flab-h2').FLANNEL_SUBNET, before);
    assert.equal(Object.keys(etcdLeases()).length, 3, 'no second lease for the restarted host');
  });

  it("heals h2's key after someone overwrote it: peers keep their route to h2 across restarts, h2 restarts on its subnet", async () => {
    const subnet = subnetEnv('flab-h2').FLANNEL_SUBNET!;
    const key = `/coreos.com/network/subnets/${subnet.replace('.1/24', '.0-24')}`;
    const value = `{"PublicIP":"${underlay['flab-h2']}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${vtepMac('flab-h2')}"}}`;
    const healed = () => {
      const l = etcdLeases()[key];
      return l !== undefined && l.value === value && l.lease !== '0';
    };
    // A plain put: garbage, and the key detached from its etcd lease.
    etcdctl(['put', key, 'garbage']);
    await until('h2 to write its key back', healed, 10_000, 100);
    assert.match(
      readFileSync('/run/flannel-lab/h2/flanneld.log', 'utf8'),
      /own lease was overwritten with a value that is no lease/,
    );
    const target = JSON.parse(readFileSync('/run/flannel-lab/state.json', 'utf8')).pods['flab-h2-p1'] as string;
    lab(['restart', 'h3']);
    await until(
      'h3 to route to h2 again',
      () => ipJson('flab-h3', ['route', 'show', subnet.replace('.1/24', '.0/24')]).length === 1,
      10_000,
      100,
    );
    assert.ok(pings('flab-h3-p1', target, { count: 3 }), `h3's pod reaches h2's pod ${target}`);
    lab(['restart', 'h2']);
    assert.equal(subnetEnv('flab-h2').FLANNEL_SUBNET, subnet, 'h2 keeps its subnet');
    assert.ok(healed());
    assert.equal(Object.keys(etcdLeases()).length, 3);
  });

  it('lab doctor finds nothing on a healthy host, and names a disabled ip_forward and a stale cni0 address with their fixes', () => {
    for (const h of ['h1', 'h2', 'h3'])
      assert.match(lab(['doctor', h]), /^All is well: \d+ checks found nothing wrong\.\n$/);
    nsRun('flab-h2', 'sysctl', ['-qw', 'net.ipv4.ip_forward=0']);
    nsRun('flab-h2', 'ip', ['addr', 'add', '10.244.250.1/24', 'dev', 'cni0']);
    try {
      const r = spawnSync(
        process.execPath,
        [join(import.meta.dirname, '../../dist/flannelctl.cjs'), 'lab', 'doctor', 'h2', '--json'],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 1, r.stderr);
      const d = JSON.parse(r.stdout) as {
        ok: boolean;
        findings: { id: string; evidence: string[]; fix: string }[];
        checked: string[];
      };
      assert.equal(d.ok, false);
      assert.deepEqual(
        d.findings.map((f) => f.id),
        ['ip-forward-disabled', 'cni-bridge-mismatch'],
      );
      assert.deepEqual(d.findings[0]!.evidence, ['net.ipv4.ip_forward = 0']);
      assert.match(d.findings[1]!.fix, /ip link delete cni0/);
      assert.ok(d.checked.includes('peer-unprogrammed'));
    } finally {
      nsRun('flab-h2', 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
      nsRun('flab-h2', 'ip', ['addr', 'del', '10.244.250.1/24', 'dev', 'cni0']);
    }
    assert.match(lab(['doctor', 'h2']), /^All is well/);
  });

  it('lab doctor names a host whose flanneld is gone', () => {
    for (const pid of execFileSync('ip', ['netns', 'pids', 'flab-h3'], { encoding: 'utf8' })
      .split(/\s+/)
      .filter(Boolean))
      process.kill(Number(pid), 'SIGKILL');
    const r = spawnSync(
      process.execPath,
      [join(import.meta.dirname, '../../dist/flannelctl.cjs'), 'lab', 'doctor', 'h3'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /ERROR \[flanneld-not-running\] flanneld does not answer/);
    assert.match(r.stdout, /GET http:\/\/127\.0\.0\.1:8081\/healthz: no answer/);
    lab(['restart', 'h3']);
    assert.match(lab(['doctor', 'h3']), /^All is well/);
  });

  it('lab status reports the matrix again at 0 % loss', () => {
    assert.match(lab(['status']), /All 42 pairs at 0 % loss\./);
  });

  it('lab down leaves no namespace, process or file behind', () => {
    const pids = labPids();
    assert.ok(pids.length >= 4, `etcd and three flanneld run in the lab: ${pids}`);
    lab(['down']);
    assertLabGone({ pids });
  });
});
