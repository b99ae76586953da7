// `flannelctl lab up --backend udp`: etcd + 3 real flanneld processes + CNI pods over the userspace udp backend
// (flannel0 TUN, raw IP packets in UDP to port 8285); checked against the udp state in
// docs/COMPATIBILITY.md, "Kernel state per backend", then `lab down`.
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
    backend: 'udp',
    mtu: 1472,
    leaseText: 'with only PublicIP',
    leaseValue: (ip) => `{"PublicIP":"${ip}","PublicIPv6":null}`,
  },
  () => {
    it('programs the documented udp state: flannel0 tun, mtu 1472, <lease>/32, route for Network, socket on :8285', () => {
      for (const h of hosts) {
        const [link] = ipJson(h, ['-d', 'link', 'show', 'flannel0']);
        assert.equal(link.linkinfo.info_kind, 'tun', h);
        assert.equal(link.linkinfo.info_data.pi, false, h);
        assert.equal(link.mtu, 1472, h);
        const [addr] = ipJson(h, ['-4', 'addr', 'show', 'flannel0']);
        const own = subnetEnv(h).FLANNEL_SUBNET!.replace('.1/24', '.0');
        assert.deepEqual(
          addr.addr_info.map((x: any) => `${x.local}/${x.prefixlen}`),
          [`${own}/32`],
          h,
        );
        assert.deepEqual(
          ipJson(h, ['route', 'show', 'dev', 'flannel0']).map((r: any) => r.dst),
          ['10.244.0.0/16'],
          h,
        );
        assert.match(nsRun(h, 'ss', ['-Hnlu']), new RegExp(`${underlay[h]!.replace(/\./g, '\\.')}:8285\\b`), h);
      }
    });

    it('lab doctor finds nothing on any host, with --probe, and names a lost Network route into flannel0', () => {
      assertDoctorHealthy(hosts);
      assertTraceHealthy('h1-p1', 'h2-p1', TRACE_HOPS.udp);
      nsRun('flab-h2', 'ip', ['route', 'del', '10.244.0.0/16', 'dev', 'flannel0']);
      try {
        const d = labDoctor('flab-h2');
        assert.deepEqual(d.ids, ['peer-unprogrammed'], d.stdout);
        assert.match(d.findings[0]!.fix, /ip route replace 10\.244\.0\.0\/16 dev flannel0/);
      } finally {
        nsRun('flab-h2', 'ip', ['route', 'replace', '10.244.0.0/16', 'dev', 'flannel0']);
      }
      assert.equal(labDoctor('flab-h2').status, 0);
    });
  },
);
