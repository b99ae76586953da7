// doctor's checks on snapshot fixtures: a healthy vxlan node reports nothing; each fault reports its id, and only it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { diagnose } from '../../src/inspect/checks.ts';
import { diagnosisJson, formatDiagnosis } from '../../src/inspect/report.ts';
import type { NodeSnapshot } from '../../src/inspect/snapshot.ts';
import type { Lease } from '../../src/subnet/lease.ts';
import { addr, lease, NODE_A, NODE_B, neighbour, vxlanNode } from '../helpers/inspect-fixtures.ts';

const MAC_A = NODE_A.vtepMac;
const MAC_B = NODE_B.vtepMac;

/** Node A with one peer B, all as flanneld leaves it; its netfilter rules not read (inspect-checks-more reads them). */
const healthy = () => vxlanNode({ rules: false });

const ids = (s: NodeSnapshot) => diagnose(s).findings.map((f) => f.id);

describe('doctor checks', () => {
  it('find nothing on a healthy vxlan node, and list what they checked', () => {
    const d = diagnose(healthy());
    assert.deepEqual(d.findings, []);
    assert.equal(d.ok, true);
    assert.ok(d.checked.includes('peer-unprogrammed') && d.checked.includes('public-ip-duplicate'));
  });

  it('ip-forward-disabled and bridge-nf-call', () => {
    const s = healthy();
    s.sysctls = { 'net.ipv4.ip_forward': '0' };
    const d = diagnose(s);
    assert.deepEqual(
      d.findings.map((f) => [f.id, f.severity]),
      [
        ['ip-forward-disabled', 'error'],
        ['bridge-nf-call', 'warning'],
      ],
    );
    assert.match(d.findings[0]!.fix, /sysctl -w net\.ipv4\.ip_forward=1/);
    s.nftables = true;
    assert.deepEqual(ids(s), ['ip-forward-disabled'], 'br_netfilter does not matter for nftables rules');
  });

  it('cni-bridge-mismatch: cni0 still holds an old subnet', () => {
    const s = healthy();
    s.addresses[2] = { ...s.addresses[2]!, address: '10.244.9.1' };
    const d = diagnose(s);
    assert.deepEqual(
      d.findings.map((f) => f.id),
      ['cni-bridge-mismatch'],
    );
    assert.deepEqual(d.findings[0]!.evidence, ['cni0: 10.244.9.1/24', 'FLANNEL_SUBNET=10.244.1.1/24']);
    assert.match(d.findings[0]!.fix, /ip link delete cni0/);
  });

  it('subnet-env-mismatch: subnet.env missing, or naming a subnet no lease holds', () => {
    const s = healthy();
    s.subnetEnv = { path: '/run/flannel/subnet.env', error: 'open /run/flannel/subnet.env: no such file or directory' };
    assert.deepEqual(ids(s), ['subnet-env-mismatch']);
    const t = healthy();
    t.leases = (t.leases as Lease[]).slice(1);
    assert.deepEqual(ids(t), ['subnet-env-mismatch']);
  });

  it('vtep-mismatch: a public IP the device never took, another port, a missing device', () => {
    const s = healthy();
    s.addresses.push(addr(2, '192.168.1.99', 24));
    (s.leases as Lease[])[0] = lease({ subnet: '10.244.1.0/24', ip: '192.168.1.99', mac: MAC_A });
    const d = diagnose(s);
    assert.deepEqual(
      d.findings.map((f) => f.id),
      ['vtep-mismatch'],
    );
    assert.match(
      d.findings[0]!.summary,
      /flannel\.1 sends from 192\.168\.1\.11, but this node's lease says its public IP is 192\.168\.1\.99/,
    );
    const t = healthy();
    t.links[2]!.vxlan!.port = 4789;
    assert.deepEqual(ids(t), ['vtep-mismatch']);
    const u = healthy();
    u.links.splice(2, 1);
    assert.deepEqual(ids(u), ['vtep-mismatch']);
  });

  it('mtu-mismatch: the device too large for its parent, pods larger than the device', () => {
    const s = healthy();
    s.links[2]!.mtu = 1500;
    assert.deepEqual(ids(s), ['mtu-mismatch']);
    const t = healthy();
    t.links[4]!.mtu = 1500;
    const d = diagnose(t);
    assert.deepEqual(
      d.findings.map((f) => f.id),
      ['mtu-mismatch'],
    );
    assert.deepEqual(d.findings[0]!.evidence, ['veth1 mtu 1500']);
  });

  it('peer-unprogrammed, peer-mac-mismatch and peer-stale', () => {
    const s = healthy();
    s.fdb = [];
    const d = diagnose(s);
    assert.deepEqual(
      d.findings.map((f) => f.id),
      ['peer-unprogrammed'],
    );
    assert.ok(d.findings[0]!.evidence.includes(`missing: fdb ${MAC_B} dev flannel.1 dst 192.168.1.12`));
    const t = healthy();
    t.neighbours = [neighbour(3, '10.244.2.0', '0e:00:00:00:00:ff')];
    assert.deepEqual(
      ids(t),
      ['peer-mac-mismatch'],
      "the wrong-MAC neighbour is the peer's, not counted again as left over",
    );
    const u = healthy();
    u.leases = (u.leases as Lease[]).slice(0, 1);
    const e = diagnose(u);
    assert.deepEqual(
      e.findings.map((f) => [f.id, f.severity]),
      [['peer-stale', 'warning']],
    );
    assert.equal(e.ok, true, 'a warning alone is no error');
    assert.deepEqual(e.findings[0]!.evidence, [
      'route 10.244.2.0/24 via 10.244.2.0 dev flannel.1',
      `neighbour 10.244.2.0 lladdr ${MAC_B} dev flannel.1`,
      `fdb ${MAC_B} dev flannel.1 dst 192.168.1.12`,
    ]);
  });

  it('public-ip-duplicate names both leases; cluster-unreachable replaces the cluster checks', () => {
    const s = healthy();
    (s.leases as Lease[]).push(lease({ subnet: '10.244.3.0/24', ip: '192.168.1.12', mac: '0e:00:00:00:00:0c' }));
    const d = diagnose(s);
    const dup = d.findings.filter((f) => f.id === 'public-ip-duplicate');
    assert.equal(dup.length, 1);
    assert.deepEqual(dup[0]!.evidence, [
      'lease 10.244.2.0/24: PublicIP 192.168.1.12, VtepMAC 0e:00:00:00:00:0b',
      'lease 10.244.3.0/24: PublicIP 192.168.1.12, VtepMAC 0e:00:00:00:00:0c',
    ]);
    assert.match(dup[0]!.fix, /--iface/);
    const t = healthy();
    t.leases = { error: 'etcd at http://127.0.0.1:2379 is unreachable: connect ECONNREFUSED' };
    assert.deepEqual(ids(t), ['cluster-unreachable']);
  });
});

describe('doctor checks: flanneld', () => {
  it('flanneld-not-running: no answer, or alive but not ready; nothing when both answer 200 or no URL was given', () => {
    const s = healthy();
    assert.deepEqual(ids(s), [], 'without --health-url flanneld is not checked');
    s.flanneld = { url: 'http://127.0.0.1:8081', healthz: '200 flanneld is running', readyz: '200 flanneld is ready' };
    assert.deepEqual(ids(s), []);
    s.flanneld = {
      url: 'http://127.0.0.1:8081',
      healthz: 'no answer (connect ECONNREFUSED 127.0.0.1:8081)',
      readyz: 'no answer (connect ECONNREFUSED 127.0.0.1:8081)',
    };
    const d = diagnose(s);
    assert.deepEqual(
      d.findings.map((f) => f.id),
      ['flanneld-not-running'],
    );
    assert.match(d.findings[0]!.summary, /does not answer/);
    assert.deepEqual(d.findings[0]!.evidence, [
      'GET http://127.0.0.1:8081/healthz: no answer (connect ECONNREFUSED 127.0.0.1:8081)',
      'GET http://127.0.0.1:8081/readyz: no answer (connect ECONNREFUSED 127.0.0.1:8081)',
    ]);
    s.flanneld = {
      url: 'http://127.0.0.1:8081',
      healthz: '200 flanneld is running',
      readyz: '503 flanneld is not ready yet',
    };
    assert.match(diagnose(s).findings[0]!.summary, /runs but is not ready/);
  });
});

describe('doctor report', () => {
  it('groups findings by layer with evidence and fix, and prints the JSON contract', () => {
    const s = healthy();
    s.sysctls = { 'net.ipv4.ip_forward': '0', 'net.bridge.bridge-nf-call-iptables': '1' };
    s.fdb = [];
    const d = diagnose(s);
    const text = formatDiagnosis(d);
    assert.match(
      text,
      /^host and underlay:\n {2}ERROR \[ip-forward-disabled\] .*\n {6}net\.ipv4\.ip_forward = 0\n {4}fix: sysctl -w net\.ipv4\.ip_forward=1/,
    );
    assert.ok(text.indexOf('host and underlay:') < text.indexOf('peers:'));
    assert.match(text, /2 error\(s\), 0 warning\(s\)\.\n$/);
    const json = JSON.parse(diagnosisJson(d));
    assert.deepEqual(Object.keys(json), ['ok', 'findings', 'checked']);
    assert.deepEqual(Object.keys(json.findings[0]), ['id', 'severity', 'summary', 'evidence', 'fix']);
    assert.equal(
      formatDiagnosis(diagnose(healthy())),
      `All is well: ${d.checked.length} checks found nothing wrong.\n`,
    );
  });
});
