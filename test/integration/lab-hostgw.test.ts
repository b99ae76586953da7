// `flannelctl lab up --backend host-gw`: etcd + 3 real flanneld processes + CNI pods, routed host to host with no
// overlay device; checked against the host-gw state in docs/COMPATIBILITY.md, "Kernel state per backend", then
// `lab down`.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ipJson, nsRun } from '../helpers/netns.ts';
import {
  assertDoctorHealthy,
  assertTraceHealthy,
  describeLabBackend,
  TRACE_HOPS,
  labDoctor,
  LAB_HOSTS as hosts,
  LAB_UNDERLAY as underlay,
  subnetEnv,
} from '../helpers/lab.ts';

describeLabBackend(
  {
    backend: 'host-gw',
    mtu: 1500,
    leaseText: 'without BackendData',
    leaseValue: (ip) => `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"host-gw"}`,
  },
  () => {
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
  },
);
