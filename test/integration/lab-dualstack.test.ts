// `flannelctl lab up --dual-stack` over vxlan and host-gw: IPv4 and IPv6 pod-to-pod matrices at 0 % loss, the
// documented dual-stack etcd keys and lease JSON, and the IPv6 lines of subnet.env.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ipJson } from '../helpers/netns.ts';
import {
  assertDoctorHealthy,
  assertTraceHealthy,
  TRACE_HOPS,
  assertNoLabNamespaces,
  etcdValues,
  lab,
  LAB_HOSTS as hosts,
  LAB_UNDERLAY as underlay,
  labDownQuietly,
  labUnderlayV6,
  labSkip,
  labUpOutput,
  subnetEnv,
} from '../helpers/lab.ts';

/** The etcd key of a host: `<v4 net>-<len>&<v6 net>-<len>`, from its subnet.env. */
function dualKey(h: string): string {
  const env = subnetEnv(h);
  const v4 = env.FLANNEL_SUBNET!.replace('.1/24', '.0-24');
  const v6 = env.FLANNEL_IPV6_SUBNET!.replace(/::1\/64$/, '::-64');
  return `/coreos.com/network/subnets/${v4}&${v6}`;
}

describe('lab --dual-stack', { skip: labSkip }, () => {
  after(labDownQuietly);

  it('vxlan: both matrices at 0 % loss, dual-stack keys and JSON, flannel-v6.1 routes', () => {
    const out = labUpOutput(['--dual-stack']);
    assert.match(out, /Pod-to-pod IPv6 ping matrix/);
    // Per family: 30 pod pairs + 12 pod → other hosts' underlay address.
    assert.match(out, /All 84 pairs at 0 % loss\./, out);
    assert.match(out, /counted the pod → underlay packets \(iptables, ip6tables\)/);
    const leases = etcdValues();
    assert.equal(Object.keys(leases).length, 3);
    for (const h of hosts) {
      const env = subnetEnv(h);
      assert.equal(env.FLANNEL_IPV6_NETWORK, 'fd44:244::/56');
      assert.match(env.FLANNEL_IPV6_SUBNET!, /^fd44:244:0:[0-9a-f]+::1\/64$/);
      const value = JSON.parse(leases[dualKey(h)]!);
      assert.deepEqual(Object.keys(value), ['PublicIP', 'PublicIPv6', 'BackendType', 'BackendData', 'BackendV6Data']);
      assert.equal(value.PublicIP, underlay[h]);
      assert.equal(value.PublicIPv6, labUnderlayV6(h));
      assert.equal(value.BackendV6Data.VtepMAC, ipJson(h, ['link', 'show', 'flannel-v6.1'])[0].address);
      for (const peer of hosts.filter((p) => p !== h)) {
        const net6 = subnetEnv(peer).FLANNEL_IPV6_SUBNET!.replace(/::1\/64$/, '::/64');
        const r = ipJson(h, ['-6', 'route', 'show', net6])[0];
        assert.equal(r.dev, 'flannel-v6.1');
        assert.ok(r.flags.includes('onlink'));
      }
    }
    assertDoctorHealthy(hosts);
    assertTraceHealthy('h1-p1', 'h2-p1', TRACE_HOPS.vxlan);
    assertTraceHealthy('h1-p1', 'h2-p1', TRACE_HOPS.vxlan, true, ['--ipv6']);
    lab(['down']);
    assertNoLabNamespaces();
  });

  it("host-gw: both matrices at 0 % loss and v6 routes via the peers' IPv6 underlay addresses", () => {
    const out = labUpOutput(['--dual-stack', '--backend', 'host-gw']);
    assert.match(out, /All 84 pairs at 0 % loss\./, out);
    for (const h of hosts) {
      for (const peer of hosts.filter((p) => p !== h)) {
        const net6 = subnetEnv(peer).FLANNEL_IPV6_SUBNET!.replace(/::1\/64$/, '::/64');
        const r = ipJson(h, ['-6', 'route', 'show', net6])[0];
        assert.equal(r.gateway, labUnderlayV6(peer));
        assert.equal(r.dev, 'eth0');
      }
    }
    assertDoctorHealthy(hosts);
    assertTraceHealthy('h1-p1', 'h2-p1', TRACE_HOPS['host-gw'], true, ['--ipv6']);
  });
});
