// `flannelctl doctor` against a real vxlan lab (3 hosts, etcd): every host healthy reports nothing; then each of the
// seeds' breakages is made by hand on a real host, the way the articles describe, and doctor names it by its id
// with a usable fix and exits 1. Where flanneld would mend the breakage within seconds (its rules every 5 s, its
// kernel entries on the deletion event), it is paused with SIGSTOP for the look and resumed afterwards.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { ipJson, nsRun } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import {
  assertDoctorHealthy,
  doctorIn,
  etcdctl,
  lab,
  LAB_UNDERLAY as underlay,
  labDoctor,
  labDownQuietly,
  labSkip,
  subnetEnv,
  subnetEnvFile,
  vtepMac,
  withFlanneldPaused,
  FIREWALLD_REJECT_VXLAN,
} from '../helpers/lab.ts';

const ETCD = '--etcd-endpoints=http://192.168.100.2:2379';
const CTL = join(import.meta.dirname, '../../dist/flannelctl.cjs');
const H1 = 'flab-h1';
const H2 = 'flab-h2';
const CONFIG_KEY = '/coreos.com/network/config';

/** doctor in a host without the health server (flanneld is paused there, so it would not answer). */
const quietDoctor = (ns: string, extra: string[] = []) =>
  doctorIn(ns, [ETCD, `--subnet-file=${subnetEnvFile(ns)}`, ...extra]);

const peerNet = (ns: string) => subnetEnv(ns).FLANNEL_SUBNET!.replace('.1/24', '.0');

async function healthyAgain(ns: string): Promise<void> {
  await until(`${ns} healthy again`, () => labDoctor(ns).status === 0, 15_000, 500);
}

describe('doctor on a real vxlan lab', { skip: labSkip }, () => {
  before(() => {
    lab(['up', '--hosts', '3', '--pods-per-host', '1']);
  });
  after(labDownQuietly);

  it('finds nothing on any healthy host, with --probe', () => {
    assertDoctorHealthy([H1, H2, 'flab-h3']);
  });

  it("public-ip-duplicate: a second lease with h3's public IP (Vagrant's one NAT address on every VM)", async () => {
    const key = '/coreos.com/network/subnets/10.244.250.0-24';
    const ip = underlay['flab-h3']!;
    etcdctl([
      'put',
      key,
      `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:fa:01"}}`,
    ]);
    try {
      const d = await until(
        'h1 to see the duplicate',
        () => {
          const r = labDoctor(H1);
          return r.ids.includes('public-ip-duplicate') && !r.ids.includes('peer-unprogrammed') && r;
        },
        15_000,
        500,
      );
      assert.deepEqual(d.ids, ['public-ip-duplicate']);
      assert.equal(d.status, 1);
      assert.ok(
        d.findings[0]!.evidence.some((e) => e.includes('10.244.250.0/24') && e.includes(ip)),
        d.stdout,
      );
      assert.match(d.findings[0]!.fix, /--iface=.*--iface-regex.*--iface-can-reach/);
    } finally {
      etcdctl(['del', key]);
    }
    await healthyAgain(H1);
  });

  it('underlay-route: a host whose route to a peer leaves through another interface', () => {
    nsRun(H1, 'ip', ['link', 'add', 'doc0', 'type', 'veth', 'peer', 'name', 'doc1']);
    try {
      nsRun(H1, 'ip', ['addr', 'add', '172.31.0.1/24', 'dev', 'doc0']);
      nsRun(H1, 'ip', ['link', 'set', 'doc0', 'up']);
      nsRun(H1, 'ip', ['link', 'set', 'doc1', 'up']);
      nsRun(H1, 'ip', ['route', 'add', `${underlay[H2]}/32`, 'via', '172.31.0.2', 'dev', 'doc0']);
      const d = labDoctor(H1);
      assert.deepEqual(d.ids, ['underlay-route'], d.stdout);
      assert.equal(d.status, 1);
      assert.ok(
        d.findings[0]!.evidence.includes(
          `ip route get ${underlay[H2]}: unicast via 172.31.0.2 dev doc0 src 172.31.0.1`,
        ),
        d.stdout,
      );
      assert.match(
        d.findings[0]!.fix,
        new RegExp(
          `ip route replace ${underlay[H2]!.replace(/\./g, '\\.')} dev eth0 src ${underlay[H1]!.replace(/\./g, '\\.')}`,
        ),
      );
    } finally {
      nsRun(H1, 'ip', ['link', 'del', 'doc0']);
    }
    assert.equal(labDoctor(H1).status, 0);
  });

  it('vtep-mismatch: the config names another vxlan port than the device was made with', () => {
    const config = etcdctl(['get', CONFIG_KEY, '--print-value-only']).trim();
    const changed = JSON.parse(config);
    changed.Backend = { ...changed.Backend, Port: 4789 };
    etcdctl(['put', CONFIG_KEY, JSON.stringify(changed)]);
    try {
      const d = labDoctor(H2);
      assert.deepEqual(d.ids, ['vtep-mismatch'], d.stdout);
      assert.match(d.findings[0]!.summary, /flannel\.1 sends to UDP port 8472, the config says 4789/);
      assert.match(d.findings[0]!.fix, /ip link delete flannel\.1 and restart flanneld/);
    } finally {
      etcdctl(['put', CONFIG_KEY, config]);
    }
  });

  it('mtu-mismatch: an underlay whose MTU shrank under the flannel device (no room for the vxlan header)', () => {
    nsRun(H2, 'ip', ['link', 'set', 'eth0', 'mtu', '1400']);
    try {
      const d = labDoctor(H2);
      assert.deepEqual(d.ids, ['mtu-mismatch'], d.stdout);
      assert.match(
        d.findings[0]!.summary,
        /flannel\.1's MTU 1450 leaves no room for the 50-byte vxlan header on eth0 \(MTU 1400\)/,
      );
      assert.match(d.findings[0]!.fix, /ip link set flannel\.1 mtu 1350/);
    } finally {
      nsRun(H2, 'ip', ['link', 'set', 'eth0', 'mtu', '1500']);
    }
  });

  it('bridge-nf-call: bridged pod traffic bypassing iptables is a warning, not an error', () => {
    nsRun(H2, 'sysctl', ['-qw', 'net.bridge.bridge-nf-call-iptables=0']);
    try {
      const d = labDoctor(H2);
      assert.deepEqual(
        d.findings.map((f) => [f.id, f.severity]),
        [['bridge-nf-call', 'warning']],
        d.stdout,
      );
      assert.equal(d.status, 0, 'a warning alone exits 0');
    } finally {
      nsRun(H2, 'sysctl', ['-qw', 'net.bridge.bridge-nf-call-iptables=1']);
    }
  });

  it('peer-unprogrammed, peer-mac-mismatch and peer-stale: kernel entries deleted, overwritten and left over', async () => {
    const h2Mac = vtepMac(H2);
    const h3Net = peerNet('flab-h3');
    try {
      withFlanneldPaused(H1, () => {
        nsRun(H1, 'bridge', ['fdb', 'del', h2Mac, 'dev', 'flannel.1', 'dst', underlay[H2]!]);
        nsRun(H1, 'ip', [
          'neigh',
          'replace',
          h3Net,
          'lladdr',
          '0e:00:00:00:00:99',
          'dev',
          'flannel.1',
          'nud',
          'permanent',
        ]);
        nsRun(H1, 'ip', [
          'neigh',
          'add',
          '10.244.251.0',
          'lladdr',
          '0e:00:00:00:00:98',
          'dev',
          'flannel.1',
          'nud',
          'permanent',
        ]);
        const d = quietDoctor(H1);
        // Findings follow the leases' order in etcd (random subnets): look them up by id.
        assert.deepEqual([...d.ids].sort(), ['peer-mac-mismatch', 'peer-stale', 'peer-unprogrammed'], d.stdout);
        assert.equal(d.status, 1);
        const by = (id: string) => d.findings.find((f) => f.id === id)!;
        assert.ok(
          by('peer-unprogrammed').evidence.includes(`missing: fdb ${h2Mac} dev flannel.1 dst ${underlay[H2]}`),
          d.stdout,
        );
        assert.match(by('peer-mac-mismatch').summary, /has MAC 0e:00:00:00:00:99, its lease says/);
        const fix = `ip neigh replace ${h3Net} lladdr ${vtepMac('flab-h3')} dev flannel.1 nud permanent`;
        assert.ok(by('peer-mac-mismatch').fix.endsWith(fix), by('peer-mac-mismatch').fix);
        assert.deepEqual(by('peer-stale').evidence, ['neighbour 10.244.251.0 lladdr 0e:00:00:00:00:98 dev flannel.1']);
        assert.equal(by('peer-stale').severity, 'warning');
      });
    } finally {
      nsRun(H1, 'ip', ['neigh', 'del', '10.244.251.0', 'dev', 'flannel.1']);
    }
    // flanneld repairs its own entries within 10 s of resuming.
    await healthyAgain(H1);
  });

  it("forward-blocked and masquerade-missing: FORWARD policy DROP (Docker) with flannel's rules wiped (firewalld reload)", async () => {
    nsRun(H2, 'iptables', ['-w', '-P', 'FORWARD', 'DROP']);
    try {
      assert.deepEqual(labDoctor(H2).ids, [], "policy DROP alone is fine: flannel's FLANNEL-FWD accepts pod traffic");
      withFlanneldPaused(H2, () => {
        nsRun(H2, 'iptables', ['-w', '-F', 'FLANNEL-FWD']);
        nsRun(H2, 'iptables', ['-w', '-t', 'nat', '-F', 'FLANNEL-POSTRTG']);
        const d = quietDoctor(H2);
        assert.deepEqual(d.ids, ['forward-blocked', 'masquerade-missing'], d.stdout);
        assert.ok(d.findings[0]!.evidence.includes('iptables -t filter FORWARD: policy DROP'), d.stdout);
        assert.match(d.findings[0]!.fix, /iptables -t filter -P FORWARD ACCEPT/);
        assert.equal(d.findings[1]!.evidence.length, 6, 'the six FLANNEL-POSTRTG rules are missing');
      });
      // flanneld restores its rules within 5 s of resuming.
      await healthyAgain(H2);
      nsRun(H2, 'iptables', ['-w', '-I', 'FORWARD', '1', '-j', 'DROP']);
      const d = labDoctor(H2);
      assert.deepEqual(d.ids, ['forward-blocked'], d.stdout);
      assert.ok(d.findings[0]!.evidence.includes('iptables -t filter FORWARD rule 1: -A FORWARD -j DROP'), d.stdout);
      assert.match(d.findings[0]!.fix, /^iptables -t filter -D FORWARD 1/);
      nsRun(H2, 'iptables', ['-w', '-D', 'FORWARD', '1']);
    } finally {
      nsRun(H2, 'iptables', ['-w', '-P', 'FORWARD', 'ACCEPT']);
    }
    assert.equal(labDoctor(H2).status, 0);
  });

  it('overlay-port-blocked on the receiver and overlay-unreachable (--probe) on the sender: vxlan\'s UDP rejected "admin prohibited"', () => {
    const rule = ['INPUT', ...FIREWALLD_REJECT_VXLAN];
    nsRun(H2, 'iptables', ['-w', '-I', ...rule]);
    try {
      const d2 = labDoctor(H2);
      assert.deepEqual(d2.ids, ['overlay-port-blocked'], d2.stdout);
      assert.ok(
        d2.findings[0]!.evidence.includes(
          'iptables -t filter INPUT rule 1: -A INPUT -p udp -m udp --dport 8472 -j REJECT --reject-with icmp-host-prohibited',
        ),
        d2.stdout,
      );
      assert.match(d2.findings[0]!.fix, /iptables -t filter -D INPUT 1/);
      const d1 = labDoctor(H1, ['--probe']);
      assert.deepEqual(d1.ids, ['overlay-unreachable'], d1.stdout);
      assert.match(
        d1.findings[0]!.summary,
        new RegExp(
          `answers on the underlay \\(${underlay[H2]!.replace(/\./g, '\\.')}\\) but not through the overlay \\(${peerNet(H2).replace(/\./g, '\\.')}\\)`,
        ),
      );
      assert.equal(labDoctor(H1).status, 0, 'without --probe h1 sees nothing wrong with itself');
    } finally {
      nsRun(H2, 'iptables', ['-w', '-D', ...rule]);
    }
    assert.equal(labDoctor(H1, ['--probe']).status, 0);
  });

  it('subnet-env-mismatch: subnet.env gone (the CNI plugin then fails every pod)', () => {
    const file = subnetEnvFile(H2);
    renameSync(file, `${file}.away`);
    try {
      const d = labDoctor(H2);
      assert.deepEqual(d.ids, ['subnet-env-mismatch'], d.stdout);
      assert.match(d.findings[0]!.summary, /subnet\.env cannot be read/);
    } finally {
      renameSync(`${file}.away`, file);
    }
  });

  it('cluster-unreachable: etcd does not answer (exit 1); bad usage and not root exit 2', () => {
    const d = doctorIn(H2, ['--etcd-endpoints=http://192.168.100.2:1', `--subnet-file=${subnetEnvFile(H2)}`]);
    assert.deepEqual(d.ids, ['cluster-unreachable'], d.stdout);
    assert.equal(d.status, 1);
    const bad = doctorIn(H2, ['--no-such-flag']);
    assert.equal(bad.status, 2, bad.stdout + bad.stderr);
    const nobody = spawnSync(process.execPath, [CTL, 'doctor'], {
      encoding: 'utf8',
      uid: 65534,
      gid: 65534,
      timeout: 30_000,
    });
    assert.equal(nobody.status, 2, nobody.stdout + nobody.stderr);
    assert.match(nobody.stderr, /run it as root/);
  });

  it('leaves the lab as it found it', () => {
    assertDoctorHealthy([H1, H2, 'flab-h3']);
    assert.ok(!ipJson(H1, ['link', 'show']).some((l: { ifname: string }) => l.ifname === 'doc0'));
  });
});
