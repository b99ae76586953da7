// IPv6-only networks in the Kubernetes subnet manager against the in-process fake API server: the lease has only the
// v6 subnet, what the node publishes, previousBackendV6Data, and v6-only peers in the watch. HTTP on loopback only.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LeaseAttrs, LeaseEvent } from '../../src/subnet/lease.ts';
import { kubeDir, kubeSuite } from '../helpers/kube-api.ts';
import { within } from '../helpers/wait.ts';
import { leaseLines } from '../helpers/lease-events.ts';

const TOKEN = 'v6only-token-789';
const P = 'flannel.alpha.coreos.com/';
const MAC6 = '0e:00:00:00:60:01';
// What the vxlan backend acquires with on an IPv6-only network: PublicIP 0.0.0.0 and no BackendData.
const v6Attrs = (mac6 = MAC6): LeaseAttrs => ({
  publicIP: '0.0.0.0',
  publicIPv6: 'fc00::11',
  backendType: 'vxlan',
  backendV6Data: { VNI: 1, VtepMAC: mac6 },
});
const peerAnnotations = {
  [`${P}kube-subnet-manager`]: 'true',
  [`${P}backend-type`]: 'vxlan',
  [`${P}backend-data`]: 'null',
  [`${P}public-ip`]: '0.0.0.0',
  [`${P}backend-v6-data`]: '{"VNI":1,"VtepMAC":"0e:00:00:00:60:02"}',
  [`${P}public-ipv6`]: 'fc00::12',
};

const kd = kubeDir(
  'kube-v6only-',
  '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"vxlan"}}',
);

const show = (evs: LeaseEvent[]) => leaseLines(evs, ['subnet', 'ipv6Subnet', 'publicIP', 'publicIPv6', 'vtepMacV6']);

describe('KubeSubnetManager on an IPv6-only network', () => {
  const { server, stop, make } = kubeSuite(kd, {
    token: TOKEN,
    nodeName: 'v6-a',
    setNodeNetworkUnavailable: false,
    nodes: [
      { name: 'v6-a', podCIDRs: ['fd00:10:244:1::/64'] },
      { name: 'v6-b', podCIDRs: ['fd00:10:244:2::/64'], annotations: peerAnnotations },
    ],
  });
  after(() => kd.remove());

  it('acquires a lease with only the v6 subnet and publishes public-ip 0.0.0.0, backend-data null and the v6 pair', async () => {
    const m = await make();
    assert.equal(m.previousBackendV6Data(), undefined, 'nothing published before the first run');
    const lease = await m.acquireLease(v6Attrs(), stop.signal);
    assert.equal('subnet' in lease, false);
    assert.equal(lease.ipv6Subnet?.toString(), 'fd00:10:244:1::/64');
    assert.deepEqual(lease.attrs, v6Attrs());
    assert.deepEqual(server.getNode('v6-a')!.metadata.annotations, {
      [`${P}backend-data`]: 'null',
      [`${P}backend-type`]: 'vxlan',
      [`${P}kube-subnet-manager`]: 'true',
      [`${P}public-ip`]: '0.0.0.0',
      [`${P}backend-v6-data`]: `{"VNI":1,"VtepMAC":"${MAC6}"}`,
      [`${P}public-ipv6`]: 'fc00::11',
    });
  });

  it('previousBackendV6Data returns the backend-v6-data annotation the node had at start, parsed', async () => {
    const m = await make();
    assert.deepEqual(m.previousBackendV6Data(), { VNI: 1, VtepMAC: MAC6 });
    // backend-data is JSON null on an IPv6-only node: nothing to reuse for flannel.1.
    assert.equal(m.previousBackendData(), null);
    // Read once at start: a later change is not seen by this manager, but by the next one.
    server.modifyNode(
      'v6-a',
      (n) => (n.metadata.annotations![`${P}backend-v6-data`] = '{"VNI":1,"VtepMAC":"0e:00:00:00:60:99"}'),
    );
    assert.deepEqual(m.previousBackendV6Data(), { VNI: 1, VtepMAC: MAC6 });
    assert.deepEqual((await make()).previousBackendV6Data(), { VNI: 1, VtepMAC: '0e:00:00:00:60:99' });
    // Text that is not JSON is no previous data (and no crash).
    server.modifyNode('v6-a', (n) => (n.metadata.annotations![`${P}backend-v6-data`] = '{not json'));
    assert.equal((await make()).previousBackendV6Data(), undefined);
    await (await make()).acquireLease(v6Attrs(), stop.signal);
    assert.deepEqual((await make()).previousBackendV6Data(), { VNI: 1, VtepMAC: MAC6 });
  });

  it('reports v6-only peers: added, pod CIDR change as removed + added, annotation update, deletion', async () => {
    const m = await make();
    const own = await m.acquireLease(v6Attrs(), stop.signal);
    const ac = new AbortController();
    const it = m.watchLeases(own, ac.signal)[Symbol.asyncIterator]();
    const next = async (what: string) => (await within(2000, what, it.next())).value as LeaseEvent[];
    try {
      assert.deepEqual(show(await next('first batch')), [
        'added - fd00:10:244:2::/64 0.0.0.0 fc00::12 0e:00:00:00:60:02',
      ]);
      server.modifyNode('v6-b', (n) => {
        n.spec.podCIDR = 'fd00:10:244:9::/64';
        n.spec.podCIDRs = ['fd00:10:244:9::/64'];
      });
      assert.deepEqual(show(await next('v6 pod CIDR change')), [
        'removed - fd00:10:244:2::/64 0.0.0.0 fc00::12 0e:00:00:00:60:02',
        'added - fd00:10:244:9::/64 0.0.0.0 fc00::12 0e:00:00:00:60:02',
      ]);
      server.modifyNode(
        'v6-b',
        (n) => (n.metadata.annotations![`${P}backend-v6-data`] = '{"VNI":1,"VtepMAC":"0e:00:00:00:60:22"}'),
      );
      assert.deepEqual(show(await next('v6 VtepMAC change')), [
        'added - fd00:10:244:9::/64 0.0.0.0 fc00::12 0e:00:00:00:60:22',
      ]);
      // The own node's changes never show up; a peer without public-ipv6 stops being one.
      server.modifyNode(
        'v6-a',
        (n) => (n.metadata.annotations![`${P}backend-v6-data`] = '{"VNI":1,"VtepMAC":"0e:00:00:00:60:77"}'),
      );
      server.modifyNode('v6-b', (n) => delete n.metadata.annotations![`${P}public-ipv6`]);
      assert.deepEqual(show(await next('public-ipv6 removed')), [
        'removed - fd00:10:244:9::/64 0.0.0.0 fc00::12 0e:00:00:00:60:22',
      ]);
      server.modifyNode('v6-b', (n) => (n.metadata.annotations![`${P}public-ipv6`] = 'fc00::12'));
      assert.deepEqual(show(await next('public-ipv6 back')), [
        'added - fd00:10:244:9::/64 0.0.0.0 fc00::12 0e:00:00:00:60:22',
      ]);
      server.deleteNode('v6-b');
      assert.deepEqual(show(await next('peer deleted')), [
        'removed - fd00:10:244:9::/64 0.0.0.0 fc00::12 0e:00:00:00:60:22',
      ]);
    } finally {
      ac.abort();
    }
  });

  it('refuses a node without an IPv6 pod CIDR, naming the node and the fix', async () => {
    server.addNode({ name: 'v4-node', podCIDRs: ['10.244.8.0/24'] });
    const m = await make({ nodeName: 'v4-node' });
    await assert.rejects(
      m.acquireLease(v6Attrs(), stop.signal),
      /node "v4-node" ipv6 pod cidr not assigned \(no IPv6 entry in \["10\.244\.8\.0\/24"\]; an IPv6-only network needs/,
    );
  });
});
