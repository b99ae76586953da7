// doctor's underlay, host-gw, netfilter and vxlan IPv6 checks on snapshot fixtures: a healthy node (its rules as
// flanneld writes them, its `ip route get` answers) reports nothing; each fault reports its id, and only what follows.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';
import { diagnose } from '../../src/inspect/checks.ts';
import type { Finding } from '../../src/inspect/findings.ts';
import type { NodeSnapshot, Probe } from '../../src/inspect/snapshot.ts';
import type { RouteLookup } from '../../src/netlink/index.ts';
import type { Lease } from '../../src/subnet/lease.ts';
import { forwardRuleSet, masqRuleSet, ruleText } from '../../src/traffic/iptables/rules.ts';
import {
  addr,
  DOCKER_FILTER,
  directLookup,
  FLANNEL_IP6TABLES_SAVE,
  FLANNEL_IPTABLES_SAVE,
  hostgwNode,
  insertBefore,
  KUBE_PROXY_FILTER,
  lease,
  NFT_FLANNEL,
  NFT_OF_IPTABLES,
  NODE_A,
  NODE_B,
  nftablesNode,
  route,
  subnetOf,
  udpNode,
  vxlanNode,
  withFilter,
  withoutLines,
  withoutNftChain,
} from '../helpers/inspect-fixtures.ts';

const MAC_B6 = NODE_B.vtepMac6;

const ids = (s: NodeSnapshot) => diagnose(s).findings.map((f) => f.id);
/** The only finding of the snapshot, after asserting there is just the one with that id and severity. */
function only(s: NodeSnapshot, id: Finding['id'], severity: Finding['severity'] = 'error'): Finding {
  const findings = diagnose(s).findings;
  assert.deepEqual(
    findings.map((f) => [f.id, f.severity]),
    [[id, severity]],
  );
  return findings[0]!;
}

describe('doctor fixtures', () => {
  it("hold flanneld's iptables rules exactly as traffic/iptables/rules.ts prints them", () => {
    const net = IPv4Net.parse('10.244.0.0/16');
    const rules = [...forwardRuleSet(net).rules, ...masqRuleSet(net, IPv4Net.parse('10.244.1.0/24'), false).rules];
    for (const r of rules) assert.ok(FLANNEL_IPTABLES_SAVE.includes(`[0:0] ${ruleText(r)}\n`), ruleText(r));
    const net6 = IPv6Net.parse('fd00:10:244::/56');
    const subnet6 = IPv6Net.parse('fd00:10:244:1::/64');
    const rules6 = [...forwardRuleSet(net6).rules, ...masqRuleSet(net6, subnet6, false).rules];
    for (const r of rules6) assert.ok(FLANNEL_IP6TABLES_SAVE.includes(`[0:0] ${ruleText(r)}\n`), ruleText(r));
  });

  it('find nothing on a healthy vxlan node with its rules, its lookups and the nft view of iptables-nft', () => {
    const d = diagnose(vxlanNode());
    assert.deepEqual(d.findings, []);
    assert.equal(d.ok, true);
    for (const id of ['underlay-route', 'forward-blocked', 'masquerade-missing', 'overlay-port-blocked'] as const) {
      assert.ok(d.checked.includes(id), id);
    }
  });

  it('find nothing on a healthy host-gw, udp or nftables node', () => {
    assert.deepEqual(diagnose(hostgwNode()).findings, []);
    assert.deepEqual(diagnose(udpNode()).findings, []);
    assert.deepEqual(diagnose(nftablesNode()).findings, []);
  });
});

describe('doctor checks: underlay-route', () => {
  it('reports a peer reached through another interface, with the route that mends it', () => {
    const s = vxlanNode();
    s.links.push({ index: 7, name: 'eth1', mtu: 1500, mac: '52:54:00:00:00:02', up: true });
    s.addresses.push(addr(7, '10.0.0.5', 24));
    s.underlay[0]!.lookup = { type: 'unicast', oif: 7, gateway: '10.0.0.1', prefsrc: '10.0.0.5' };
    const f = only(s, 'underlay-route');
    assert.match(f.summary, /leaves through eth1, not flannel's interface eth0 \(192\.168\.1\.11\)/);
    assert.deepEqual(f.evidence, [
      'lease 10.244.2.0/24: public IP 192.168.1.12',
      'ip route get 192.168.1.12: unicast via 10.0.0.1 dev eth1 src 10.0.0.5',
    ]);
    assert.match(f.fix, /ip route replace 192\.168\.1\.12 dev eth0 src 192\.168\.1\.11/);
    assert.match(f.fix, /--iface=/);
  });

  it('reports a peer with no route: an unreachable answer, or an error from ip route get', () => {
    const s = vxlanNode();
    s.underlay[0]!.lookup = { type: 'unreachable' };
    const f = only(s, 'underlay-route');
    assert.match(f.summary, /no route to peer 10\.244\.2\.0\/24's public IP 192\.168\.1\.12/);
    assert.match(f.evidence[1]!, /^ip route get 192\.168\.1\.12: unreachable/);
    assert.match(f.fix, /add a route to 192\.168\.1\.12 \(or a default route\) on eth0/);
    const t = vxlanNode();
    t.underlay[0] = { lease: '10.244.2.0/24', ip: '192.168.1.12', error: 'getRoute 192.168.1.12: ENETUNREACH' };
    const e = only(t, 'underlay-route');
    assert.deepEqual(e.evidence, [
      'lease 10.244.2.0/24: public IP 192.168.1.12',
      'ip route get 192.168.1.12: getRoute 192.168.1.12: ENETUNREACH',
    ]);
  });

  it("leaves a peer that is this host's own address to public-ip-duplicate", () => {
    const s = vxlanNode();
    s.underlay[0]!.lookup = { type: 'local', oif: 1, prefsrc: '192.168.1.12' };
    assert.ok(!ids(s).includes('underlay-route'));
  });

  it('udp: reports traffic leaving with another source address than the public IP', () => {
    const s = udpNode();
    s.addresses.push(addr(2, '192.168.1.50', 24));
    s.underlay[0]!.lookup = directLookup(2, '192.168.1.50');
    const f = only(s, 'underlay-route');
    assert.match(f.summary, /leaves with source 192\.168\.1\.50, not this node's public IP 192\.168\.1\.11/);
    assert.deepEqual(f.evidence, [
      'lease 10.244.2.0/24: public IP 192.168.1.12',
      'ip route get 192.168.1.12: unicast dev eth0 src 192.168.1.50',
    ]);
    assert.match(f.fix, /^ip route replace 192\.168\.1\.12 dev eth0 src 192\.168\.1\.11, or /);
    assert.match(f.fix, /--public-ip=192\.168\.1\.50/);
  });

  it('vxlan: the same source address difference is nothing (the device sends from its local address)', () => {
    const s = vxlanNode();
    s.addresses.push(addr(2, '192.168.1.50', 24));
    s.underlay[0]!.lookup = directLookup(2, '192.168.1.50');
    assert.deepEqual(ids(s), []);
  });
});

describe('doctor checks: host-gw', () => {
  it('hostgw-not-adjacent: a peer behind a gateway, and no peer-unprogrammed for its refused route', () => {
    const s = hostgwNode();
    const far = '192.168.2.12';
    (s.leases as Lease[])[1] = lease({ subnet: subnetOf(NODE_B), ip: far }, { backendType: 'host-gw' });
    s.routes = s.routes.filter((r) => r.dst !== subnetOf(NODE_B));
    const lookup: RouteLookup = { type: 'unicast', oif: 2, gateway: '192.168.1.1', prefsrc: NODE_A.ip };
    s.underlay = [{ lease: subnetOf(NODE_B), ip: far, lookup }];
    const f = only(s, 'hostgw-not-adjacent');
    assert.match(f.summary, /peer 192\.168\.2\.12 is reached through gateway 192\.168\.1\.1, not directly on eth0/);
    assert.deepEqual(f.evidence, [
      'lease 10.244.2.0/24: public IP 192.168.2.12',
      'ip route get 192.168.2.12: unicast via 192.168.1.1 dev eth0 src 192.168.1.11',
    ]);
    assert.match(f.fix, /vxlan backend/);
  });

  it('hostgw-not-adjacent: a peer on another interface, and no peer-unprogrammed for its refused route', () => {
    // Another interface is as non-adjacent as a gateway: the route the kernel refuses is not reported again.
    const s = hostgwNode();
    s.links.push({ index: 7, name: 'eth1', mtu: 1500, mac: '52:54:00:00:00:02', up: true });
    s.addresses.push(addr(7, '10.0.0.5', 24));
    (s.leases as Lease[])[1] = lease({ subnet: subnetOf(NODE_B), ip: '10.0.0.12' }, { backendType: 'host-gw' });
    s.routes = s.routes.filter((r) => r.dst !== subnetOf(NODE_B));
    s.underlay = [{ lease: subnetOf(NODE_B), ip: '10.0.0.12', lookup: directLookup(7, '10.0.0.5') }];
    const f = only(s, 'hostgw-not-adjacent');
    assert.match(f.summary, /peer 10\.0\.0\.12 is reached through another interface \(eth1\), not eth0/);
  });

  it('peer-unprogrammed: the route to an adjacent peer is missing', () => {
    const s = hostgwNode();
    s.routes = s.routes.filter((r) => r.dst !== subnetOf(NODE_B));
    const f = only(s, 'peer-unprogrammed');
    assert.deepEqual(f.evidence, [
      'lease 10.244.2.0/24: public IP 192.168.1.12',
      'missing: route 10.244.2.0/24 via 192.168.1.12 dev eth0',
    ]);
    assert.match(f.fix, /ip route replace 10\.244\.2\.0\/24 via 192\.168\.1\.12 dev eth0/);
  });

  it('peer-stale: a gateway route on eth0 into Network that no lease asks for is a warning', () => {
    const s = hostgwNode();
    s.routes.push(route('10.244.3.0/24', 2, { gateway: '192.168.1.13' }));
    const d = diagnose(s);
    assert.deepEqual(
      d.findings.map((f) => [f.id, f.severity]),
      [['peer-stale', 'warning']],
    );
    assert.equal(d.ok, true);
    assert.deepEqual(d.findings[0]!.evidence, ['route 10.244.3.0/24 via 192.168.1.13 dev eth0']);
    assert.match(d.findings[0]!.fix, /ip route del/);
  });
});

describe('doctor checks: overlay-unreachable (--probe)', () => {
  const probes = (underlay: number, overlay: number): Probe[] => [
    { lease: '10.244.2.0/24', kind: 'underlay', target: '192.168.1.12', sent: 3, received: underlay },
    { lease: '10.244.2.0/24', kind: 'overlay', target: '10.244.2.0', sent: 3, received: overlay },
  ];

  it('reports a peer that answers on the underlay and not through the overlay', () => {
    const s = vxlanNode();
    s.probes = probes(3, 0);
    const f = only(s, 'overlay-unreachable');
    assert.deepEqual(f.evidence, ['ping 192.168.1.12: 3/3 answered', 'ping 10.244.2.0: 0/3 answered']);
    assert.match(f.summary, /UDP 8472 between the hosts is dropped/);
    assert.match(f.fix, /^allow UDP 8472 between the nodes/);
  });

  it('reports nothing when the underlay fails too, or both answer', () => {
    const s = vxlanNode();
    s.probes = probes(0, 0);
    assert.deepEqual(ids(s), []);
    s.probes = probes(3, 3);
    assert.deepEqual(ids(s), []);
  });

  it('lists overlay-unreachable under checked only when there were probes', () => {
    const s = vxlanNode();
    assert.ok(!diagnose(s).checked.includes('overlay-unreachable'));
    s.probes = probes(3, 3);
    assert.ok(diagnose(s).checked.includes('overlay-unreachable'));
  });

  it('udp: names the configured Port in the fix', () => {
    // The port is the configured one, not udp's default 8285.
    const s = udpNode(8000);
    s.probes = probes(3, 0);
    const f = only(s, 'overlay-unreachable');
    assert.match(f.fix, /^allow UDP 8000 between the nodes/);
  });
});

describe('doctor checks: forward-blocked', () => {
  it("reports a DROP inserted before flannel's accepts, naming the rule and how to delete it", () => {
    const s = vxlanNode();
    s.netfilter.iptables = insertBefore(FLANNEL_IPTABLES_SAVE, '-A FORWARD ', '[0:0] -A FORWARD -j DROP');
    const f = only(s, 'forward-blocked');
    assert.match(f.summary, /^pod traffic 10\.244\.2\.2 → 10\.244\.1\.2 \(in on flannel\.1, out on cni0\) is dropped/);
    assert.deepEqual(f.evidence, ['iptables -t filter FORWARD rule 1: -A FORWARD -j DROP']);
    assert.match(f.fix, /^iptables -t filter -D FORWARD 1; flanneld's own accepts \(FLANNEL-FWD\) must come first/);
  });

  it("finds nothing under Docker's policy DROP while flannel's accepts are there", () => {
    const s = vxlanNode();
    s.netfilter.iptables = withFilter(DOCKER_FILTER);
    assert.deepEqual(diagnose(s).findings, []);
  });

  it("finds nothing with kube-proxy's FORWARD and INPUT rules ahead of flannel's", () => {
    const s = vxlanNode();
    s.netfilter.iptables = withFilter(KUBE_PROXY_FILTER);
    assert.deepEqual(diagnose(s).findings, []);
  });

  it("reports Docker's policy DROP as an error when FLANNEL-FWD is gone", () => {
    const s = vxlanNode();
    s.netfilter.iptables = withFilter(withoutLines(DOCKER_FILTER, 'FLANNEL-FWD'));
    const f = only(s, 'forward-blocked');
    assert.deepEqual(f.evidence, ['iptables -t filter FORWARD: policy DROP']);
    assert.match(f.fix, /^iptables -t filter -P FORWARD ACCEPT, or accept 10\.244\.0\.0\/16 there before the policy/);
  });

  it('warns when FLANNEL-FWD is gone while the policy accepts', () => {
    const s = vxlanNode();
    s.netfilter.iptables = withoutLines(FLANNEL_IPTABLES_SAVE, 'FLANNEL-FWD');
    const f = only(s, 'forward-blocked', 'warning');
    const want = forwardRuleSet(IPv4Net.parse('10.244.0.0/16')).rules;
    assert.deepEqual(
      f.evidence,
      want.map((r) => `missing: ${ruleText(r)}`),
    );
    assert.equal(diagnose(s).ok, true);
  });

  it('claims no rule missing when iptables-save failed (it could not read them)', () => {
    const s = vxlanNode();
    const error =
      'iptables-save -c: iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: ' +
      'Permission denied (you must be root)';
    s.netfilter = { ip6tables: '', nft: NFT_OF_IPTABLES, errors: [error] };
    const rules = diagnose(s).findings.filter((f) => f.id === 'forward-blocked' || f.id === 'masquerade-missing');
    assert.deepEqual(rules, []);
  });

  it('nftables: warns when the flannel-ipv4 forward chain is missing', () => {
    const s = nftablesNode();
    s.netfilter.nft = withoutNftChain(NFT_FLANNEL, 'forward');
    const f = only(s, 'forward-blocked', 'warning');
    assert.deepEqual(f.evidence, ['chain forward is missing']);
  });
});

describe('doctor checks: masquerade-missing', () => {
  it('reports every FLANNEL-POSTRTG rule missing when the chain is empty', () => {
    const s = vxlanNode();
    s.netfilter.iptables = withoutLines(FLANNEL_IPTABLES_SAVE, '-A FLANNEL-POSTRTG');
    const f = only(s, 'masquerade-missing');
    const want = masqRuleSet(IPv4Net.parse('10.244.0.0/16'), IPv4Net.parse('10.244.1.0/24'), false).rules.slice(1);
    assert.deepEqual(
      f.evidence,
      want.map((r) => `missing: ${ruleText(r)}`),
    );
    assert.match(f.summary, /FLANNEL_IPMASQ is true but the masquerade rules for 10\.244\.1\.0\/24 are incomplete/);
  });

  it('reports nothing when FLANNEL_IPMASQ is false, and takes --random-fully as the same rule', () => {
    const s = vxlanNode();
    s.subnetEnv.env!.ipMasq = false;
    s.netfilter.iptables = withoutLines(FLANNEL_IPTABLES_SAVE, '-A FLANNEL-POSTRTG');
    assert.deepEqual(ids(s), []);
    const t = vxlanNode();
    t.netfilter.iptables = FLANNEL_IPTABLES_SAVE.replaceAll('-j MASQUERADE\n', '-j MASQUERADE --random-fully\n');
    assert.deepEqual(ids(t), []);
  });

  it("nftables: reports a postrtg chain that differs from flanneld's, not a fully-random masquerade", () => {
    const s = nftablesNode();
    const doc = JSON.parse(NFT_FLANNEL) as { nftables: unknown[] };
    s.netfilter.nft = JSON.stringify({ nftables: doc.nftables.slice(0, -1) });
    const f = only(s, 'masquerade-missing');
    assert.deepEqual(f.evidence, [
      'rule 6 of postrtg is missing, want "ip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade"',
    ]);
    assert.match(f.summary, /not as flanneld writes them in flannel-ipv4/);
    const t = nftablesNode();
    t.netfilter.nft = NFT_FLANNEL.replaceAll('{"masquerade":null}', '{"masquerade":{"flags":"fully-random"}}');
    assert.deepEqual(ids(t), []);
  });
});

describe('doctor checks: overlay-port-blocked', () => {
  const REJECT_8472 = '[0:0] -A INPUT -p udp -m udp --dport 8472 -j REJECT --reject-with icmp-host-prohibited';

  it("reports firewalld's reject of the vxlan port, with the rule and the commands that open it", () => {
    const s = vxlanNode();
    s.netfilter.iptables = insertBefore(FLANNEL_IPTABLES_SAVE, '-A FORWARD ', REJECT_8472);
    const f = only(s, 'overlay-port-blocked');
    assert.match(f.summary, /vxlan packets from peers \(UDP 8472 to 192\.168\.1\.11\) are rejected in INPUT/);
    assert.deepEqual(f.evidence, [`iptables -t filter INPUT rule 1: ${REJECT_8472.slice('[0:0] '.length)}`]);
    assert.match(f.fix, /^iptables -t filter -D INPUT 1, or allow it first: iptables -I INPUT -p udp --dport 8472 /);
    assert.match(f.fix, /firewall-cmd --permanent --add-port=8472\/udp/);
  });

  it('dual stack: reports the reject in ip6tables with ip6tables commands', () => {
    const s = vxlanNode({ v4: true, v6: true });
    const reject6 = '[0:0] -A INPUT -p udp -m udp --dport 8472 -j REJECT --reject-with icmp6-adm-prohibited';
    s.netfilter.ip6tables = insertBefore(FLANNEL_IP6TABLES_SAVE, '-A FORWARD ', reject6);
    const f = only(s, 'overlay-port-blocked');
    assert.match(f.summary, /\(UDP 8472 to fd00:1::11\) are rejected in INPUT/);
    assert.deepEqual(f.evidence, [`ip6tables -t filter INPUT rule 1: ${reject6.slice('[0:0] '.length)}`]);
    assert.match(f.fix, /^ip6tables -t filter -D INPUT 1, or allow it first: ip6tables -I INPUT -p udp --dport 8472 /);
  });

  it('reports nothing for a reject of another port (4789)', () => {
    const s = vxlanNode();
    s.netfilter.iptables = insertBefore(FLANNEL_IPTABLES_SAVE, '-A FORWARD ', REJECT_8472.replace('8472', '4789'));
    assert.deepEqual(ids(s), []);
  });
});

describe('doctor checks: vxlan over IPv6 and dual stack', () => {
  it('find nothing on a healthy IPv6-only node (flannel-v6.1, its v6 neighbour, fdb and route)', () => {
    const s = vxlanNode({ v4: false, v6: true });
    assert.deepEqual(diagnose(s).findings, []);
  });

  it('peer-unprogrammed: the v6 fdb entry of the peer is missing', () => {
    const s = vxlanNode({ v4: false, v6: true });
    s.fdb = [];
    const f = only(s, 'peer-unprogrammed');
    assert.match(f.summary, /^peer fd00:10:244:2::\/64 \(fd00:1::12\) has a lease but not all of its kernel entries/);
    assert.deepEqual(f.evidence, [
      `lease fd00:10:244:2::/64: public IP fd00:1::12, VtepMAC ${MAC_B6}`,
      `missing: fdb ${MAC_B6} dev flannel-v6.1 dst fd00:1::12`,
    ]);
  });

  it("dual stack: cni0 at flannel.1's MTU 1450 above flannel-v6.1's 1430 is nothing", () => {
    const s = vxlanNode({ v4: true, v6: true });
    assert.deepEqual(
      s.links.filter((l) => l.name !== 'lo' && l.name !== 'eth0').map((l) => `${l.name} ${l.mtu}`),
      ['flannel.1 1450', 'cni0 1450', 'veth1 1450', 'flannel-v6.1 1430'],
    );
    assert.deepEqual(diagnose(s).findings, []);
  });

  it('dual stack: a missing v6 entry is reported on flannel-v6.1 alone', () => {
    const s = vxlanNode({ v4: true, v6: true });
    s.neighbours = s.neighbours.filter((n) => n.index !== 6);
    const f = only(s, 'peer-unprogrammed');
    assert.deepEqual(f.evidence.slice(1), [`missing: neighbour fd00:10:244:2:: lladdr ${MAC_B6} dev flannel-v6.1`]);
  });
});
