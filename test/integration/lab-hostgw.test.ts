// `flannelctl lab up --backend host-gw`: etcd + 3 real flanneld processes + CNI pods, routed host to host with no
// overlay device; checked against the host-gw state in docs/COMPATIBILITY.md, "Kernel state per backend", then
// `lab down`.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ipJson, nsRun } from '../helpers/netns.ts';
import {
  assertDoctorHealthy,
  assertTraceHealthy,
  TRACE_HOPS,
  assertLabGone,
  etcdValues,
  lab,
  labDoctor,
  LAB_HOSTS as hosts,
  LAB_UNDERLAY as underlay,
  labDownQuietly,
  labSkip,
  labUpOutput,
  subnetEnv,
} from '../helpers/lab.ts';

describe('lab: 3 hosts × 2 pods over host-gw', { skip: labSkip }, () => {
  let upOutput = '';
  before(() => {
    upOutput = labUpOutput(['--hosts', '3', '--pods-per-host', '2', '--backend', 'host-gw']);
  });
  after(labDownQuietly);

  it('ends with a full ping matrix at 0 % loss', () => {
    assert.match(upOutput, /All 42 pairs at 0 % loss\./, upOutput);
  });

  it('publishes host-gw leases without BackendData and writes the eth0 MTU to subnet.env', () => {
    const leases = etcdValues();
    assert.equal(Object.keys(leases).length, 3);
    for (const h of hosts) {
      const env = subnetEnv(h);
      assert.equal(env.FLANNEL_MTU, '1500');
      const key = `/coreos.com/network/subnets/${env.FLANNEL_SUBNET!.replace('.1/24', '.0-24')}`;
      assert.equal(leases[key], `{"PublicIP":"${underlay[h]}","PublicIPv6":null,"BackendType":"host-gw"}`);
    }
  });

  it('programs the documented host-gw state: <peer subnet> via <peer> dev eth0 and no flannel device', () => {
    for (const h of hosts) {
      assert.deepEqual(
        ipJson(h, ['link', 'show']).filter((l: any) => l.ifname.startsWith('flannel')),
        [],
      );
      const routes = ipJson(h, ['-4', 'route', 'show'])
        .filter((r: any) => r.gateway)
        .map((r: any) => `${r.dst} via ${r.gateway} dev ${r.dev}`)
        .sort();
      const want = hosts
        .filter((p) => p !== h)
        .map((p) => `${subnetEnv(p).FLANNEL_SUBNET!.replace('.1/24', '.0/24')} via ${underlay[p]} dev eth0`)
        .sort();
      assert.deepEqual(routes, want, h);
    }
  });

  it('lab doctor finds nothing, lab trace walks every hop, and a peer behind a gateway is hostgw-not-adjacent', () => {
    assertDoctorHealthy(hosts);
    assertTraceHealthy('h1-p1', 'h2-p1', TRACE_HOPS['host-gw']);
    // h2 reached through h3 as a router: not on one L2 segment as far as h1's routing goes.
    nsRun('flab-h1', 'ip', ['route', 'add', `${underlay['flab-h2']}/32`, 'via', underlay['flab-h3']!, 'dev', 'eth0']);
    try {
      const d = labDoctor('flab-h1');
      assert.deepEqual(d.ids, ['hostgw-not-adjacent'], d.stdout);
      assert.equal(d.status, 1);
      assert.match(
        d.findings[0]!.summary,
        new RegExp(`is reached through gateway ${underlay['flab-h3']!.replace(/\./g, '\\.')}`),
      );
      assert.match(d.findings[0]!.fix, /vxlan backend/);
    } finally {
      nsRun('flab-h1', 'ip', ['route', 'del', `${underlay['flab-h2']}/32`]);
    }
  });

  it('lab down leaves no namespace or file behind', () => {
    lab(['down']);
    assertLabGone();
  });
});
