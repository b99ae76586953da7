// Pure parts of the Kubernetes subnet manager: annotation names, node → lease, the update rule, what gets
// published, pod CIDR checks, the event queue and the fake API server's patch semantics.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNetworkConfig } from '../../src/config/parse.ts';
import { annotationNames, normalizeAnnotationPrefix } from '../../src/subnet/kube/annotations.ts';
import { EventQueue, parseEventQueueDepth } from '../../src/subnet/kube/event-queue.ts';
import { nodeChangeEvents, nodeToLease, peerAnnotationsChanged } from '../../src/subnet/kube/node-lease.ts';
import type { KubeNode } from '../../src/subnet/kube/node.ts';
import { ownSubnets } from '../../src/subnet/kube/own-subnet.ts';
import { readNetConfig } from '../../src/subnet/kube/manager.ts';
import {
  annotationPatch,
  applyPublicIPOverwrite,
  desiredAnnotations,
  networkUnavailableCondition,
} from '../../src/subnet/kube/publish.ts';
import { applyPatch, PatchError } from '../../src/lab/kube-api/patch.ts';

const names = annotationNames();
const P = 'flannel.alpha.coreos.com/';

function node(name: string, annotations: Record<string, string>, podCIDRs: string[] = ['10.244.2.0/24']): KubeNode {
  return { metadata: { name, annotations }, spec: { podCIDR: podCIDRs[0], podCIDRs } };
}
const peer = (over: Record<string, string> = {}) =>
  node('b', {
    [`${P}kube-subnet-manager`]: 'true',
    [`${P}backend-type`]: 'vxlan',
    [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"12:c6:65:89:b4:e3"}',
    [`${P}public-ip`]: '192.168.1.12',
    ...over,
  });

describe('annotation prefix', () => {
  it('normalises like flannel: slash appended, dash after a path part', () => {
    assert.equal(normalizeAnnotationPrefix('flannel.alpha.coreos.com'), 'flannel.alpha.coreos.com/');
    assert.equal(normalizeAnnotationPrefix('example.com/team'), 'example.com/team-');
    assert.equal(normalizeAnnotationPrefix('example.com/team-'), 'example.com/team-');
    assert.equal(annotationNames('example.com/x').backendData, 'example.com/x-backend-data');
  });
  it('names every annotation of the spec with the default prefix', () => {
    assert.deepEqual(
      Object.values(names).sort(),
      [
        'backend-data',
        'backend-type',
        'backend-v6-data',
        'kube-subnet-manager',
        'node-public-ip',
        'node-public-ipv6',
        'public-ip',
        'public-ip-overwrite',
        'public-ipv6',
        'public-ipv6-overwrite',
      ].map((n) => P + n),
    );
  });
  it('rejects two slashes and non-fqdn prefixes with the spec messages', () => {
    assert.throws(
      () => normalizeAnnotationPrefix('a.com/b/c'),
      /subnet\/kube: prefix can contain at most single slash/,
    );
    assert.throws(
      () => normalizeAnnotationPrefix('nodots'),
      /subnet\/kube: prefix must be in a format: fqdn\/\[0-9a-z-_\]\*/,
    );
    assert.throws(() => normalizeAnnotationPrefix('Upper.com'), /must be in a format/);
  });
});

describe('node → lease', () => {
  it('takes subnet from the first IPv4 pod CIDR and attrs from the annotations (backend-data raw)', () => {
    const r = nodeToLease(peer({ [`${P}public-ipv6`]: 'fc00::2' }), names);
    assert.ok('lease' in r);
    assert.equal(r.lease.subnet!.toString(), '10.244.2.0/24');
    assert.deepEqual(r.lease.attrs, {
      publicIP: '192.168.1.12',
      publicIPv6: 'fc00::2',
      backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: '12:c6:65:89:b4:e3' },
    });
    assert.equal(r.lease.ipv6Subnet, undefined);
  });
  it('dual stack: v6 subnet from the IPv6 pod CIDR, PublicIPv6 and BackendV6Data from the annotations', () => {
    const v6data = '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"}';
    const n = {
      ...peer({ [`${P}public-ipv6`]: 'fc00::2', [`${P}backend-v6-data`]: v6data }),
      spec: { podCIDRs: ['fd00:1::/64', '10.244.7.0/24'] },
    };
    const r = nodeToLease(n, names);
    assert.ok('lease' in r);
    assert.deepEqual([r.lease.subnet!.toString(), r.lease.ipv6Subnet?.toString()], ['10.244.7.0/24', 'fd00:1::/64']);
    assert.deepEqual(r.lease.attrs, {
      publicIP: '192.168.1.12',
      publicIPv6: 'fc00::2',
      backendType: 'vxlan',
      backendData: { VNI: 1, VtepMAC: '12:c6:65:89:b4:e3' },
      backendV6Data: { VNI: 1, VtepMAC: 'aa:bb:cc:dd:ee:01' },
    });
    const bad6 = nodeToLease({ ...peer(), spec: { podCIDRs: ['10.244.7.0/24', 'fd00::zz/64'] } }, names);
    assert.ok('skip' in bad6 && /invalid IPv6 pod CIDR "fd00::zz\/64"/.test(bad6.skip));
    assert.ok('skip' in nodeToLease(peer({ [`${P}public-ipv6`]: '10.0.0.1' }), names));
    assert.ok('skip' in nodeToLease(peer({ [`${P}backend-v6-data`]: '{bad' }), names));
  });
  it('skips nodes flannel does not manage or whose annotations do not parse', () => {
    assert.ok('skip' in nodeToLease(peer({ [`${P}kube-subnet-manager`]: 'false' }), names));
    assert.ok('skip' in nodeToLease(peer({ [`${P}public-ip`]: 'nope' }), names));
    assert.ok('skip' in nodeToLease(peer({ [`${P}backend-data`]: '{bad' }), names));
    assert.ok('skip' in nodeToLease(node('c', peer().metadata.annotations!, []), names));
  });
  it('reports an update when v4 annotations change even if the v6 ones did not (no dual-stack quirk)', () => {
    const v6 = { [`${P}public-ipv6`]: 'fc00::2', [`${P}backend-v6-data`]: '{"VNI":1,"VtepMAC":"aa:aa:aa:aa:aa:aa"}' };
    const old = peer(v6);
    assert.equal(peerAnnotationsChanged(old, peer({ ...v6, [`${P}public-ip`]: '192.168.1.99' }), names), true);
    assert.equal(peerAnnotationsChanged(old, peer({ ...v6, [`${P}public-ipv6`]: 'fc00::9' }), names), true);
    assert.equal(peerAnnotationsChanged(old, peer({ ...v6, 'other/x': 'y' }), names), false);
  });
  it('turns node changes into lease events', () => {
    assert.deepEqual(
      nodeChangeEvents(undefined, peer(), names).map((e) => e.type),
      ['added'],
    );
    assert.deepEqual(
      nodeChangeEvents(peer(), undefined, names).map((e) => e.type),
      ['removed'],
    );
    assert.deepEqual(nodeChangeEvents(peer(), peer({ unrelated: 'x' }), names), []);
    const mac = nodeChangeEvents(
      peer(),
      peer({ [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"12:00:00:00:00:01"}' }),
      names,
    );
    assert.deepEqual(
      mac.map((e) => [e.type, (e.lease.attrs.backendData as { VtepMAC: string }).VtepMAC]),
      [['added', '12:00:00:00:00:01']],
    );
    const moved = nodeChangeEvents(peer(), { ...peer(), spec: { podCIDR: '10.244.9.0/24' } }, names);
    assert.deepEqual(
      moved.map((e) => `${e.type} ${e.lease.subnet}`),
      ['removed 10.244.2.0/24', 'added 10.244.9.0/24'],
    );
    assert.deepEqual(
      nodeChangeEvents(peer(), peer({ [`${P}kube-subnet-manager`]: '' }), names).map((e) => e.type),
      ['removed'],
    );
  });
  it('dual stack: a v6 annotation change is an update, a new v6 pod CIDR replaces the lease', () => {
    const dualPeer = (over: Record<string, string> = {}, v6cidr = 'fd00:2::/64') => ({
      ...peer({
        [`${P}public-ipv6`]: 'fc00::2',
        [`${P}backend-v6-data`]: '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"}',
        ...over,
      }),
      spec: { podCIDRs: ['10.244.2.0/24', v6cidr] },
    });
    const mac = nodeChangeEvents(
      dualPeer(),
      dualPeer({ [`${P}backend-v6-data`]: '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:02"}' }),
      names,
    );
    assert.deepEqual(
      mac.map((e) => [e.type, (e.lease.attrs.backendV6Data as { VtepMAC: string }).VtepMAC]),
      [['added', 'aa:bb:cc:dd:ee:02']],
    );
    const ip6 = nodeChangeEvents(dualPeer(), dualPeer({ [`${P}public-ipv6`]: 'fc00::9' }), names);
    assert.deepEqual(
      ip6.map((e) => [e.type, e.lease.attrs.publicIPv6]),
      [['added', 'fc00::9']],
    );
    const moved = nodeChangeEvents(dualPeer(), dualPeer({}, 'fd00:9::/64'), names);
    assert.deepEqual(
      moved.map((e) => `${e.type} ${e.lease.subnet} ${e.lease.ipv6Subnet}`),
      ['removed 10.244.2.0/24 fd00:2::/64', 'added 10.244.2.0/24 fd00:9::/64'],
    );
    assert.deepEqual(nodeChangeEvents(dualPeer(), dualPeer(), names), []);
  });
});

describe('node → lease, IPv6-only nodes', () => {
  const v6data = '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:02"}';
  // What an IPv6-only vxlan node publishes: backend-data null, public-ip 0.0.0.0, the v6 pair.
  const v6Peer = (over: Record<string, string | undefined> = {}, cidr = 'fd00:10:244:2::/64'): KubeNode => {
    const annotations: Record<string, string> = {
      [`${P}kube-subnet-manager`]: 'true',
      [`${P}backend-type`]: 'vxlan',
      [`${P}backend-data`]: 'null',
      [`${P}public-ip`]: '0.0.0.0',
      [`${P}public-ipv6`]: 'fc00::12',
      [`${P}backend-v6-data`]: v6data,
    };
    for (const [k, v] of Object.entries(over)) {
      if (v === undefined) delete annotations[k];
      else annotations[k] = v;
    }
    return node('b6', annotations, [cidr]);
  };

  it('becomes a lease with only ipv6Subnet, PublicIP 0.0.0.0 and the v6 attrs', () => {
    const r = nodeToLease(v6Peer(), names);
    assert.ok('lease' in r, JSON.stringify(r));
    assert.equal('subnet' in r.lease, false, 'no subnet member at all');
    assert.equal(r.lease.ipv6Subnet?.toString(), 'fd00:10:244:2::/64');
    assert.deepEqual(r.lease.attrs, {
      publicIP: '0.0.0.0',
      publicIPv6: 'fc00::12',
      backendType: 'vxlan',
      backendData: null,
      backendV6Data: { VNI: 1, VtepMAC: 'aa:bb:cc:dd:ee:02' },
    });
    assert.equal(r.lease.expiration, null);
  });

  it('takes PublicIP 0.0.0.0 when the public-ip annotation is absent', () => {
    const r = nodeToLease(v6Peer({ [`${P}public-ip`]: undefined }), names);
    assert.ok('lease' in r, JSON.stringify(r));
    assert.equal(r.lease.attrs.publicIP, '0.0.0.0');
    assert.equal(r.lease.attrs.publicIPv6, 'fc00::12');
    assert.equal(r.lease.subnet, undefined);
    // A node with an IPv4 pod CIDR still needs its public-ip.
    const v4Node = peer();
    delete v4Node.metadata.annotations![`${P}public-ip`];
    assert.deepEqual(nodeToLease(v4Node, names), { skip: `bad ${P}public-ip null` });
  });

  it('is skipped without public-ipv6, with the reason', () => {
    assert.deepEqual(nodeToLease(v6Peer({ [`${P}public-ipv6`]: undefined }), names), {
      skip: `IPv6-only node without ${P}public-ipv6`,
    });
    assert.deepEqual(nodeToLease(v6Peer({ [`${P}public-ipv6`]: '10.0.0.1' }), names), {
      skip: `bad ${P}public-ipv6 "10.0.0.1"`,
    });
    assert.deepEqual(nodeToLease(node('n', v6Peer().metadata.annotations!, []), names), {
      skip: 'no pod CIDR (podCIDRs [])',
    });
  });

  it('a new v6 pod CIDR removes the old lease and adds the new one; an annotation change is an update', () => {
    const moved = nodeChangeEvents(v6Peer(), v6Peer({}, 'fd00:10:244:9::/64'), names);
    assert.deepEqual(
      moved.map((e) => `${e.type} ${e.lease.subnet ?? '-'} ${e.lease.ipv6Subnet}`),
      ['removed - fd00:10:244:2::/64', 'added - fd00:10:244:9::/64'],
    );
    const mac = nodeChangeEvents(
      v6Peer(),
      v6Peer({ [`${P}backend-v6-data`]: '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:22"}' }),
      names,
    );
    assert.deepEqual(
      mac.map((e) => [e.type, (e.lease.attrs.backendV6Data as { VtepMAC: string }).VtepMAC]),
      [['added', 'aa:bb:cc:dd:ee:22']],
    );
    assert.deepEqual(nodeChangeEvents(v6Peer(), v6Peer(), names), []);
    // Losing public-ipv6 makes it no peer any more.
    const gone = nodeChangeEvents(v6Peer(), v6Peer({ [`${P}public-ipv6`]: undefined }), names);
    assert.deepEqual(
      gone.map((e) => `${e.type} ${e.lease.ipv6Subnet}`),
      ['removed fd00:10:244:2::/64'],
    );
  });
});

describe('publishing', () => {
  const attrs = {
    publicIP: '192.168.1.11',
    publicIPv6: null,
    backendType: 'vxlan',
    backendData: { VNI: 1, VtepMAC: '12:c6:65:89:b4:e3' },
  };
  it('wants exactly the spec annotations with backend-data as JSON text', () => {
    assert.deepEqual(desiredAnnotations(attrs, names), {
      [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"12:c6:65:89:b4:e3"}',
      [`${P}backend-type`]: 'vxlan',
      [`${P}kube-subnet-manager`]: 'true',
      [`${P}public-ip`]: '192.168.1.11',
    });
    assert.equal(
      desiredAnnotations({ publicIP: '1.2.3.4', publicIPv6: null, backendType: 'host-gw' }, names)[`${P}backend-data`],
      'null',
    );
  });
  it('patches only what differs, and nothing when all match', () => {
    const want = desiredAnnotations(attrs, names);
    assert.equal(annotationPatch({ ...want, other: 'x' }, want), null);
    assert.deepEqual(annotationPatch({ ...want, [`${P}public-ip`]: '9.9.9.9' }, want), {
      [`${P}public-ip`]: '192.168.1.11',
    });
  });
  it('dual stack: publishes backend-v6-data and public-ipv6 with the exact JSON text', () => {
    const v6 = { ...attrs, publicIPv6: 'fc00::11', backendV6Data: { VNI: 1, VtepMAC: 'aa:bb:cc:dd:ee:01' } };
    assert.deepEqual(desiredAnnotations(v6, names), {
      [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"12:c6:65:89:b4:e3"}',
      [`${P}backend-type`]: 'vxlan',
      [`${P}kube-subnet-manager`]: 'true',
      [`${P}public-ip`]: '192.168.1.11',
      [`${P}backend-v6-data`]: '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"}',
      [`${P}public-ipv6`]: 'fc00::11',
    });
    // host-gw has no backend data in either family: Go writes its nil RawMessage as null.
    const hg = desiredAnnotations({ publicIP: '1.2.3.4', publicIPv6: 'fc00::4', backendType: 'host-gw' }, names);
    assert.deepEqual([hg[`${P}backend-v6-data`], hg[`${P}public-ipv6`]], ['null', 'fc00::4']);
    const o = applyPublicIPOverwrite(v6, { [`${P}public-ipv6-overwrite`]: 'fc00::99' }, names);
    assert.equal(o.attrs.publicIPv6, 'fc00::99');
    assert.deepEqual(o.notes, [
      `Overriding public ipv6 with 'fc00::99' from node annotation '${P}public-ipv6-overwrite'`,
    ]);
  });
  it('applies public-ip-overwrite and refuses a bad one', () => {
    const o = applyPublicIPOverwrite(attrs, { [`${P}public-ip-overwrite`]: '203.0.113.5' }, names);
    assert.equal(o.attrs.publicIP, '203.0.113.5');
    assert.deepEqual(o.notes, [
      `Overriding public ip with '203.0.113.5' from node annotation '${P}public-ip-overwrite'`,
    ]);
    assert.throws(
      () => applyPublicIPOverwrite(attrs, { [`${P}public-ip-overwrite`]: 'x' }, names),
      /public-ip-overwrite "x" is not an IPv4/,
    );
  });
  it('builds the NetworkUnavailable condition with the spec fields', () => {
    const c = networkUnavailableCondition(new Date('2024-05-06T07:08:09.123Z'));
    assert.equal(
      JSON.stringify(c),
      '{"type":"NetworkUnavailable","status":"False","lastHeartbeatTime":"2024-05-06T07:08:09Z","lastTransitionTime":"2024-05-06T07:08:09Z","reason":"FlannelIsUp","message":"Flannel is running on this node"}',
    );
  });
});

describe('own subnet from podCIDR(s)', () => {
  const config = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}', { validate: false });
  it('uses the IPv4 pod CIDR and leaves the IPv6 one out without EnableIPv6', () => {
    assert.equal(ownSubnets(node('a', {}, ['10.244.3.0/24']), config).v4?.toString(), '10.244.3.0/24');
    const d = ownSubnets(node('a', {}, ['fd00::/64', '10.244.4.0/24']), config);
    assert.deepEqual([d.v4?.toString(), d.v6], ['10.244.4.0/24', undefined]);
  });
  const dual = parseNetworkConfig(
    '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"vxlan"}}',
    { validate: false },
  );
  it('dual stack: the IPv4 entry is the v4 subnet and the IPv6 entry the v6 subnet, in either order', () => {
    for (const cidrs of [
      ['10.244.4.0/24', 'fd00:10:244:4::/64'],
      ['fd00:10:244:4::/64', '10.244.4.0/24'],
    ]) {
      const d = ownSubnets(node('a', {}, cidrs), dual);
      assert.deepEqual([d.v4?.toString(), d.v6?.toString()], ['10.244.4.0/24', 'fd00:10:244:4::/64']);
    }
  });
  it('dual stack: fails with the spec messages for v6', () => {
    assert.throws(
      () => ownSubnets(node('a', {}, ['10.244.4.0/24', 'fd00:99::/64']), dual),
      (e: Error) =>
        e.message ===
        'subnet "fd00:10:244::/56" specified in the flannel net config doesn\'t contain "fd00:99::/64" PodCIDR of the "a" node',
    );
    assert.throws(
      () => ownSubnets(node('a', {}, ['10.244.4.0/24']), dual),
      /node "a" ipv6 pod cidr not assigned \(no IPv6 entry in \["10\.244\.4\.0\/24"\]/,
    );
    assert.throws(
      () => ownSubnets(node('a', {}, ['10.244.4.0/24', '10.244.5.0/24']), dual),
      /pod cidrs should be IPv4\/IPv6 only or dualstack/,
    );
    assert.throws(
      () => ownSubnets(node('a', {}, ['fd00:10:244:1::/64', 'fd00:10:244:2::/64']), dual),
      /pod cidrs should be IPv4\/IPv6 only or dualstack/,
    );
    assert.throws(
      () => ownSubnets(node('a', {}, ['10.244.4.0/24', 'fd00::zz/64']), dual),
      /node "a" has an invalid IPv6 pod CIDR "fd00::zz\/64"/,
    );
    const noNet = parseNetworkConfig('{"Network":"10.244.0.0/16","EnableIPv6":true,"Backend":{"Type":"vxlan"}}', {
      validate: false,
    });
    assert.throws(
      () => ownSubnets(node('a', {}, ['10.244.4.0/24', 'fd00::/64']), noNet),
      /EnableIPv6 but no IPv6Network: set "IPv6Network"/,
    );
  });
  it('fails with the spec messages', () => {
    assert.throws(() => ownSubnets(node('a', {}, []), config), /node "a" pod cidr not assigned/);
    assert.throws(
      () => ownSubnets(node('a', {}, ['10.244.1.0/24', 'fd00::/64', '10.9.0.0/24']), config),
      /pod cidrs should be IPv4\/IPv6 only or dualstack/,
    );
    assert.throws(
      () => ownSubnets(node('a', {}, ['10.9.1.0/24']), config),
      /subnet "10\.244\.0\.0\/16" specified in the flannel net config doesn't contain "10\.9\.1\.0\/24" PodCIDR of the "a" node/,
    );
  });
});

describe('own subnet from podCIDR(s), IPv6-only', () => {
  const only6 = parseNetworkConfig(
    '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"vxlan"}}',
    { validate: false },
  );
  it('takes only the v6 pod CIDR, also when the node has an IPv4 one', () => {
    const one = ownSubnets(node('a', {}, ['fd00:10:244:3::/64']), only6);
    assert.deepEqual(Object.keys(one), ['v6']);
    assert.equal(one.v6?.toString(), 'fd00:10:244:3::/64');
    for (const cidrs of [
      ['10.244.4.0/24', 'fd00:10:244:4::/64'],
      ['fd00:10:244:4::/64', '10.244.4.0/24'],
    ]) {
      const d = ownSubnets(node('a', {}, cidrs), only6);
      assert.deepEqual([d.v4, d.v6?.toString()], [undefined, 'fd00:10:244:4::/64']);
    }
  });
  it('fails when the node has no IPv6 pod CIDR, or one outside IPv6Network', () => {
    assert.throws(
      () => ownSubnets(node('a', {}, ['10.244.4.0/24']), only6),
      (e: Error) =>
        e.message ===
        'node "a" ipv6 pod cidr not assigned (no IPv6 entry in ["10.244.4.0/24"]; an IPv6-only network needs a controller manager ' +
          'that gives nodes an IPv6 pod CIDR, e.g. --cluster-cidr=fd00:10:244::/56)',
    );
    assert.throws(() => ownSubnets(node('a', {}, []), only6), /node "a" pod cidr not assigned/);
    assert.throws(
      () => ownSubnets(node('a', {}, ['fd00:99::/64']), only6),
      (e: Error) =>
        e.message ===
        'subnet "fd00:10:244::/56" specified in the flannel net config doesn\'t contain "fd00:99::/64" PodCIDR of the "a" node',
    );
  });
});

describe('event queue', () => {
  it('parses EVENT_QUEUE_DEPTH', () => {
    assert.equal(parseEventQueueDepth(undefined), 5000);
    assert.equal(parseEventQueueDepth('12'), 12);
    assert.throws(() => parseEventQueueDepth('0'), /EVENT_QUEUE_DEPTH "0" is invalid/);
    assert.throws(() => parseEventQueueDepth('x'), /EVENT_QUEUE_DEPTH/);
  });
  it('hands out at most depth items per batch and keeps the rest in order', async () => {
    const q = new EventQueue<number>(3);
    for (let i = 1; i <= 7; i++) q.push(i);
    assert.equal(q.size, 3);
    assert.equal(q.waiting, 4);
    const signal = new AbortController().signal;
    assert.deepEqual(await q.take(signal), [1, 2, 3]);
    assert.deepEqual(await q.take(signal), [4, 5, 6]);
    assert.deepEqual(await q.take(signal), [7]);
    q.close();
  });
  it('take waits for a push and stops on abort', async () => {
    const q = new EventQueue<string>(2);
    const ac = new AbortController();
    const got = q.take(ac.signal);
    setTimeout(() => q.push('x'), 10);
    assert.deepEqual(await got, ['x']);
    const pending = q.take(ac.signal);
    ac.abort();
    await assert.rejects(pending);
  });
});

describe('fake API server patch semantics', () => {
  const base = {
    metadata: { name: 'n', uid: 'u', annotations: { a: '1', b: '2' } },
    spec: { podCIDR: '10.0.0.0/24' },
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  };
  it('strategic merge: annotation map merge with null deleting, conditions merged by type', () => {
    const out = applyPatch(
      base,
      {
        metadata: { annotations: { a: null, c: '3' } },
        status: { conditions: [{ type: 'NetworkUnavailable', status: 'False' }] },
      },
      'strategic',
      'status',
    );
    assert.deepEqual(out.metadata.annotations, { b: '2', c: '3' });
    assert.deepEqual(out.status.conditions, [
      { type: 'Ready', status: 'True' },
      { type: 'NetworkUnavailable', status: 'False' },
    ]);
  });
  it('merge patch replaces lists; the status subresource keeps spec, the main resource keeps status', () => {
    const out = applyPatch(
      base,
      { spec: { podCIDR: 'x' }, status: { conditions: [{ type: 'X', status: 'Y' }] } },
      'merge',
      'status',
    );
    assert.deepEqual(out.status.conditions, [{ type: 'X', status: 'Y' }]);
    assert.equal(out.spec.podCIDR, '10.0.0.0/24');
    const main = applyPatch(base, { status: { conditions: [] } }, 'merge', '');
    assert.deepEqual(main.status, base.status);
  });
  it('rejects non-string annotations and renames', () => {
    assert.throws(() => applyPatch(base, { metadata: { annotations: { a: 1 } } }, 'merge', ''), PatchError);
    assert.throws(() => applyPatch(base, { metadata: { name: 'other' } }, 'merge', ''), PatchError);
  });
});

describe('reading net-conf.json (--net-config-path)', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kube-netconf-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const write = (text: string) => {
    const path = join(dir, 'net-conf.json');
    writeFileSync(path, text);
    return path;
  };

  it('parses the file without the etcd defaults', async () => {
    const c = await readNetConfig(write('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'));
    assert.equal(c.network?.toString(), '10.244.0.0/16');
    assert.equal(c.subnetLen, 0);
  });

  it('names the file in a parse error, after flannel\'s "error parsing subnet config"', async () => {
    const path = write('{"Network":"fd00::/64"}');
    await assert.rejects(readNetConfig(path), (e: Error) => {
      assert.equal(e.message, `error parsing subnet config: ${path}: invalid IPv4 CIDR format`);
      return true;
    });
    const none = write('{"EnableIPv4":false}');
    await assert.rejects(readNetConfig(none), (e: Error) => {
      assert.equal(
        e.message,
        `error parsing subnet config: ${none}: network config: none defined stack: EnableIPv4 and EnableIPv6 are both false; ` +
          'enable at least one (with Network / IPv6Network)',
      );
      return true;
    });
  });

  it('names the file and the flag when it cannot be read', async () => {
    const path = join(dir, 'nope.json');
    await assert.rejects(readNetConfig(path), (e: Error) => {
      assert.equal(
        e.message,
        `failed to read net conf: ENOENT: no such file or directory, open '${path}' (--net-config-path ${path}; the DaemonSet mounts ConfigMap kube-flannel-cfg there)`,
      );
      return true;
    });
  });
});
