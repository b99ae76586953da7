// The fake API server's rules for new nodes and pod CIDR updates (src/lab/kube-api/node-create.ts); pure.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  NodeCreateError,
  normalizePodCIDRs,
  podCIDRChange,
  validateNewNode,
} from '../../src/lab/kube-api/node-create.ts';

function refused(body: unknown): NodeCreateError {
  try {
    validateNewNode(body);
  } catch (e) {
    assert.ok(e instanceof NodeCreateError, String(e));
    return e;
  }
  assert.fail(`accepted ${JSON.stringify(body)}`);
}

describe('fake API server: new nodes', () => {
  it('keeps metadata, spec and status; fills podCIDRs from podCIDR; drops client-set uid and creationTimestamp', () => {
    const n = validateNewNode({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: 'peer-1',
        uid: 'mine',
        creationTimestamp: '2000-01-01T00:00:00Z',
        annotations: { a: '1' },
        labels: { l: 'x' },
      },
      spec: { podCIDR: '10.244.9.0/24' },
      status: { addresses: [{ type: 'InternalIP', address: '192.168.1.9' }] },
    });
    assert.equal(n.metadata.name, 'peer-1');
    assert.equal(n.metadata.uid, '');
    assert.equal(n.metadata.creationTimestamp, '');
    assert.deepEqual(n.metadata.annotations, { a: '1' });
    assert.deepEqual(n.metadata.labels, { l: 'x' });
    assert.deepEqual(n.spec, { podCIDR: '10.244.9.0/24', podCIDRs: ['10.244.9.0/24'] });
    assert.deepEqual(n.status, { addresses: [{ type: 'InternalIP', address: '192.168.1.9' }] });
    // podCIDRs alone sets podCIDR to its first entry.
    assert.deepEqual(
      validateNewNode({ metadata: { name: 'p' }, spec: { podCIDRs: ['10.244.3.0/24', 'fd00:1::/64'] } }).spec.podCIDR,
      '10.244.3.0/24',
    );
  });

  it('refuses what the real server refuses, with its status code', () => {
    assert.equal(refused([]).code, 400);
    assert.equal(refused({ kind: 'Pod', metadata: { name: 'x' } }).code, 400);
    assert.match(refused({ apiVersion: 'v2', metadata: { name: 'x' } }).message, /expected API version \(v1\)/);
    assert.match(refused({ metadata: {} }).message, /metadata\.name: Required value/);
    const bad = refused({ metadata: { name: 'Bad_Name' } });
    assert.equal(bad.code, 422);
    assert.match(bad.message, /^Node "Bad_Name" is invalid: metadata\.name: Invalid value/);
    assert.equal(refused({ metadata: { name: 'x', resourceVersion: '5' } }).code, 500);
    assert.match(
      refused({ metadata: { name: 'x', annotations: { a: 1 } } }).message,
      /metadata\.annotations\.a: Invalid value: must be a string/,
    );
    assert.match(
      refused({ metadata: { name: 'x' }, spec: { podCIDR: '10.244.1.0' } }).message,
      /spec\.podCIDR: Invalid value: "10\.244\.1\.0"/,
    );
    assert.match(
      refused({ metadata: { name: 'x' }, spec: { podCIDR: '10.1.0.0/24', podCIDRs: ['10.2.0.0/24'] } }).message,
      /must match spec\.podCIDR/,
    );
    assert.match(
      refused({ metadata: { name: 'x' }, spec: { podCIDRs: ['10.1.0.0/24', '10.2.0.0/24'] } }).message,
      /one CIDR for each IP family/,
    );
  });
});

describe('fake API server: pod CIDR updates', () => {
  it('allows "" → CIDR and no change; forbids changing a set podCIDR', () => {
    const spec = { podCIDR: '10.244.1.0/24' };
    assert.equal(normalizePodCIDRs(spec), null);
    assert.equal(podCIDRChange({}, spec), null);
    assert.equal(podCIDRChange(spec, { ...spec }), null);
    const moved = { podCIDR: '10.244.2.0/24' };
    normalizePodCIDRs(moved);
    assert.match(podCIDRChange(spec, moved)!, /Forbidden: node updates may not change podCIDR/);
  });
});
