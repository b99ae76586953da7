// Dual stack in the Kubernetes subnet manager against the in-process fake API server: the v6 subnet from the
// node's IPv6 pod CIDR, the v6 annotations it publishes, and peers' v6 leases and updates. HTTP on loopback only.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LeaseAttrs, LeaseEvent } from '../../src/subnet/lease.ts';
import { kubeDir, kubeSuite } from '../helpers/kube-api.ts';
import { within } from '../helpers/wait.ts';
import { leaseLines } from '../helpers/lease-events.ts';

const TOKEN = 'dual-token-456';
const P = 'flannel.alpha.coreos.com/';
const dualAttrs = (mac6 = '0e:00:00:00:60:01'): LeaseAttrs => ({
  publicIP: '192.168.1.11',
  publicIPv6: 'fc00::11',
  backendType: 'vxlan',
  backendData: { VNI: 1, VtepMAC: '0e:00:00:00:00:01' },
  backendV6Data: { VNI: 1, VtepMAC: mac6 },
});
const peerAnnotations = {
  [`${P}kube-subnet-manager`]: 'true',
  [`${P}backend-type`]: 'vxlan',
  [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"0e:00:00:00:00:02"}',
  [`${P}public-ip`]: '192.168.1.12',
  [`${P}backend-v6-data`]: '{"VNI":1,"VtepMAC":"0e:00:00:00:60:02"}',
  [`${P}public-ipv6`]: 'fc00::12',
};

const kd = kubeDir(
  'kube-dual-',
  '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"vxlan"}}',
);

const show = (evs: LeaseEvent[]) => leaseLines(evs, ['subnet', 'ipv6Subnet', 'publicIPv6', 'vtepMacV6']);

describe('KubeSubnetManager in dual-stack mode', () => {
  const { server, stop, make } = kubeSuite(kd, {
    token: TOKEN,
    nodeName: 'dual-a',
    setNodeNetworkUnavailable: false,
    nodes: [
      { name: 'dual-a', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] },
      { name: 'dual-b', podCIDRs: ['fd00:10:244:2::/64', '10.244.2.0/24'], annotations: peerAnnotations },
    ],
  });
  after(() => kd.remove());

  it('acquires both subnets and publishes the v6 annotations in the status patch', async () => {
    const m = await make();
    const lease = await m.acquireLease(dualAttrs(), stop.signal);
    assert.equal(lease.subnet!.toString(), '10.244.1.0/24');
    assert.equal(lease.ipv6Subnet?.toString(), 'fd00:10:244:1::/64');
    assert.equal(lease.attrs.publicIPv6, 'fc00::11');
    assert.deepEqual(server.getNode('dual-a')!.metadata.annotations, {
      [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"0e:00:00:00:00:01"}',
      [`${P}backend-type`]: 'vxlan',
      [`${P}kube-subnet-manager`]: 'true',
      [`${P}public-ip`]: '192.168.1.11',
      [`${P}backend-v6-data`]: '{"VNI":1,"VtepMAC":"0e:00:00:00:60:01"}',
      [`${P}public-ipv6`]: 'fc00::11',
    });
    const patches = server.patches.filter((p) => p.node === 'dual-a');
    assert.equal(patches.length, 1);
    assert.equal(patches[0]!.subresource, 'status');
    // A new v6 VtepMAC alone is patched alone.
    await m.acquireLease(dualAttrs('0e:00:00:00:60:99'), stop.signal);
    assert.deepEqual(server.patches.at(-1)!.body, {
      metadata: { annotations: { [`${P}backend-v6-data`]: '{"VNI":1,"VtepMAC":"0e:00:00:00:60:99"}' } },
    });
    await m.acquireLease(dualAttrs(), stop.signal);
  });

  it('remembers both VtepMACs of the previous run: previousBackendData and previousBackendV6Data', async () => {
    const m = await make();
    assert.deepEqual(m.previousBackendData(), { VNI: 1, VtepMAC: '0e:00:00:00:00:01' });
    assert.deepEqual(m.previousBackendV6Data(), { VNI: 1, VtepMAC: '0e:00:00:00:60:01' });
    const b = await make({ nodeName: 'dual-b' });
    assert.deepEqual(
      b.previousBackendV6Data(),
      { VNI: 1, VtepMAC: '0e:00:00:00:60:02' },
      'dual-b was created with its annotations',
    );
    // A node that never ran flannel has neither.
    server.addNode({ name: 'dual-new', podCIDRs: ['10.244.5.0/24', 'fd00:10:244:5::/64'] });
    const none = await make({ nodeName: 'dual-new' });
    assert.equal(none.previousBackendData(), undefined);
    assert.equal(none.previousBackendV6Data(), undefined);
  });

  it('gives peers v6 leases and reports their v6 annotation changes', async () => {
    const m = await make();
    const own = await m.acquireLease(dualAttrs(), stop.signal);
    const ac = new AbortController();
    const it = m.watchLeases(own, ac.signal)[Symbol.asyncIterator]();
    const next = async (what: string) => (await within(2000, what, it.next())).value as LeaseEvent[];
    try {
      assert.deepEqual(show(await next('first batch')), [
        'added 10.244.2.0/24 fd00:10:244:2::/64 fc00::12 0e:00:00:00:60:02',
      ]);
      server.modifyNode(
        'dual-b',
        (n) => (n.metadata.annotations![`${P}backend-v6-data`] = '{"VNI":1,"VtepMAC":"0e:00:00:00:60:22"}'),
      );
      assert.deepEqual(show(await next('v6 VtepMAC change')), [
        'added 10.244.2.0/24 fd00:10:244:2::/64 fc00::12 0e:00:00:00:60:22',
      ]);
      server.modifyNode('dual-b', (n) => (n.metadata.annotations![`${P}public-ipv6`] = 'fc00::22'));
      assert.deepEqual(show(await next('public-ipv6 change')), [
        'added 10.244.2.0/24 fd00:10:244:2::/64 fc00::22 0e:00:00:00:60:22',
      ]);
      server.deleteNode('dual-b');
      assert.deepEqual(show(await next('peer deleted')), [
        'removed 10.244.2.0/24 fd00:10:244:2::/64 fc00::22 0e:00:00:00:60:22',
      ]);
    } finally {
      ac.abort();
    }
  });

  it('rejects a v6 pod CIDR outside IPv6Network and a node without one, naming node and CIDR', async () => {
    server.addNode({ name: 'dual-out', podCIDRs: ['10.244.7.0/24', 'fd00:99::/64'] });
    const out = await make({ nodeName: 'dual-out' });
    await assert.rejects(
      out.acquireLease(dualAttrs(), stop.signal),
      (e: Error) =>
        e.message ===
        'subnet "fd00:10:244::/56" specified in the flannel net config doesn\'t contain "fd00:99::/64" PodCIDR of the "dual-out" node',
    );
    server.addNode({ name: 'v4-only', podCIDR: '10.244.8.0/24' });
    const v4 = await make({ nodeName: 'v4-only' });
    await assert.rejects(v4.acquireLease(dualAttrs(), stop.signal), /node "v4-only" ipv6 pod cidr not assigned/);
  });
});
