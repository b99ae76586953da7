// `flannelctl lab up --ipv6`: an IPv6-only pod network (EnableIPv4 false) over vxlan and host-gw. The matrices at
// 0 % loss, the etcd key and lease JSON flannel writes for a lease without an IPv4 subnet, subnet.env with only the
// IPv6 lines, flannel-v6.1 alone, and no IPv4 rules.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ipJson } from '../helpers/netns.ts';
import {
  assertDoctorHealthy,
  assertTraceHealthy,
  TRACE_HOPS,
  assertNoLabNamespaces,
  etcdValues,
  iptablesChains,
  lab,
  LAB_HOSTS as hosts,
  labDownQuietly,
  labSkip,
  labUnderlayV6,
  labUpOutput,
  subnetEnv,
  subnetEnvFile,
} from '../helpers/lab.ts';

/** `fd44:244:0:1b::1/64` → `fd44:244:0:1b::` */
const v6Net = (h: string) => subnetEnv(h).FLANNEL_IPV6_SUBNET!.replace(/::1\/64$/, '::');

describe('lab --ipv6 (IPv6-only)', { skip: labSkip }, () => {
  after(labDownQuietly);

  it('vxlan: IPv6 matrix at 0 % loss, 0.0.0.0-0&<v6> keys, v6-only lease JSON and subnet.env, no IPv4 state', () => {
    const out = labUpOutput(['--ipv6']);
    assert.doesNotMatch(out, /Pod-to-pod IPv4 ping matrix/);
    // 30 pod pairs + 12 pod → other hosts' IPv6 underlay address, masqueraded by ip6tables.
    assert.match(out, /All 42 pairs at 0 % loss\./, out);
    assert.match(out, /counted the pod → underlay packets \(ip6tables\)/);
    const leases = etcdValues();
    assert.deepEqual(
      Object.keys(leases).sort(),
      hosts.map((h) => `/coreos.com/network/subnets/0.0.0.0-0&${v6Net(h)}-64`).sort(),
    );
    for (const h of hosts) {
      // Only the IPv6 lines, in flannel's order; the MTU is flannel-v6.1's (1500 − 70).
      const text = readFileSync(subnetEnvFile(h), 'utf8');
      assert.match(
        text,
        /^FLANNEL_IPV6_NETWORK=fd44:244::\/56\nFLANNEL_IPV6_SUBNET=fd44:244:0:[0-9a-f]+::1\/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=true\n$/,
      );
      const mac = ipJson(h, ['link', 'show', 'flannel-v6.1'])[0].address;
      assert.equal(
        leases[`/coreos.com/network/subnets/0.0.0.0-0&${v6Net(h)}-64`],
        `{"PublicIP":"0.0.0.0","PublicIPv6":"${labUnderlayV6(h)}","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"${mac}"}}`,
      );
      assert.deepEqual(
        ipJson(h, ['link', 'show', 'type', 'vxlan']).map((l: { ifname: string }) => l.ifname),
        ['flannel-v6.1'],
      );
      const addrs = ipJson(h, ['-6', 'addr', 'show', 'dev', 'flannel-v6.1', 'scope', 'global'])[0].addr_info;
      // (ip -json adds lifetime-only entries under a scope filter.)
      const cidrs = addrs
        .filter((a: { local?: string }) => a.local)
        .map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`);
      assert.deepEqual(cidrs, [`${v6Net(h)}/128`]);
      for (const peer of hosts.filter((p) => p !== h)) {
        const r = ipJson(h, ['-6', 'route', 'show', `${v6Net(peer)}/64`])[0];
        assert.equal(r.dev, 'flannel-v6.1');
        assert.equal(r.gateway, v6Net(peer));
        assert.ok(r.flags.includes('onlink'));
        const neigh = ipJson(h, ['-6', 'neigh', 'show', v6Net(peer), 'dev', 'flannel-v6.1'])[0];
        assert.deepEqual(neigh.state, ['PERMANENT']);
      }
      // No IPv4 flannel rules at all; the IPv6 ones in ip6tables.
      assert.equal(iptablesChains(h, 'iptables', 'nat').includes('FLANNEL-POSTRTG'), false);
      assert.equal(iptablesChains(h, 'iptables', 'filter').includes('FLANNEL-FWD'), false);
      assert.ok(iptablesChains(h, 'ip6tables', 'nat').includes('FLANNEL-POSTRTG'));
    }
    assertTraceHealthy('h1-p1', 'h2-p1', TRACE_HOPS.vxlan);
    lab(['down']);
    assertNoLabNamespaces();
  });

  it("host-gw: IPv6 matrix at 0 % loss with routes via the peers' IPv6 underlay addresses only", () => {
    const out = labUpOutput(['--ipv6', '--backend', 'host-gw', '--hosts', '2']);
    // 12 pod pairs + 4 pod → other host's underlay.
    assert.match(out, /All 16 pairs at 0 % loss\./, out);
    const [h1, h2] = [hosts[0]!, hosts[1]!];
    const r = ipJson(h1, ['-6', 'route', 'show', `${v6Net(h2)}/64`])[0];
    assert.equal(r.gateway, labUnderlayV6(h2));
    assert.equal(r.dev, 'eth0');
    // Nothing routed for IPv4: the only IPv4 routes are the underlay's own.
    assert.deepEqual(
      ipJson(h1, ['-4', 'route', 'show'])
        .map((x: { dst: string }) => x.dst)
        .sort(),
      ['192.168.100.0/24', 'default'],
    );
    assert.equal(
      JSON.parse(etcdValues()[`/coreos.com/network/subnets/0.0.0.0-0&${v6Net(h2)}-64`]!).BackendType,
      'host-gw',
    );
    assertDoctorHealthy([h1, h2]);
    assertTraceHealthy('h1-p1', 'h2-p1', TRACE_HOPS['host-gw']);
  });

  it('refuses the udp backend with --ipv6, creating nothing', () => {
    lab(['down']);
    assert.throws(
      () => lab(['up', '--ipv6', '--backend', 'udp']),
      (e: { stderr?: string }) =>
        /udp carries IPv4 only; use --backend vxlan or host-gw with --ipv6/.test(String(e.stderr)),
    );
    assertNoLabNamespaces();
  });
});
