// flanneld with "EnableIPv6": the IPv6 masquerade/forward rules (ip6tables, or nft table `ip6 flannel-ipv6`) built from
// the config's IPv6Network and the host's v6 lease subnet, next to the v4 ones. Every process runs in a namespace.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { flanneldSkip, readSubnetEnv, FlanneldHosts } from '../helpers/flanneld-hosts.ts';
import { nsRun, run } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { specFwd, specMasq6 } from '../helpers/iptables.ts';
import { specTable6 } from '../helpers/nftables.ts';

const NET6 = '2001:db8:42::/56';
const config = (nft: boolean) =>
  JSON.stringify({
    Network: '10.244.0.0/16',
    EnableIPv6: true,
    IPv6Network: NET6,
    EnableNFTables: nft,
    Backend: { Type: 'vxlan' },
  });

/** The lease's v6 subnet from subnet.env (`FLANNEL_IPV6_SUBNET=<first host>/<len>` → network/len). */
function subnet6(file: string): string {
  const env = readSubnetEnv(file);
  assert.ok(env?.FLANNEL_IPV6_SUBNET, `FLANNEL_IPV6_SUBNET in ${file}`);
  const [addr, len] = env.FLANNEL_IPV6_SUBNET.split('/');
  assert.equal(len, '64');
  assert.match(addr!, /::1$/);
  return `${addr!.replace(/::1$/, '::')}/${len}`;
}

describe('flanneld daemon: dual stack rules', { skip: flanneldSkip }, () => {
  const u = new FlanneldHosts();
  before(async () => {
    await u.start();
  });
  after(async () => {
    await u.cleanup();
  });

  /** A host with v4 and v6 on eth0 and both default routes there, running flanneld with `nft` or iptables mode. */
  async function host(ip: string, ip6: string, nft: boolean) {
    const prefix = u.prefix(false);
    u.etcdctl(['put', `${prefix}/config`, config(nft)]);
    const ns = u.addHost('fd6r', { eth0: ip });
    run('ip', ['-n', ns, '-6', 'addr', 'add', `${ip6}/64`, 'dev', 'eth0', 'nodad']);
    run('ip', ['-n', ns, '-6', 'route', 'add', 'default', 'via', 'fd00:150::1', 'dev', 'eth0']);
    const file = u.subnetFile();
    const d = u.flanneld(ns, [...u.etcdFlags(prefix, file), '--ip-masq', '--iptables-resync=1']);
    await d.ready();
    return { ns, file, d };
  }

  it('iptables mode: exact ip6tables nat and filter rules; a deleted v6 rule comes back', async () => {
    const { ns, file, d } = await host('192.168.150.81', 'fd00:150::81', false);
    const pod = subnet6(file);
    const nat = () => nsRun(ns, 'ip6tables', ['-w', '-t', 'nat', '-S', 'FLANNEL-POSTRTG']);
    // `-S FLANNEL-POSTRTG` alone: the spec listing without the POSTROUTING jump, newline-terminated.
    const wantNat = [...specMasq6(NET6, pod).slice(1), ''].join('\n');
    // subnet.env is written after the first apply of every rule set, so the rules are already there.
    assert.equal(nat(), wantNat);
    assert.equal(
      nsRun(ns, 'ip6tables', ['-w', '-t', 'nat', '-S', 'POSTROUTING']),
      '-P POSTROUTING ACCEPT\n-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG\n',
    );
    assert.equal(
      nsRun(ns, 'ip6tables', ['-w', '-t', 'filter', '-S', 'FLANNEL-FWD']),
      [...specFwd(NET6).slice(1), ''].join('\n'),
    );
    assert.match(
      nsRun(ns, 'ip6tables', ['-w', '-t', 'filter', '-S', 'FORWARD']),
      /^-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD$/m,
    );
    // The v4 rule set is still there, v4 only.
    assert.match(
      nsRun(ns, 'iptables', ['-w', '-t', 'nat', '-S', 'FLANNEL-POSTRTG']),
      /-s 10\.244\.0\.0\/16 ! -d 224\.0\.0\.0\/4 /,
    );

    nsRun(ns, 'ip6tables', ['-w', '-t', 'nat', '-D', 'FLANNEL-POSTRTG', '5']);
    assert.notEqual(nat(), wantNat);
    await d.waitLog(/Some iptables rules are missing; deleting and recreating rules/, 10_000);
    await until('the v6 masquerade chain to be restored', () => nat() === wantNat, 5_000, 50);
  });

  it('nftables mode: the exact ip6 flannel-ipv6 table', async () => {
    const { ns, file } = await host('192.168.150.82', 'fd00:150::82', true);
    const pod = subnet6(file);
    assert.equal(nsRun(ns, 'nft', ['list', 'table', 'ip6', 'flannel-ipv6']), specTable6(NET6, pod));
    assert.match(
      nsRun(ns, 'nft', ['list', 'table', 'ip', 'flannel-ipv4']),
      /ip saddr 10\.244\.0\.0\/16 ip daddr != 224\.0\.0\.0\/4 masquerade/,
    );
    assert.doesNotMatch(nsRun(ns, 'ip6tables', ['-w', '-t', 'nat', '-S']), /FLANNEL/);
  });
});
