// flannelctl trace on two-node snapshot fixtures: node A (10.244.1.0/24 on 192.168.1.11) holds src, node B
// (10.244.2.0/24 on 192.168.1.12) holds dst, each with its own devices, addresses, routes, neighbours and rules, and
// the kernel's `ip route get` answers for the traced packet; and --probe's counting table and its readers.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  TraceError,
  formatTrace,
  traceJson,
  tracePath,
  type Trace,
  type TraceInput,
  type TraceNode,
} from '../../src/inspect/trace.ts';
import {
  probeCounts,
  probePoints,
  probeScript,
  traceDrops,
  withCounts,
  type ProbeResult,
} from '../../src/inspect/trace-probe.ts';
import {
  addr,
  CNI0,
  ETH0,
  insertBefore,
  NFT_INET_FILTER_DROP,
  NFT_OF_IPTABLES,
  NODE_B,
  nftEntries,
  nftListing,
  OVERLAY,
  pair,
} from '../helpers/inspect-fixtures.ts';

const SRC = '10.244.1.2';
const DST = '10.244.2.2';
const SRC6 = 'fd00:10:244:1::2';
const DST6 = 'fd00:10:244:2::2';

function input(p: { local: TraceNode; remote?: TraceNode }, src = SRC, dst = DST): TraceInput {
  return { src, dst, local: p.local, ...(p.remote ? { remote: p.remote } : {}) };
}

const steps = (t: Trace) => t.hops.map((h) => `${h.ok ? 'ok' : 'STOP'} ${h.where}: ${h.what}`);
const hop = (t: Trace, what: string) => {
  const h = t.hops.find((x) => x.what.startsWith(what));
  assert.ok(h, `no hop "${what}" in ${JSON.stringify(steps(t))}`);
  return h;
};

/** The hops a healthy vxlan trace A → B walks, in order. */
const VXLAN_HOPS = [
  'ok node-a: source pod 10.244.1.2 → cni0',
  'ok node-a: route lookup',
  'ok node-a: netfilter FORWARD (in cni0, out flannel.1)',
  'ok node-a flannel.1: vxlan encapsulation',
  'ok node-a flannel.1: neighbour for the next hop 10.244.2.0',
  'ok node-a flannel.1: FDB entry for 0e:00:00:00:00:0b',
  'ok node-a: underlay route to 192.168.1.12',
  'ok node-b: node of lease 10.244.2.0/24',
  'ok node-b: netfilter INPUT for UDP 8472 (the overlay)',
  'ok node-b flannel.1: decapsulation',
  'ok node-b: netfilter FORWARD (in flannel.1, out cni0)',
  'ok node-b: route to cni0',
  'ok node-b cni0: bridge port of 10.244.2.2',
];
const FLANNEL_FWD_ACCEPT =
  'accept (iptables -t filter FLANNEL-FWD rule 1: -A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT)';

describe('trace: a healthy vxlan path', () => {
  it('walks A → B hop by hop, every hop in place, with the entry that decides each', () => {
    const t = tracePath(input(pair()));
    assert.deepEqual(steps(t), VXLAN_HOPS);
    assert.deepEqual(
      t.hops.map((h) => h.entry),
      [
        'neighbour 10.244.1.2 lladdr 0a:58:0a:f4:01:02 dev cni0; fdb 0a:58:0a:f4:01:02 dev veth8c3e1f0a master cni0; cni0 up 10.244.1.1/24',
        'ip route get 10.244.2.2 from 10.244.1.2 iif cni0: unicast via 10.244.2.0 dev flannel.1',
        FLANNEL_FWD_ACCEPT,
        'flannel.1: vxlan id 1 local 192.168.1.11 dstport 8472 up',
        'neighbour 10.244.2.0 lladdr 0e:00:00:00:00:0b dev flannel.1 PERMANENT',
        'fdb 0e:00:00:00:00:0b dev flannel.1 dst 192.168.1.12 permanent',
        'ip route get 192.168.1.12: unicast dev eth0 src 192.168.1.11',
        'lease 10.244.2.0/24: public IP 192.168.1.12',
        'accept (iptables -t filter INPUT: policy ACCEPT)',
        'flannel.1: vxlan id 1 local 192.168.1.12 dstport 8472 up',
        FLANNEL_FWD_ACCEPT,
        'ip route get 10.244.2.2 from 10.244.1.2 iif flannel.1: unicast dev cni0',
        'neighbour 10.244.2.2 lladdr 0a:58:0a:f4:02:02 dev cni0; fdb 0a:58:0a:f4:02:02 dev veth51a0e6d3 master cni0',
      ],
    );
    assert.equal(t.src, SRC);
    assert.equal(t.dst, DST);
    for (const k of ['stoppedAt', 'reason', 'id', 'fix'] as const) assert.equal(t[k], undefined, k);
  });

  it('ends at the node of the lease when that node cannot be read, without a stop', () => {
    const t = tracePath(input({ local: pair().local }));
    assert.deepEqual(steps(t), [...VXLAN_HOPS.slice(0, 7), 'ok 192.168.1.12: node of lease 10.244.2.0/24']);
    assert.equal(t.hops.at(-1)!.entry, 'not inspected: run trace on node 192.168.1.12');
    assert.equal(t.stoppedAt, undefined);
  });

  it('stays on cni0 for a pod of the same node: source pod, route lookup, FORWARD, bridge port', () => {
    const p = pair();
    p.local.forward = { type: 'unicast', oif: CNI0 };
    const t = tracePath(input({ local: p.local }, SRC, '10.244.1.3'));
    assert.deepEqual(steps(t), [
      'ok node-a: source pod 10.244.1.2 → cni0',
      'ok node-a: route lookup',
      'ok node-a: netfilter FORWARD (in cni0, out cni0)',
      'ok node-a cni0: bridge port of 10.244.1.3',
    ]);
    assert.equal(t.hops[1]!.entry, 'ip route get 10.244.1.3 from 10.244.1.2 iif cni0: unicast dev cni0');
    assert.equal(
      t.hops[3]!.entry,
      'neighbour 10.244.1.3 lladdr 0a:58:0a:f4:01:03 dev cni0; fdb 0a:58:0a:f4:01:03 dev veth2d9b7c41 master cni0',
    );
    assert.equal(t.stoppedAt, undefined);
  });

  it('says when the bridge has not learnt a pod yet, and still walks on', () => {
    const p = pair();
    p.remote.snapshot.neighbours = p.remote.snapshot.neighbours.filter((n) => n.index !== CNI0);
    const t = tracePath(input(p));
    assert.deepEqual(steps(t), VXLAN_HOPS);
    assert.equal(t.hops.at(-1)!.entry, "10.244.2.2 not in cni0's neighbour table yet (no traffic to it so far)");
  });
});

describe('trace: where a vxlan path stops', () => {
  it("stops at the next hop's neighbour when it is deleted (peer-unprogrammed, ip neigh replace)", () => {
    const p = pair();
    p.local.snapshot.neighbours = p.local.snapshot.neighbours.filter((n) => n.index !== OVERLAY);
    const t = tracePath(input(p));
    assert.deepEqual(steps(t), [
      ...VXLAN_HOPS.slice(0, 4),
      'STOP node-a flannel.1: neighbour for the next hop 10.244.2.0',
    ]);
    assert.equal(t.hops.at(-1)!.entry, 'no neighbour 10.244.2.0 dev flannel.1');
    assert.equal(t.stoppedAt, 'node-a flannel.1: neighbour for the next hop 10.244.2.0');
    assert.equal(t.reason, 'the next hop 10.244.2.0 has no neighbour entry (its VTEP MAC)');
    assert.equal(t.id, 'peer-unprogrammed');
    assert.match(t.fix!, /^ip neigh replace 10\.244\.2\.0 lladdr 0e:00:00:00:00:0b dev flannel\.1 nud permanent/);
  });

  it("stops at a neighbour with another MAC than the lease's VtepMAC (peer-mac-mismatch)", () => {
    // B's flanneld recreated flannel.1 with a new MAC; A still holds the old one.
    const p = pair();
    p.local.snapshot.neighbours.find((n) => n.index === OVERLAY)!.mac = '0e:00:00:00:00:99';
    const t = tracePath(input(p));
    assert.equal(t.hops.length, 5);
    assert.equal(t.hops.at(-1)!.ok, false);
    assert.equal(t.hops.at(-1)!.entry, 'neighbour 10.244.2.0 lladdr 0e:00:00:00:00:99 dev flannel.1 PERMANENT');
    assert.equal(t.stoppedAt, 'node-a flannel.1: neighbour for the next hop 10.244.2.0');
    assert.match(
      t.reason!,
      /MAC 0e:00:00:00:00:99 is not the peer's VtepMAC 0e:00:00:00:00:0b \(lease 10\.244\.2\.0\/24\)/,
    );
    assert.equal(t.id, 'peer-mac-mismatch');
    assert.equal(t.fix, 'ip neigh replace 10.244.2.0 lladdr 0e:00:00:00:00:0b dev flannel.1 nud permanent');
  });

  it('stops at the FDB entry when it is deleted (peer-unprogrammed, bridge fdb append)', () => {
    const p = pair();
    p.local.snapshot.fdb = p.local.snapshot.fdb.filter((f) => f.index !== OVERLAY);
    const t = tracePath(input(p));
    assert.deepEqual(steps(t), [...VXLAN_HOPS.slice(0, 5), 'STOP node-a flannel.1: FDB entry for 0e:00:00:00:00:0b']);
    assert.equal(t.hops.at(-1)!.entry, 'no fdb 0e:00:00:00:00:0b dev flannel.1');
    assert.equal(t.id, 'peer-unprogrammed');
    assert.match(t.fix!, /^bridge fdb append 0e:00:00:00:00:0b dev flannel\.1 dst 192\.168\.1\.12/);
  });

  it('stops at an FDB entry that sends the MAC to another node than the lease names', () => {
    const p = pair();
    p.local.snapshot.fdb.find((f) => f.index === OVERLAY)!.dst = '192.168.1.13';
    const t = tracePath(input(p));
    assert.equal(t.stoppedAt, 'node-a flannel.1: FDB entry for 0e:00:00:00:00:0b');
    assert.match(
      t.reason!,
      /sends 0e:00:00:00:00:0b to 192\.168\.1\.13, but lease 10\.244\.2\.0\/24 says its node is 192\.168\.1\.12/,
    );
    assert.match(t.fix!, /^bridge fdb replace 0e:00:00:00:00:0b dev flannel\.1 dst 192\.168\.1\.12/);
  });

  it("stops at B's FORWARD when a DROP comes before flannel's accepts (forward-blocked)", () => {
    const p = pair();
    const s = p.remote.snapshot;
    s.netfilter.iptables = insertBefore(s.netfilter.iptables!, '-A FORWARD ', '[0:0] -A FORWARD -j DROP');
    const t = tracePath(input(p));
    assert.deepEqual(steps(t), [...VXLAN_HOPS.slice(0, 10), 'STOP node-b: netfilter FORWARD (in flannel.1, out cni0)']);
    assert.equal(t.hops.at(-1)!.entry, 'iptables -t filter FORWARD rule 1: -A FORWARD -j DROP');
    assert.equal(t.stoppedAt, 'node-b: netfilter FORWARD (in flannel.1, out cni0)');
    assert.equal(t.reason, 'FORWARD drops the packet');
    assert.equal(t.id, 'forward-blocked');
    assert.equal(t.fix, 'iptables -t filter -D FORWARD 1');
  });

  it("stops at A's FORWARD under Docker's policy DROP once FLANNEL-FWD is gone", () => {
    const p = pair();
    const s = p.local.snapshot;
    s.netfilter.iptables = s.netfilter
      .iptables!.replace(':FORWARD ACCEPT [0:0]', ':FORWARD DROP [0:0]')
      .split('\n')
      .filter((l) => !l.includes('FLANNEL-FWD'))
      .join('\n');
    const t = tracePath(input(p));
    assert.equal(t.stoppedAt, 'node-a: netfilter FORWARD (in cni0, out flannel.1)');
    assert.equal(t.hops.at(-1)!.entry, 'iptables -t filter FORWARD: policy DROP');
    assert.equal(t.id, 'forward-blocked');
    assert.equal(t.fix, 'iptables -t filter -P FORWARD ACCEPT, or accept 10.244.0.0/16 there before the policy');
  });

  it("stops at B's INPUT when it rejects UDP 8472 (overlay-port-blocked)", () => {
    const p = pair();
    const s = p.remote.snapshot;
    const reject = '[0:0] -A INPUT -p udp -m udp --dport 8472 -j REJECT --reject-with icmp-host-prohibited';
    s.netfilter.iptables = insertBefore(s.netfilter.iptables!, '-A FORWARD ', reject);
    const t = tracePath(input(p));
    assert.deepEqual(steps(t), [...VXLAN_HOPS.slice(0, 8), 'STOP node-b: netfilter INPUT for UDP 8472 (the overlay)']);
    assert.equal(t.hops.at(-1)!.entry, `iptables -t filter INPUT rule 1: ${reject.slice('[0:0] '.length)}`);
    assert.equal(t.reason, 'INPUT rejects the encapsulated packets');
    assert.equal(t.id, 'overlay-port-blocked');
    assert.equal(t.fix, 'iptables -t filter -D INPUT 1');
  });

  it('lets a reject of another UDP port (4789) pass', () => {
    const p = pair();
    const s = p.remote.snapshot;
    s.netfilter.iptables = insertBefore(
      s.netfilter.iptables!,
      '-A FORWARD ',
      '[0:0] -A INPUT -p udp -m udp --dport 4789 -j DROP',
    );
    assert.deepEqual(steps(tracePath(input(p))), VXLAN_HOPS);
  });

  // A hardened host allowing ssh only: the fix lets the overlay's port in, not every packet.
  it("names a usable fix for B's INPUT policy DROP", () => {
    const p = pair();
    const s = p.remote.snapshot;
    s.netfilter.iptables = insertBefore(
      s.netfilter.iptables!.replace(':INPUT ACCEPT [0:0]', ':INPUT DROP [0:0]'),
      '-A FORWARD ',
      '[0:0] -A INPUT -i lo -j ACCEPT\n[0:0] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
    );
    const t = tracePath(input(p));
    assert.equal(t.stoppedAt, 'node-b: netfilter INPUT for UDP 8472 (the overlay)');
    assert.equal(t.hops.at(-1)!.entry, 'iptables -t filter INPUT: policy DROP');
    assert.equal(t.id, 'overlay-port-blocked');
    assert.equal(t.fix, 'iptables -t filter -I INPUT -p udp --dport 8472 -j ACCEPT');
  });

  // The encapsulated packets come from the peer's public IP, not the pod network: the fix accepts the port.
  it("names a fix for B's nftables INPUT policy drop that lets the encapsulated packets in", () => {
    const p = pair();
    const s = p.remote.snapshot;
    s.netfilter.nft = nftListing([...nftEntries(NFT_OF_IPTABLES), ...nftEntries(NFT_INET_FILTER_DROP).slice(1)]);
    const t = tracePath(input(p));
    assert.equal(t.stoppedAt, 'node-b: netfilter INPUT for UDP 8472 (the overlay)');
    assert.equal(t.hops.at(-1)!.entry, 'nft inet filter input: policy DROP');
    assert.equal(t.id, 'overlay-port-blocked');
    assert.doesNotMatch(t.fix!, /10\.244\.0\.0\/16/);
    assert.match(t.fix!, /udp dport 8472 accept/);
  });

  it('host-gw passes that firewall: pod packets are forwarded, never delivered to INPUT', () => {
    const p = pair('host-gw');
    p.remote.snapshot.netfilter.nft = NFT_INET_FILTER_DROP;
    assert.equal(tracePath(input(p)).stoppedAt, undefined);
  });

  it("stops at B's decapsulation when its flannel.1 has another VNI (vtep-mismatch)", () => {
    const p = pair();
    p.remote.snapshot.links.find((l) => l.name === 'flannel.1')!.vxlan!.id = 2;
    const t = tracePath(input(p));
    assert.equal(t.stoppedAt, 'node-b flannel.1: decapsulation');
    assert.equal(t.id, 'vtep-mismatch');
    assert.match(t.reason!, /has VNI 2 port 8472; the sender uses VNI 1 port 8472/);
  });

  it("stops at 'route to cni0' when B routes dst out of eth0 (cni0's address and its route gone)", () => {
    const p = pair();
    p.remote.snapshot.routes = p.remote.snapshot.routes.filter((r) => r.dst !== '10.244.2.0/24');
    p.remote.snapshot.addresses = p.remote.snapshot.addresses.filter((a) => a.index !== CNI0);
    p.remote.forward = { type: 'unicast', oif: ETH0, gateway: '192.168.1.1' };
    const t = tracePath(input(p));
    assert.deepEqual(steps(t), [...VXLAN_HOPS.slice(0, 11), 'STOP node-b: route to cni0']);
    assert.equal(
      t.hops.at(-1)!.entry,
      'ip route get 10.244.2.2 from 10.244.1.2 iif flannel.1: unicast via 192.168.1.1 dev eth0',
    );
    assert.equal(t.stoppedAt, 'node-b: route to cni0');
    assert.equal(t.reason, 'node-b does not route 10.244.2.2 to cni0');
    assert.match(t.fix!, /ip addr replace 10\.244\.2\.1\/24 dev cni0/);
  });

  it("stops at 'route to cni0' when B's lookup fails", () => {
    const p = pair();
    p.remote.snapshot.routes = p.remote.snapshot.routes.filter((r) => r.dst !== '10.244.2.0/24' && r.dst !== null);
    const error = 'netlink getRoute 10.244.2.2 from 10.244.1.2 iif 3: ENETUNREACH';
    p.remote.forward = { error };
    const t = tracePath(input(p));
    assert.equal(t.stoppedAt, 'node-b: route to cni0');
    assert.equal(t.hops.at(-1)!.entry, `ip route get 10.244.2.2 from 10.244.1.2 iif flannel.1: ${error}`);
    assert.match(t.fix!, /ip addr replace 10\.244\.2\.1\/24 dev cni0/);
  });

  it('stops when no lease holds dst, naming it', () => {
    const t = tracePath(input(pair(), SRC, '10.99.0.1'));
    assert.deepEqual(steps(t), ['ok node-a: source pod 10.244.1.2 → cni0', 'STOP node-a: the node holding 10.99.0.1']);
    assert.equal(t.hops[1]!.entry, 'no lease of 2 holds 10.99.0.1');
    assert.equal(t.stoppedAt, 'node-a: the node holding 10.99.0.1');
    assert.match(t.reason!, /no node's lease holds 10\.99\.0\.1/);
    assert.equal(t.id, undefined);
  });

  it("stops at A's route lookup when it fails (peer-unprogrammed)", () => {
    const p = pair();
    const error = 'netlink getRoute 10.244.2.2 from 10.244.1.2 iif 4: ENETUNREACH';
    p.local.forward = { error };
    const t = tracePath(input(p));
    assert.deepEqual(steps(t), ['ok node-a: source pod 10.244.1.2 → cni0', 'STOP node-a: route lookup']);
    assert.equal(t.hops[1]!.entry, `ip route get 10.244.2.2 from 10.244.1.2 iif cni0: ${error}`);
    assert.equal(t.reason, 'the kernel has no route for 10.244.2.2');
    assert.equal(t.id, 'peer-unprogrammed');
    assert.match(t.fix!, /flannelctl doctor on node-a/);
  });

  it("stops at A's route lookup when the peer route is gone and the default route takes dst out of eth0", () => {
    const p = pair();
    p.local.snapshot.routes = p.local.snapshot.routes.filter((r) => r.dst !== '10.244.2.0/24');
    p.local.forward = { type: 'unicast', oif: ETH0, gateway: '192.168.1.1' };
    const t = tracePath(input(p));
    assert.equal(t.stoppedAt, 'node-a: route lookup');
    assert.equal(
      t.hops[1]!.entry,
      'ip route get 10.244.2.2 from 10.244.1.2 iif cni0: unicast via 192.168.1.1 dev eth0',
    );
    assert.equal(t.reason, 'the kernel sends 10.244.2.2 out of eth0, not flannel.1');
    assert.equal(t.id, 'peer-unprogrammed');
  });

  it('stops at the underlay route when it leaves through another interface (underlay-route)', () => {
    const p = pair();
    const s = p.local.snapshot;
    s.links.push({ index: 8, name: 'eth1', mtu: 1500, mac: '52:54:00:00:01:0a', up: true });
    s.addresses.push(addr(8, '10.0.0.5', 24));
    s.underlay[0]!.lookup = { type: 'unicast', oif: 8, gateway: '10.0.0.1', prefsrc: '10.0.0.5' };
    const t = tracePath(input(p));
    assert.deepEqual(steps(t), [...VXLAN_HOPS.slice(0, 6), 'STOP node-a: underlay route to 192.168.1.12']);
    assert.equal(t.hops.at(-1)!.entry, 'ip route get 192.168.1.12: unicast via 10.0.0.1 dev eth1 src 10.0.0.5');
    assert.equal(t.reason, "the underlay route leaves through eth1, not flannel's interface eth0");
    assert.equal(t.id, 'underlay-route');
    assert.equal(t.fix, 'ip route replace 192.168.1.12 dev eth0 src 192.168.1.11, or start flanneld with --iface');
  });

  it('stops at the underlay route when there is none (underlay-route)', () => {
    const p = pair();
    p.local.snapshot.underlay[0] = {
      lease: '10.244.2.0/24',
      ip: NODE_B.ip,
      error: 'netlink getRoute 192.168.1.12: ENETUNREACH',
    };
    const t = tracePath(input(p));
    assert.equal(t.stoppedAt, 'node-a: underlay route to 192.168.1.12');
    assert.equal(t.hops.at(-1)!.entry, 'ip route get 192.168.1.12: netlink getRoute 192.168.1.12: ENETUNREACH');
    assert.equal(t.id, 'underlay-route');
  });
});

describe('trace: bad input', () => {
  it('refuses a src that is a pod of another node, naming that node', () => {
    assert.throws(
      () => tracePath(input(pair(), DST, SRC)),
      (e: unknown) => {
        assert.ok(e instanceof TraceError);
        assert.equal(
          e.message,
          '10.244.2.2 is not a pod address of this node (10.244.1.0/24): it is in 10.244.2.0/24, the subnet of node 192.168.1.12; run trace there',
        );
        return true;
      },
    );
  });

  it('refuses a src no lease holds', () => {
    assert.throws(
      () => tracePath(input(pair(), '10.99.0.5', DST)),
      (e: unknown) =>
        e instanceof TraceError && e.message === '10.99.0.5 is not a pod address of this node (10.244.1.0/24)',
    );
  });

  it('refuses src and dst of different families', () => {
    assert.throws(
      () => tracePath(input(pair(), SRC, DST6)),
      (e: unknown) =>
        e instanceof TraceError && /10\.244\.1\.2 and fd00:10:244:2::2 are of different IP families/.test(e.message),
    );
  });
});

describe('trace: host-gw, udp and IPv6', () => {
  it('host-gw: next hop B, underlay route, arrival on eth0, no INPUT hop', () => {
    const t = tracePath(input(pair('host-gw')));
    assert.deepEqual(steps(t), [
      'ok node-a: source pod 10.244.1.2 → cni0',
      'ok node-a: route lookup',
      'ok node-a: netfilter FORWARD (in cni0, out eth0)',
      'ok node-a eth0: next hop 192.168.1.12',
      'ok node-a: underlay route to 192.168.1.12',
      'ok node-b: node of lease 10.244.2.0/24',
      'ok node-b eth0: arrival',
      'ok node-b: netfilter FORWARD (in eth0, out cni0)',
      'ok node-b: route to cni0',
      'ok node-b cni0: bridge port of 10.244.2.2',
    ]);
    assert.equal(
      t.hops[1]!.entry,
      'ip route get 10.244.2.2 from 10.244.1.2 iif cni0: unicast via 192.168.1.12 dev eth0',
    );
    assert.equal(t.hops[3]!.entry, 'neighbour 192.168.1.12 lladdr 52:54:00:00:00:0b dev eth0');
    assert.equal(t.hops[6]!.entry, 'eth0 (host-gw: no encapsulation) up');
    assert.equal(t.stoppedAt, undefined);
  });

  it('host-gw: a next hop not resolved yet is no stop (ARP resolves it on the first packet)', () => {
    const p = pair('host-gw');
    p.local.snapshot.neighbours = p.local.snapshot.neighbours.filter((n) => n.index !== ETH0);
    const t = tracePath(input(p));
    assert.equal(
      hop(t, 'next hop').entry,
      'no neighbour entry for 192.168.1.12 yet (ARP resolves it on the first packet)',
    );
    assert.equal(t.stoppedAt, undefined);
  });

  it('udp: flanneld encapsulates into UDP 8285, INPUT passes it, flanneld decapsulates onto flannel0', () => {
    const t = tracePath(input(pair('udp')));
    assert.deepEqual(steps(t), [
      'ok node-a: source pod 10.244.1.2 → cni0',
      'ok node-a: route lookup',
      'ok node-a: netfilter FORWARD (in cni0, out flannel0)',
      'ok node-a flannel0: udp encapsulation (flanneld)',
      'ok node-a: underlay route to 192.168.1.12',
      'ok node-b: node of lease 10.244.2.0/24',
      'ok node-b: netfilter INPUT for UDP 8285 (the overlay)',
      'ok node-b flannel0: udp decapsulation (flanneld)',
      'ok node-b: netfilter FORWARD (in flannel0, out cni0)',
      'ok node-b: route to cni0',
      'ok node-b cni0: bridge port of 10.244.2.2',
    ]);
    assert.equal(
      t.hops[3]!.entry,
      "flannel0 → flanneld's forwarder → UDP to 192.168.1.12:8285 (GET /peers shows the peer)",
    );
    assert.equal(t.stoppedAt, undefined);
  });

  it("udp: a DROP of UDP 8285 in B's INPUT stops there", () => {
    const p = pair('udp');
    const s = p.remote.snapshot;
    s.netfilter.iptables = insertBefore(
      s.netfilter.iptables!,
      '-A FORWARD ',
      '[0:0] -A INPUT -p udp -m udp --dport 8285 -j DROP',
    );
    const t = tracePath(input(p));
    assert.equal(t.stoppedAt, 'node-b: netfilter INPUT for UDP 8285 (the overlay)');
    assert.equal(t.reason, 'INPUT drops the encapsulated packets');
    assert.equal(t.id, 'overlay-port-blocked');
  });

  it("IPv6-only vxlan: flannel-v6.1, its v6 neighbour and FDB entry, the peer's publicIPv6", () => {
    const t = tracePath(input(pair('vxlan', 6), SRC6, DST6));
    assert.deepEqual(steps(t), [
      'ok node-a: source pod fd00:10:244:1::2 → cni0',
      'ok node-a: route lookup',
      'ok node-a: netfilter FORWARD (in cni0, out flannel-v6.1)',
      'ok node-a flannel-v6.1: vxlan encapsulation',
      'ok node-a flannel-v6.1: neighbour for the next hop fd00:10:244:2::',
      'ok node-a flannel-v6.1: FDB entry for 0e:00:00:00:06:0b',
      'ok node-a: underlay route to fd00:1::12',
      'ok node-b: node of lease fd00:10:244:2::/64',
      'ok node-b: netfilter INPUT for UDP 8472 (the overlay)',
      'ok node-b flannel-v6.1: decapsulation',
      'ok node-b: netfilter FORWARD (in flannel-v6.1, out cni0)',
      'ok node-b: route to cni0',
      'ok node-b cni0: bridge port of fd00:10:244:2::2',
    ]);
    assert.equal(hop(t, 'FDB entry').entry, 'fdb 0e:00:00:00:06:0b dev flannel-v6.1 dst fd00:1::12 permanent');
    assert.equal(
      hop(t, 'netfilter FORWARD').entry,
      'accept (ip6tables -t filter FLANNEL-FWD rule 1: -A FLANNEL-FWD -s fd00:10:244::/56 -m comment --comment "flanneld forward" -j ACCEPT)',
    );
    assert.equal(t.stoppedAt, undefined);
  });

  it("IPv6-only: B's missing cni0 route names cni0's IPv6 address in the fix", () => {
    const p = pair('vxlan', 6);
    p.remote.forward = { type: 'unicast', oif: ETH0, gateway: 'fe80::1' };
    const t = tracePath(input(p, SRC6, DST6));
    assert.equal(t.stoppedAt, 'node-b: route to cni0');
    assert.match(t.fix!, /ip addr replace fd00:10:244:2::1\/64 dev cni0/);
  });
});

describe('trace: output', () => {
  it('formatTrace marks the stopping hop STOP and prints the reason, the id and the fix', () => {
    const p = pair();
    p.local.snapshot.fdb = p.local.snapshot.fdb.filter((f) => f.index !== OVERLAY);
    const text = formatTrace(tracePath(input(p)));
    const lines = text.split('\n');
    assert.equal(lines[0], 'trace 10.244.1.2 → 10.244.2.2');
    assert.equal(lines[1], ' 1. ok   node-a: source pod 10.244.1.2 → cni0');
    assert.ok(lines.includes(' 6. STOP node-a flannel.1: FDB entry for 0e:00:00:00:00:0b'), text);
    assert.ok(lines.includes('          no fdb 0e:00:00:00:00:0b dev flannel.1'), text);
    assert.ok(
      lines.includes(
        'Stopped at node-a flannel.1: FDB entry for 0e:00:00:00:00:0b: no FDB entry tells flannel.1 where 0e:00:00:00:00:0b lives [peer-unprogrammed]',
      ),
      text,
    );
    assert.match(text, /\nfix: bridge fdb append 0e:00:00:00:00:0b dev flannel\.1 dst 192\.168\.1\.12/);
    assert.equal(lines.filter((l) => / STOP /.test(l)).length, 1);
  });

  it('formatTrace says every hop is in place on a healthy path', () => {
    const text = formatTrace(tracePath(input(pair())));
    assert.ok(text.endsWith('\nEvery hop is in place.\n'), text);
    assert.ok(!text.includes('STOP'));
    assert.ok(!text.includes('fix:'));
  });

  it('traceJson parses back to the hops and the stop', () => {
    const p = pair();
    p.remote.snapshot.netfilter.iptables = insertBefore(
      p.remote.snapshot.netfilter.iptables!,
      '-A FORWARD ',
      '[0:0] -A FORWARD -j DROP',
    );
    const tr = tracePath(input(p));
    const back = JSON.parse(traceJson(tr)) as Trace;
    assert.deepEqual(back, tr);
    assert.equal(back.hops.length, 11);
    for (const h of back.hops) {
      assert.equal(typeof h.where, 'string');
      assert.equal(typeof h.what, 'string');
      assert.equal(typeof h.entry, 'string');
      assert.equal(typeof h.ok, 'boolean');
    }
    assert.equal(back.hops[10]!.what, 'netfilter FORWARD (in flannel.1, out cni0)');
    assert.equal(back.hops[10]!.ok, false);
    assert.equal(back.id, 'forward-blocked');
    assert.ok(traceJson(tr).endsWith('}\n'));
    assert.ok(!('stoppedAt' in (JSON.parse(traceJson(tracePath(input(pair())))) as object)));
  });
});

const ECHO = 'ip saddr 10.244.1.2 ip daddr 10.244.2.2 icmp type echo-request';

/**
 * probeScript of the healthy vxlan trace's points on A; fed to `nft -f -` in a scratch network namespace (nft 1.0.6)
 * to capture NFT_PROBE_A below.
 */
const PROBE_SCRIPT_A = `table inet flannel-trace
delete table inet flannel-trace
table inet flannel-trace {
  chain prerouting {
    type filter hook prerouting priority -400; policy accept;
    iifname "cni0" ${ECHO} counter meta nftrace set 1 comment "a-pre"
  }
  chain forward {
    type filter hook forward priority -400; policy accept;
    ${ECHO} counter comment "a-fwd"
  }
  chain postrouting {
    type filter hook postrouting priority 400; policy accept;
    oifname "flannel.1" ${ECHO} counter comment "a-post"
    oifname "eth0" ip daddr 192.168.1.12 udp dport 8472 counter comment "a-out"
  }
}
`;

/**
 * `nft -j list table inet flannel-trace` after PROBE_SCRIPT_A, in a scratch namespace whose eth0 (a veth) has
 * 192.168.1.11/24, and three UDP datagrams sent to 192.168.1.12:8472 (bash's /dev/udp): a-out counted them.
 * Split one entry (and one rule expression) a line.
 */
const NFT_PROBE_A = String.raw`{"nftables": [
  {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
  {"table": {"family": "inet", "name": "flannel-trace", "handle": 2}},
  {"chain": {"family": "inet", "table": "flannel-trace", "name": "prerouting", "handle": 1, "type": "filter", "hook": "prerouting", "prio": -400, "policy": "accept"}},
  {"chain": {"family": "inet", "table": "flannel-trace", "name": "forward", "handle": 2, "type": "filter", "hook": "forward", "prio": -400, "policy": "accept"}},
  {"chain": {"family": "inet", "table": "flannel-trace", "name": "postrouting", "handle": 3, "type": "filter", "hook": "postrouting", "prio": 400, "policy": "accept"}},
  {"rule": {"family": "inet", "table": "flannel-trace", "chain": "prerouting", "handle": 4, "comment": "a-pre", "expr": [
    {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "cni0"}},
    {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "10.244.1.2"}},
    {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.244.2.2"}},
    {"match": {"op": "==", "left": {"payload": {"protocol": "icmp", "field": "type"}}, "right": "echo-request"}},
    {"counter": {"packets": 0, "bytes": 0}},
    {"mangle": {"key": {"meta": {"key": "nftrace"}}, "value": 1}}
  ]}},
  {"rule": {"family": "inet", "table": "flannel-trace", "chain": "forward", "handle": 5, "comment": "a-fwd", "expr": [
    {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "10.244.1.2"}},
    {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.244.2.2"}},
    {"match": {"op": "==", "left": {"payload": {"protocol": "icmp", "field": "type"}}, "right": "echo-request"}},
    {"counter": {"packets": 0, "bytes": 0}}
  ]}},
  {"rule": {"family": "inet", "table": "flannel-trace", "chain": "postrouting", "handle": 6, "comment": "a-post", "expr": [
    {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "flannel.1"}},
    {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "10.244.1.2"}},
    {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "10.244.2.2"}},
    {"match": {"op": "==", "left": {"payload": {"protocol": "icmp", "field": "type"}}, "right": "echo-request"}},
    {"counter": {"packets": 0, "bytes": 0}}
  ]}},
  {"rule": {"family": "inet", "table": "flannel-trace", "chain": "postrouting", "handle": 7, "comment": "a-out", "expr": [
    {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "eth0"}},
    {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "192.168.1.12"}},
    {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 8472}},
    {"counter": {"packets": 3, "bytes": 102}}
  ]}}
]}
`;

/**
 * `nft monitor trace` in that namespace: the same datagrams with nftrace set, dropped first by an `ip filter OUTPUT`
 * rule (`udp dport 8472 counter drop`), then by an `inet fw output` chain of policy drop.
 */
const MONITOR_TRACE = String.raw`trace id 920dee82 inet flannel-trace output packet: oif "eth0" ip saddr 192.168.1.11 ip daddr 192.168.1.12 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 46871 ip protocol udp ip length 34 udp sport 34428 udp dport 8472 udp length 14 @th,64,48 0x70726f62650a 
trace id 920dee82 inet flannel-trace output rule udp dport 8472 counter packets 0 bytes 0 meta nftrace set 1 comment "t-out" (verdict continue)
trace id 920dee82 inet flannel-trace output policy accept 
trace id 920dee82 ip filter OUTPUT packet: oif "eth0" ip saddr 192.168.1.11 ip daddr 192.168.1.12 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 46871 ip length 34 udp sport 34428 udp dport 8472 udp length 14 @th,64,48 0x70726f62650a 
trace id 920dee82 ip filter OUTPUT rule udp dport 8472 counter packets 0 bytes 0 drop (verdict drop)
trace id 03a8dc01 inet flannel-trace output packet: oif "eth0" ip saddr 192.168.1.11 ip daddr 192.168.1.12 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 47897 ip protocol udp ip length 34 udp sport 60167 udp dport 8472 udp length 14 @th,64,48 0x70726f62650a 
trace id 03a8dc01 inet flannel-trace output rule udp dport 8472 counter packets 0 bytes 0 meta nftrace set 1 comment "t-out" (verdict continue)
trace id 03a8dc01 inet flannel-trace output policy accept 
trace id 03a8dc01 inet fw output packet: oif "eth0" ip saddr 192.168.1.11 ip daddr 192.168.1.12 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 47897 ip protocol udp ip length 34 udp sport 60167 udp dport 8472 udp length 14 @th,64,48 0x70726f62650a 
trace id 03a8dc01 inet fw output policy drop 
`;

describe('trace --probe: counting points and the nft table', () => {
  it('counts the echo on A (cni0, FORWARD, flannel.1), the vxlan packets on eth0 and on B, and the echo on B', () => {
    assert.deepEqual(probePoints(input(pair())), [
      { key: 'a-pre', node: 'local', hook: 'prerouting', match: `iifname "cni0" ${ECHO}`, trace: true },
      { key: 'a-fwd', node: 'local', hook: 'forward', match: ECHO },
      { key: 'a-post', node: 'local', hook: 'postrouting', match: `oifname "flannel.1" ${ECHO}` },
      {
        key: 'a-out',
        node: 'local',
        hook: 'postrouting',
        match: 'oifname "eth0" ip daddr 192.168.1.12 udp dport 8472',
      },
      { key: 'b-pre', node: 'remote', hook: 'prerouting', match: 'ip saddr 192.168.1.11 udp dport 8472', trace: true },
      { key: 'b-in', node: 'remote', hook: 'input', match: 'ip saddr 192.168.1.11 udp dport 8472' },
      { key: 'b-decap', node: 'remote', hook: 'prerouting', match: `iifname "flannel.1" ${ECHO}`, trace: true },
      { key: 'b-fwd', node: 'remote', hook: 'forward', match: ECHO },
      { key: 'b-post', node: 'remote', hook: 'postrouting', match: `oifname "cni0" ${ECHO}` },
    ]);
  });

  it('same node: counts on cni0 alone', () => {
    const p = pair();
    p.local.forward = { type: 'unicast', oif: CNI0 };
    const echo = 'ip saddr 10.244.1.2 ip daddr 10.244.1.3 icmp type echo-request';
    assert.deepEqual(
      probePoints(input({ local: p.local }, SRC, '10.244.1.3')).map((x) => `${x.key} ${x.hook} ${x.match}`),
      [`a-pre prerouting iifname "cni0" ${echo}`, `a-fwd forward ${echo}`, `a-post postrouting oifname "cni0" ${echo}`],
    );
  });

  it('udp: UDP 8285 between the hosts, flannel0 on B; host-gw: no encapsulated packets, eth0 on B', () => {
    const keys = (t: TraceInput) => probePoints(t).map((x) => `${x.key} ${x.match}`);
    assert.deepEqual(keys(input(pair('udp'))).slice(3, 7), [
      'a-out oifname "eth0" ip daddr 192.168.1.12 udp dport 8285',
      'b-pre ip saddr 192.168.1.11 udp dport 8285',
      'b-in ip saddr 192.168.1.11 udp dport 8285',
      `b-decap iifname "flannel0" ${ECHO}`,
    ]);
    assert.deepEqual(keys(input(pair('host-gw'))), [
      `a-pre iifname "cni0" ${ECHO}`,
      `a-fwd ${ECHO}`,
      `a-post oifname "eth0" ${ECHO}`,
      `b-decap iifname "eth0" ${ECHO}`,
      `b-fwd ${ECHO}`,
      `b-post oifname "cni0" ${ECHO}`,
    ]);
  });

  it('IPv6: ip6 and icmpv6 matches, flannel-v6.1, the IPv6 underlay', () => {
    const pts = probePoints(input(pair('vxlan', 6), SRC6, DST6));
    const echo6 = 'ip6 saddr fd00:10:244:1::2 ip6 daddr fd00:10:244:2::2 icmpv6 type echo-request';
    assert.equal(pts.find((x) => x.key === 'a-post')!.match, `oifname "flannel-v6.1" ${echo6}`);
    assert.equal(pts.find((x) => x.key === 'a-out')!.match, 'oifname "eth0" ip6 daddr fd00:1::12 udp dport 8472');
    assert.equal(pts.find((x) => x.key === 'b-in')!.match, 'ip6 saddr fd00:1::11 udp dport 8472');
  });

  it('probeScript writes one table of counters: -400 before the filters, 400 after them', () => {
    const local = probePoints(input(pair())).filter((x) => x.node === 'local');
    assert.equal(probeScript(local), PROBE_SCRIPT_A);
  });

  it('probeCounts reads the packets per point from nft -j', () => {
    assert.deepEqual(probeCounts(NFT_PROBE_A), { 'a-pre': 0, 'a-fwd': 0, 'a-post': 0, 'a-out': 3 });
  });

  it('probeCounts takes an empty listing as no counts', () => {
    assert.deepEqual(probeCounts('{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}]}'), {});
  });

  it("traceDrops keeps the rules and policies that dropped a traced packet, not our own table's lines", () => {
    assert.deepEqual(traceDrops(MONITOR_TRACE), [
      'ip filter OUTPUT rule udp dport 8472 counter packets 0 bytes 0 drop (verdict drop)',
      'inet fw output policy drop',
    ]);
    const forward = [
      'trace id 3c4e1a2b ip filter FORWARD packet: iif "flannel.1" oif "cni0" ip saddr 10.244.1.2 ip daddr 10.244.2.2 icmp type echo-request',
      'trace id 3c4e1a2b ip filter FORWARD rule counter packets 0 bytes 0 drop (verdict drop)',
      'trace id 9 inet fw forward policy drop',
      'trace id 3c4e1a2b inet flannel-trace prerouting rule iifname "flannel.1" ip saddr 10.244.1.2 counter packets 0 bytes 0 meta nftrace set 1 comment "b-decap" (verdict continue)',
      'trace id 3c4e1a2b inet flannel-trace forward policy drop',
    ].join('\n');
    assert.deepEqual(traceDrops(forward), [
      'ip filter FORWARD rule counter packets 0 bytes 0 drop (verdict drop)',
      'inet fw forward policy drop',
    ]);
  });
});

describe('trace --probe: counts on the hops', () => {
  /** Three echoes that crossed A and were lost between the hosts (a cloud firewall dropping UDP 8472). */
  const lostOnUnderlay: ProbeResult = {
    sent: 3,
    received: 0,
    drops: [],
    counts: {
      'a-pre': 3,
      'a-fwd': 3,
      'a-post': 3,
      'a-out': 3,
      'b-pre': 0,
      'b-in': 0,
      'b-decap': 0,
      'b-fwd': 0,
      'b-post': 0,
    },
  };

  it('puts each point on its hop and stops the probe at the first hop that counted none', () => {
    const t = input(pair());
    const tr = withCounts(tracePath(t), t, lostOnUnderlay);
    assert.deepEqual(
      tr.hops.map((h) => [h.what, h.count]),
      [
        ['source pod 10.244.1.2 → cni0', 3],
        ['route lookup', undefined],
        ['netfilter FORWARD (in cni0, out flannel.1)', 3],
        ['vxlan encapsulation', 3],
        ['neighbour for the next hop 10.244.2.0', undefined],
        ['FDB entry for 0e:00:00:00:00:0b', undefined],
        ['underlay route to 192.168.1.12', 3],
        ['node of lease 10.244.2.0/24', 0],
        ['netfilter INPUT for UDP 8472 (the overlay)', 0],
        ['decapsulation', 0],
        ['netfilter FORWARD (in flannel.1, out cni0)', 0],
        ['route to cni0', 0],
        ['bridge port of 10.244.2.2', 0],
      ],
    );
    assert.deepEqual(tr.probe, { sent: 3, received: 0, stoppedAt: 'node-b: node of lease 10.244.2.0/24' });
    assert.equal(tr.stoppedAt, undefined);
    const text = formatTrace(tr);
    assert.match(text, /^ 1\. ok {3}node-a: source pod 10\.244\.1\.2 → cni0 {2}\[3 probe packets\]$/m);
    assert.match(
      text,
      /\nProbe: 0 of 3 echoes answered; the probe stopped at node-b: node of lease 10\.244\.2\.0\/24\.\n/,
    );
  });

  it("names no probe stop when every echo was answered, and carries nft trace's drops", () => {
    const t = input(pair());
    const counts = Object.fromEntries(Object.keys(lostOnUnderlay.counts).map((k) => [k, 3]));
    const ok = withCounts(tracePath(t), t, { sent: 3, received: 3, counts, drops: [] });
    assert.deepEqual(ok.probe, { sent: 3, received: 3 });
    assert.ok(ok.hops.every((h) => h.count === undefined || h.count === 3));
    const dropped = withCounts(tracePath(t), t, {
      sent: 3,
      received: 0,
      counts: { ...counts, 'b-post': 0 },
      drops: ['node-b: ip filter FORWARD rule counter packets 0 bytes 0 drop (verdict drop)'],
    });
    assert.equal(dropped.probe!.stoppedAt, 'node-b: route to cni0');
    assert.deepEqual(dropped.probe!.droppedBy, [
      'node-b: ip filter FORWARD rule counter packets 0 bytes 0 drop (verdict drop)',
    ]);
    assert.match(
      formatTrace(dropped),
      /\n {2}dropped by node-b: ip filter FORWARD rule counter packets 0 bytes 0 drop \(verdict drop\)\n/,
    );
  });

  it('same node: the bridge port counts on a-post', () => {
    const p = pair();
    p.local.forward = { type: 'unicast', oif: CNI0 };
    const t = input({ local: p.local }, SRC, '10.244.1.3');
    const tr = withCounts(tracePath(t), t, {
      sent: 3,
      received: 0,
      counts: { 'a-pre': 3, 'a-fwd': 3, 'a-post': 0 },
      drops: [],
    });
    assert.deepEqual(
      tr.hops.map((h) => h.count),
      [3, undefined, 3, 0],
    );
    assert.equal(tr.probe!.stoppedAt, 'node-a cni0: bridge port of 10.244.1.3');
  });

  // Lab hosts are flab-h1 … flab-h20: a name that is a prefix of another's must not take its hops.
  it("keeps B's counts on B's hops when A's name is a prefix of B's (flab-h1 → flab-h10)", () => {
    const p = pair();
    p.local.name = 'flab-h1';
    p.remote.name = 'flab-h10';
    const t = input(p);
    const counts = { ...lostOnUnderlay.counts, 'b-pre': 3, 'b-in': 3, 'b-decap': 3 };
    const tr = withCounts(tracePath(t), t, { ...lostOnUnderlay, counts });
    assert.equal(hop(tr, 'netfilter FORWARD (in flannel.1').where, 'flab-h10');
    assert.equal(hop(tr, 'netfilter FORWARD (in flannel.1').count, 0);
    assert.equal(hop(tr, 'bridge port').count, 0);
    assert.equal(tr.probe!.stoppedAt, 'flab-h10: netfilter FORWARD (in flannel.1, out cni0)');
  });
});
