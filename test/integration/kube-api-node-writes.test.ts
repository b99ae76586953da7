// The fake API server's node write calls over HTTP (POST, PATCH on the main resource, DELETE): status codes, bodies,
// what is stored and the watch events they cause. No root needed: HTTP on loopback.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KubeApiServer } from '../../src/lab/kube-api/server.ts';
import { watchEvents } from '../helpers/kube-api.ts';

const TOKEN = 'node-writes-token';
const auth = { Authorization: `Bearer ${TOKEN}` };
const json = { ...auth, 'Content-Type': 'application/json' };

describe('fake Kubernetes API server: node create, patch and delete', () => {
  const server = new KubeApiServer({ token: TOKEN });
  let url = '';
  before(async () => {
    url = await server.listen(0, '127.0.0.1');
  });
  after(() => server.close());

  const post = (body: unknown, headers: Record<string, string> = json) =>
    fetch(`${url}/api/v1/nodes`, { method: 'POST', headers, body: JSON.stringify(body) });
  const patch = (name: string, body: unknown, type = 'application/merge-patch+json') =>
    fetch(`${url}/api/v1/nodes/${name}`, {
      method: 'PATCH',
      headers: { ...auth, 'Content-Type': type },
      body: JSON.stringify(body),
    });
  const del = (name: string, body?: unknown, headers: Record<string, string> = json) =>
    fetch(`${url}/api/v1/nodes/${name}`, {
      method: 'DELETE',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  /** Opens a watch from the current resourceVersion and returns a reader of its events. */
  async function watch() {
    const ac = new AbortController();
    const res = await fetch(`${url}/api/v1/nodes?watch=true&resourceVersion=${server.resourceVersion}`, {
      headers: auth,
      signal: ac.signal,
    });
    return { events: watchEvents(res), close: () => ac.abort() };
  }

  it('refuses every write without the bearer token', async () => {
    assert.equal((await post({ metadata: { name: 'x' } }, { 'Content-Type': 'application/json' })).status, 401);
    server.addNode({ name: 'keep' });
    assert.equal((await del('keep', undefined, {})).status, 401);
    assert.equal(
      (
        await fetch(`${url}/api/v1/nodes/keep`, {
          method: 'PATCH',
          headers: { 'Content-Type': 'application/merge-patch+json' },
          body: '{}',
        })
      ).status,
      401,
    );
    assert.ok(server.getNode('keep'));
    assert.equal(server.getNode('x'), undefined);
  });

  it('POST creates a node (201, server-set uid and resourceVersion, ADDED event) and 409s a second one', async () => {
    const w = await watch();
    const res = await post({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'peer', annotations: { a: '1' } },
      spec: { podCIDR: '10.244.7.0/24' },
    });
    assert.equal(res.status, 201);
    const created = (await res.json()) as any;
    assert.equal(created.metadata.name, 'peer');
    assert.match(created.metadata.uid, /^uid-\d+$/);
    assert.equal(created.metadata.resourceVersion, server.resourceVersion);
    assert.deepEqual(created.spec, { podCIDR: '10.244.7.0/24', podCIDRs: ['10.244.7.0/24'] });
    assert.deepEqual(server.getNode('peer'), created);
    const [ev] = await w.events(1);
    w.close();
    assert.deepEqual(
      [ev.type, ev.object.metadata.name, ev.object.metadata.resourceVersion],
      ['ADDED', 'peer', created.metadata.resourceVersion],
    );

    const again = await post({ metadata: { name: 'peer' } });
    assert.equal(again.status, 409);
    const st = (await again.json()) as any;
    assert.deepEqual(
      [st.kind, st.status, st.reason, st.message, st.details],
      ['Status', 'Failure', 'AlreadyExists', 'nodes "peer" already exists', { name: 'peer', kind: 'nodes' }],
    );
    assert.deepEqual(server.getNode('peer')!.metadata.annotations, { a: '1' });
  });

  it('POST refuses bad bodies with the real codes and stores nothing', async () => {
    const before = server.resourceVersion;
    assert.equal((await post({ metadata: { name: 'Upper' } })).status, 422);
    assert.equal((await post({ metadata: { name: 'x' }, spec: { podCIDR: 'nope' } })).status, 422);
    assert.equal((await post({ kind: 'Pod', metadata: { name: 'x' } })).status, 400);
    assert.equal((await fetch(`${url}/api/v1/nodes`, { method: 'POST', headers: json, body: '{' })).status, 400);
    assert.equal((await post({ metadata: { name: 'x' } }, { ...auth, 'Content-Type': 'text/plain' })).status, 415);
    assert.equal(server.resourceVersion, before);
    assert.equal(server.getNode('x'), undefined);
  });

  it('PATCH on the main resource merges (merge and strategic), ignores status, refuses a podCIDR change', async () => {
    server.modifyNode('peer', (n) => (n.status = { conditions: [{ type: 'Ready', status: 'True' }] }));
    const w = await watch();
    const res = await patch('peer', { metadata: { annotations: { a: null, b: '2' } }, status: { conditions: [] } });
    assert.equal(res.status, 200);
    const out = (await res.json()) as any;
    assert.deepEqual(out.metadata.annotations, { b: '2' });
    assert.deepEqual(out.status, { conditions: [{ type: 'Ready', status: 'True' }] });
    const [ev] = await w.events(1);
    w.close();
    assert.deepEqual([ev.type, ev.object.metadata.annotations], ['MODIFIED', { b: '2' }]);
    const sm = await patch(
      'peer',
      { metadata: { labels: { role: 'peer' } } },
      'application/strategic-merge-patch+json',
    );
    assert.equal(sm.status, 200);
    assert.deepEqual(server.getNode('peer')!.metadata.labels, { role: 'peer' });
    assert.deepEqual(server.getNode('peer')!.metadata.annotations, { b: '2' });
    const moved = await patch('peer', { spec: { podCIDR: '10.244.8.0/24', podCIDRs: ['10.244.8.0/24'] } });
    assert.equal(moved.status, 422);
    assert.match(((await moved.json()) as any).message, /node updates may not change podCIDR/);
    assert.equal(server.getNode('peer')!.spec.podCIDR, '10.244.7.0/24');
    assert.equal((await patch('ghost', { metadata: { labels: { a: 'b' } } })).status, 404);
  });

  it('DELETE answers a Success Status naming the node, sends DELETED, checks preconditions and 404s unknown nodes', async () => {
    const uid = server.getNode('peer')!.metadata.uid;
    const stale = await del('peer', { preconditions: { resourceVersion: '1' } });
    assert.equal(stale.status, 409);
    const wrongUid = await del('peer', { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: 'uid-0' } });
    assert.equal(wrongUid.status, 409);
    assert.ok(server.getNode('peer'));

    const w = await watch();
    const res = await del('peer', { preconditions: { uid } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name: 'peer', kind: 'nodes', uid },
    });
    assert.equal(server.getNode('peer'), undefined);
    const [ev] = await w.events(1);
    w.close();
    assert.deepEqual(
      [ev.type, ev.object.metadata.name, ev.object.metadata.uid, ev.object.metadata.resourceVersion],
      ['DELETED', 'peer', uid, server.resourceVersion],
    );
    assert.equal((await fetch(`${url}/api/v1/nodes/peer`, { headers: auth })).status, 404);

    const gone = await del('peer', undefined, auth);
    assert.equal(gone.status, 404);
    const st = (await gone.json()) as any;
    assert.deepEqual([st.reason, st.message], ['NotFound', 'nodes "peer" not found']);
    assert.equal((await fetch(`${url}/api/v1/nodes/keep/status`, { method: 'DELETE', headers: auth })).status, 405);
  });
});
