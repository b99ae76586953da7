// flanneld with "EnableNFTables": true on two hosts: the flannel nftables table in place of the iptables chains, the
// resync, and pod traffic across hosts (kept source) and out of the overlay (masqueraded). Every process runs in a
// namespace.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  all,
  ETCD_IP,
  flanneldSkip,
  leaseOf,
  peerState,
  readSubnetEnv,
  FlanneldHosts,
} from '../helpers/flanneld-hosts.ts';
import { nsRun, pings, run, uniqueName } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { nftTable, specTable } from '../helpers/nftables.ts';
import { flannelJump } from '../helpers/iptables.ts';

const NFT_CONFIG = '{"Network":"10.244.0.0/16","EnableNFTables":true,"Backend":{"Type":"vxlan"}}';

describe('flanneld daemon: nftables mode', { skip: flanneldSkip }, () => {
  const u = new FlanneldHosts();
  before(async () => {
    await u.start();
  });
  after(async () => {
    await u.cleanup();
  });

  /** A pod namespace behind a veth on `host`: `<subnet>.2`, default route via `<subnet>.1` on the host side. */
  function addPod(host: string, subnet: string): { ns: string; ip: string } {
    const base = subnet.split('/')[0]!.split('.').slice(0, 3).join('.');
    const pod = u.netns.add('fdpod');
    const inner = uniqueName('fpi');
    const outer = uniqueName('fpo');
    run('ip', ['link', 'add', inner, 'type', 'veth', 'peer', 'name', outer]);
    run('ip', ['link', 'set', inner, 'netns', pod]);
    run('ip', ['link', 'set', outer, 'netns', host]);
    run('ip', ['-n', host, 'addr', 'add', `${base}.1/24`, 'dev', outer]);
    run('ip', ['-n', host, 'link', 'set', outer, 'up']);
    run('ip', ['-n', pod, 'addr', 'add', `${base}.2/24`, 'dev', inner]);
    run('ip', ['-n', pod, 'link', 'set', inner, 'up']);
    run('ip', ['-n', pod, 'route', 'add', 'default', 'via', `${base}.1`]);
    nsRun(host, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    return { ns: pod, ip: `${base}.2` };
  }

  it('replaces the iptables chains with the flannel nftables table, keeps it, and carries pod traffic between hosts', async () => {
    const prefix = u.prefix(false);
    u.etcdctl(['put', `${prefix}/config`, NFT_CONFIG]);
    const hosts = ['192.168.150.71', '192.168.150.72'].map((ip) => ({
      ip,
      ns: u.addHost('fdnft', { eth0: ip }),
      file: u.subnetFile(),
    }));
    const [a, b] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];

    // Host A still carries what iptables mode left behind.
    nsRun(a.ns, 'iptables', ['-w', '-t', 'nat', '-N', 'FLANNEL-POSTRTG']);
    flannelJump(a.ns, 'iptables', '-A', 'masq');
    nsRun(a.ns, 'iptables', ['-w', '-t', 'filter', '-N', 'FLANNEL-FWD']);
    flannelJump(a.ns, 'iptables', '-A', 'forward');

    const daemons = hosts.map((h) =>
      u.flanneld(h.ns, [...u.etcdFlags(prefix, h.file), '--ip-masq', '--iptables-resync=1']),
    );
    await Promise.all(daemons.map((d) => d.ready()));
    const [da] = daemons as [(typeof daemons)[0]];

    const subnetOf = (h: typeof a) => {
      const env = readSubnetEnv(h.file);
      assert.ok(env?.FLANNEL_SUBNET, `subnet.env of ${h.ip}`);
      const [addr, len] = env.FLANNEL_SUBNET.split('/');
      return `${addr!.replace(/\.\d+$/, '.0')}/${len}`;
    };
    for (const h of hosts) assert.equal(nftTable(h.ns), specTable('10.244.0.0/16', subnetOf(h)));
    assert.doesNotMatch(nsRun(a.ns, 'iptables', ['-w', '-t', 'nat', '-S']), /FLANNEL/);
    assert.doesNotMatch(nsRun(a.ns, 'iptables', ['-w', '-t', 'filter', '-S']), /FLANNEL/);

    // Pod A → pod B across the vxlan overlay, with pod A's own address as source (postrtg rule 2 returns).
    const { ns: podAns, ip: podA } = addPod(a.ns, subnetOf(a));
    const { ns: podBns, ip: podB } = addPod(b.ns, subnetOf(b));
    const bl = leaseOf(u.leases(prefix), b.ip)!;
    await until('A to program B', () => all(peerState(a.ns, bl.subnet, bl.mac, b.ip)), 10_000, 50);
    nsRun(
      podBns,
      'nft',
      ['-f', '-'],
      `table ip seen {\n chain input {\n  type filter hook input priority 0;\n  ip saddr ${podA} icmp type echo-request counter\n }\n}\n`,
    );
    await until(`pod ${podA} to ping pod ${podB}`, () => pings(podAns, podB), 10_000, 200);
    assert.match(nsRun(podBns, 'nft', ['list', 'table', 'ip', 'seen']), /counter packets [1-9]/);

    // Pod A → the switch, which has no route back to 10.244.0.0/16: only a masqueraded packet gets a reply.
    assert.throws(() => nsRun(u.sw, 'ip', ['route', 'get', podA]));
    await until(`pod ${podA} to ping ${ETCD_IP} (masqueraded)`, () => pings(podAns, ETCD_IP), 10_000, 200);

    // A flushed chain comes back on the next resync.
    nsRun(a.ns, 'nft', ['flush', 'chain', 'ip', 'flannel-ipv4', 'postrtg']);
    await da.waitLog(/Some nftables rules are missing; recreating rules/, 10_000);
    await until(
      'the postrtg chain to be restored',
      () => nftTable(a.ns) === specTable('10.244.0.0/16', subnetOf(a)),
      5_000,
      50,
    );
  });
});
