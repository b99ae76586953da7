// The Kubernetes subnet manager against the in-process fake API server (src/lab/kube-api/server.ts), and that
// server's own REST semantics. No root needed: everything is HTTP on loopback.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeApiServer } from '../../src/lab/kube-api/server.ts';
import { KubeSubnetManager } from '../../src/subnet/kube/manager.ts';
import type { Lease, LeaseEvent } from '../../src/subnet/lease.ts';
import { kubeDir, kubeSuite, watchEvents } from '../helpers/kube-api.ts';
import { within } from '../helpers/wait.ts';
import { leaseLines } from '../helpers/lease-events.ts';

const TOKEN = 'test-token-123';
const P = 'flannel.alpha.coreos.com/';
const MAC = '12:c6:65:89:b4:e3';
const vxlanAttrs = (ip: string, mac = MAC) => ({
  publicIP: ip,
  publicIPv6: null,
  backendType: 'vxlan',
  backendData: { VNI: 1, VtepMAC: mac },
});
const peerAnnotations = (ip: string, mac: string) => ({
  [`${P}kube-subnet-manager`]: 'true',
  [`${P}backend-type`]: 'vxlan',
  [`${P}backend-data`]: JSON.stringify({ VNI: 1, VtepMAC: mac }),
  [`${P}public-ip`]: ip,
});

const kd = kubeDir('kube-sm-', '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');
const { dir } = kd;
const kubeconfig = (server: string, token = TOKEN) => kd.kubeconfig(server, token);

/** Pulls batches from watchLeases on demand. */
function batches(m: KubeSubnetManager, own: Lease, signal: AbortSignal) {
  const it = m.watchLeases(own, signal)[Symbol.asyncIterator]();
  return {
    next: async (ms = 1000, what = 'lease events'): Promise<LeaseEvent[]> =>
      (await within(ms, what, it.next())).value as LeaseEvent[],
    /** Collects batches until `pred` holds on the collected events. */
    until: async (pred: (evs: LeaseEvent[]) => boolean, ms: number, what: string): Promise<LeaseEvent[]> => {
      const all: LeaseEvent[] = [];
      const deadline = Date.now() + ms;
      while (!pred(all)) {
        const left = deadline - Date.now();
        if (left <= 0)
          throw new Error(`${what}: got only ${JSON.stringify(all.map((e) => `${e.type} ${e.lease.subnet}`))}`);
        all.push(...((await within(left, what, it.next())).value as LeaseEvent[]));
      }
      return all;
    },
  };
}
const show = (evs: LeaseEvent[]) => leaseLines(evs);

after(() => kd.remove());

describe('fake Kubernetes API server semantics', () => {
  const server = new KubeApiServer({ token: TOKEN, bookmarkIntervalMs: 200, historyLimit: 3 });
  let url = '';
  const auth = { Authorization: `Bearer ${TOKEN}` };
  before(async () => {
    url = await server.listen(0, '127.0.0.1');
    server.addNode({ name: 'n1', podCIDR: '10.244.1.0/24' });
  });
  after(() => server.close());

  it('answers 401 without the bearer token and with a wrong one', async () => {
    assert.equal((await fetch(`${url}/api/v1/nodes`)).status, 401);
    assert.equal((await fetch(`${url}/api/v1/nodes`, { headers: { Authorization: 'Bearer nope' } })).status, 401);
    assert.equal((await fetch(`${url}/api/v1/nodes`, { headers: auth })).status, 200);
  });

  it('lists nodes with a resourceVersion and 404s an unknown node', async () => {
    const list = (await (await fetch(`${url}/api/v1/nodes`, { headers: auth })).json()) as any;
    assert.equal(list.kind, 'NodeList');
    assert.equal(list.metadata.resourceVersion, server.resourceVersion);
    assert.deepEqual(
      list.items.map((n: any) => [n.metadata.name, n.spec.podCIDR]),
      [['n1', '10.244.1.0/24']],
    );
    const res = await fetch(`${url}/api/v1/nodes/ghost`, { headers: auth });
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as any).reason, 'NotFound');
    const patch = await fetch(`${url}/api/v1/nodes/ghost/status`, {
      method: 'PATCH',
      headers: { ...auth, 'Content-Type': 'application/merge-patch+json' },
      body: '{}',
    });
    assert.equal(patch.status, 404);
  });

  it('accepts only strategic-merge and merge patches (415 otherwise) and 409s a stale resourceVersion', async () => {
    const patch = (type: string, body: object) =>
      fetch(`${url}/api/v1/nodes/n1/status`, {
        method: 'PATCH',
        headers: { ...auth, 'Content-Type': type },
        body: JSON.stringify(body),
      });
    assert.equal((await patch('application/json-patch+json', [])).status, 415);
    assert.equal((await patch('application/json', {})).status, 415);
    const ok = await patch('application/strategic-merge-patch+json', { metadata: { annotations: { x: '1' } } });
    assert.equal(ok.status, 200);
    assert.equal(server.getNode('n1')!.metadata.annotations!.x, '1');
    const stale = await patch('application/merge-patch+json', {
      metadata: { resourceVersion: '1', annotations: { x: '2' } },
    });
    assert.equal(stale.status, 409);
    assert.equal(server.getNode('n1')!.metadata.annotations!.x, '1');
  });

  it('streams watch events from a resourceVersion, sends bookmarks, and 410s a version older than its history', async () => {
    const rv = server.resourceVersion;
    const ac = new AbortController();
    const res = await fetch(`${url}/api/v1/nodes?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`, {
      headers: auth,
      signal: ac.signal,
    });
    const lines = watchEvents(res);
    server.addNode({ name: 'n2', podCIDR: '10.244.2.0/24' });
    server.deleteNode('n2');
    const evs = await lines(3);
    ac.abort();
    const changes = evs.filter((e) => e.type !== 'BOOKMARK');
    assert.deepEqual(
      changes.map((e) => [e.type, e.object.metadata.name]),
      [
        ['ADDED', 'n2'],
        ['DELETED', 'n2'],
      ],
    );
    const bookmarks = evs.filter((e) => e.type === 'BOOKMARK');
    if (bookmarks.length === 0) bookmarks.push(...(await lines(4)).filter((e) => e.type === 'BOOKMARK'));
    assert.ok(bookmarks.length > 0, 'a bookmark within 3 s');
    assert.match(bookmarks.at(-1).object.metadata.resourceVersion, /^\d+$/);
    // historyLimit 3: four more events push `rv` out of the window.
    for (let i = 0; i < 4; i++) server.modifyNode('n1', (n) => (n.metadata.annotations = { i: String(i) }));
    const gone = await (await fetch(`${url}/api/v1/nodes?watch=true&resourceVersion=${rv}`, { headers: auth })).text();
    const ev = JSON.parse(gone.trim());
    assert.equal(ev.type, 'ERROR');
    assert.equal(ev.object.code, 410);
    assert.equal(ev.object.reason, 'Expired');
  });
});

describe('KubeSubnetManager against the fake API server', () => {
  const { server, url, stop, make, closeMade } = kubeSuite(kd, {
    token: TOKEN,
    nodeName: 'node-a',
    setNodeNetworkUnavailable: true,
    nodes: [
      { name: 'node-a', podCIDR: '10.244.1.0/24' },
      { name: 'node-b', podCIDR: '10.244.2.0/24', annotations: peerAnnotations('192.168.1.12', '0e:00:00:00:00:02') },
      { name: 'not-flannel', podCIDR: '10.244.3.0/24' },
    ],
  });

  it('publishes exactly the spec annotations with one strategic-merge patch on nodes/status, and none when unchanged', async () => {
    const m = await make();
    assert.equal(m.name, 'Kubernetes Subnet Manager - node-a');
    const lease = await m.acquireLease(vxlanAttrs('192.168.1.11'), stop.signal);
    assert.equal(lease.subnet!.toString(), '10.244.1.0/24');
    assert.equal(lease.expiration, null);
    const a = server.getNode('node-a')!.metadata.annotations!;
    assert.deepEqual(a, {
      [`${P}backend-data`]: `{"VNI":1,"VtepMAC":"${MAC}"}`,
      [`${P}backend-type`]: 'vxlan',
      [`${P}kube-subnet-manager`]: 'true',
      [`${P}public-ip`]: '192.168.1.11',
    });
    const patches = server.patches.filter((p) => p.node === 'node-a');
    assert.equal(patches.length, 1);
    assert.equal(patches[0]!.subresource, 'status');
    assert.equal(patches[0]!.contentType, 'application/strategic-merge-patch+json');
    await m.acquireLease(vxlanAttrs('192.168.1.11'), stop.signal);
    assert.equal(server.patches.filter((p) => p.node === 'node-a').length, 1, 'no patch when nothing differs');
    await m.acquireLease(vxlanAttrs('192.168.1.11', '0e:11:22:33:44:55'), stop.signal);
    const last = server.patches.at(-1)!;
    assert.deepEqual(last.body, {
      metadata: { annotations: { [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"0e:11:22:33:44:55"}' } },
    });
    await m.acquireLease(vxlanAttrs('192.168.1.11'), stop.signal);
  });

  it('keeps the VtepMAC of the previous run and reads node-public-ip', async () => {
    server.modifyNode('node-a', (n) => (n.metadata.annotations![`${P}node-public-ip`] = '192.168.1.111'));
    const m = await make();
    assert.deepEqual(m.previousBackendData(), { VNI: 1, VtepMAC: MAC });
    assert.deepEqual(m.nodePublicIPs(), { v4: '192.168.1.111', v6: undefined });
    server.modifyNode('node-a', (n) => delete n.metadata.annotations![`${P}node-public-ip`]);
  });

  it('honours public-ip-overwrite', async () => {
    server.modifyNode('node-a', (n) => (n.metadata.annotations![`${P}public-ip-overwrite`] = '203.0.113.9'));
    const m = await make();
    const lease = await m.acquireLease(vxlanAttrs('192.168.1.11'), stop.signal);
    assert.equal(lease.attrs.publicIP, '203.0.113.9');
    assert.equal(server.getNode('node-a')!.metadata.annotations![`${P}public-ip`], '203.0.113.9');
    server.modifyNode('node-a', (n) => delete n.metadata.annotations![`${P}public-ip-overwrite`]);
    await m.acquireLease(vxlanAttrs('192.168.1.11'), stop.signal);
  });

  it('sets NetworkUnavailable=False with reason FlannelIsUp on completeLease and holds until aborted', async () => {
    const m = await make();
    const lease = await m.acquireLease(vxlanAttrs('192.168.1.11'), stop.signal);
    const ac = new AbortController();
    const done = m.completeLease(lease, ac.signal);
    const deadline = Date.now() + 3000;
    while (!server.getNode('node-a')!.status.conditions && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const conds = server.getNode('node-a')!.status.conditions!;
    assert.equal(conds.length, 1);
    const c = conds[0]!;
    assert.deepEqual(Object.keys(c), [
      'type',
      'status',
      'lastHeartbeatTime',
      'lastTransitionTime',
      'reason',
      'message',
    ]);
    assert.deepEqual(
      { ...c, lastHeartbeatTime: 'T', lastTransitionTime: 'T' },
      {
        type: 'NetworkUnavailable',
        status: 'False',
        lastHeartbeatTime: 'T',
        lastTransitionTime: 'T',
        reason: 'FlannelIsUp',
        message: 'Flannel is running on this node',
      },
    );
    assert.match(String(c.lastHeartbeatTime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const p = server.patches.at(-1)!;
    assert.equal(p.contentType, 'application/strategic-merge-patch+json');
    assert.equal(p.subresource, 'status');
    ac.abort();
    assert.equal(await within(1000, 'completeLease', done), 'aborted');
  });

  it('starts with the full set of peers, then reports add, change and delete of nodes within a second', async () => {
    const m = await make();
    const own = await m.acquireLease(vxlanAttrs('192.168.1.11'), stop.signal);
    const ac = new AbortController();
    const b = batches(m, own, ac.signal);
    assert.deepEqual(show(await b.next()), ['added 10.244.2.0/24 192.168.1.12']);

    server.addNode({
      name: 'node-c',
      podCIDR: '10.244.4.0/24',
      annotations: peerAnnotations('192.168.1.13', '0e:00:00:00:00:03'),
    });
    assert.deepEqual(show(await b.next(1000, 'node added')), ['added 10.244.4.0/24 192.168.1.13']);

    server.modifyNode('node-c', (n) => (n.metadata.annotations![`${P}public-ip`] = '192.168.1.33'));
    assert.deepEqual(show(await b.next(1000, 'public-ip changed')), ['added 10.244.4.0/24 192.168.1.33']);

    server.modifyNode(
      'node-c',
      (n) => (n.metadata.annotations![`${P}backend-data`] = '{"VNI":1,"VtepMAC":"0e:00:00:00:00:33"}'),
    );
    const mac = await b.next(1000, 'VtepMAC changed');
    assert.deepEqual((mac[0]!.lease.attrs.backendData as any).VtepMAC, '0e:00:00:00:00:33');

    server.modifyNode('node-c', (n) => (n.metadata.labels = { unrelated: 'yes' }));
    server.deleteNode('node-c');
    assert.deepEqual(
      show(await b.next(1000, 'node deleted')),
      ['removed 10.244.4.0/24 192.168.1.33'],
      'a label change is no lease event',
    );
    ac.abort();
  });

  it('does not drop a v4 change of a dual-stack node whose v6 annotations stayed the same', async () => {
    const m = await make();
    const own = await m.acquireLease(vxlanAttrs('192.168.1.11'), stop.signal);
    const ac = new AbortController();
    const b = batches(m, own, ac.signal);
    await b.next();
    server.addNode({
      name: 'node-d',
      podCIDRs: ['10.244.5.0/24', 'fd00:5::/64'],
      annotations: {
        ...peerAnnotations('192.168.1.14', '0e:00:00:00:00:04'),
        [`${P}public-ipv6`]: 'fc00::14',
        [`${P}backend-v6-data`]: '{"VNI":1,"VtepMAC":"0e:00:00:00:00:64"}',
      },
    });
    assert.deepEqual(show(await b.next(1000, 'dual-stack node added')), ['added 10.244.5.0/24 192.168.1.14']);
    server.modifyNode('node-d', (n) => (n.metadata.annotations![`${P}public-ip`] = '192.168.1.44'));
    assert.deepEqual(show(await b.next(1000, 'v4 change')), ['added 10.244.5.0/24 192.168.1.44']);
    server.deleteNode('node-d');
    await b.next(1000, 'cleanup');
    ac.abort();
  });

  it('lists again after 410 Gone and after a dropped watch, catching up on what happened meanwhile', async () => {
    await closeMade();
    const m = await make({ watchTimeoutSeconds: 300 });
    const own = await m.acquireLease(vxlanAttrs('192.168.1.11'), stop.signal);
    const ac = new AbortController();
    const b = batches(m, own, ac.signal);
    await b.next();
    // Only this manager's watch is open once the others' aborts reached the server.
    const watching = async () => {
      const deadline = Date.now() + 3000;
      while (server.watchCount !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(server.watchCount, 1, 'one open watch');
    };
    await watching();
    const lists = m.listCount;

    // The watch ends cleanly and the history is compacted meanwhile: resuming gets ERROR 410, so the manager lists.
    const gone = server.goneCount;
    server.endWatches();
    server.modifyNode('node-b', (n) => (n.metadata.labels = { touched: 'yes' }));
    server.compact();
    server.addNode({
      name: 'node-e',
      podCIDR: '10.244.6.0/24',
      annotations: peerAnnotations('192.168.1.15', '0e:00:00:00:00:05'),
    });
    assert.deepEqual(show(await b.until((e) => e.length > 0, 3000, 'after 410')), ['added 10.244.6.0/24 192.168.1.15']);
    assert.ok(server.goneCount > gone, `the resumed watch got 410 Gone ${JSON.stringify(server.requests.slice(-8))}`);
    assert.ok(m.listCount > lists, 'listed again');

    // Plain disconnect: the node deleted while nobody watched still shows up as removed.
    await watching();
    const lists2 = m.listCount;
    server.dropWatches();
    server.deleteNode('node-e');
    assert.deepEqual(show(await b.until((e) => e.length > 0, 3000, 'after disconnect')), [
      'removed 10.244.6.0/24 192.168.1.15',
    ]);
    assert.ok(m.listCount > lists2, 'listed again');
    ac.abort();
  });

  it('finds the node through POD_NAME/POD_NAMESPACE and names what is missing', async () => {
    server.addPod('kube-flannel', 'kube-flannel-ds-abc', 'node-a');
    const m = await make({ nodeName: '', podName: 'kube-flannel-ds-abc', podNamespace: 'kube-flannel' });
    assert.equal(m.nodeName, 'node-a');
    await assert.rejects(make({ nodeName: '' }), /env variables POD_NAME and POD_NAMESPACE must be set/);
    server.addPod('kube-flannel', 'unscheduled', '');
    await assert.rejects(
      make({ nodeName: '', podName: 'unscheduled', podNamespace: 'kube-flannel' }),
      /node name not present in pod spec 'kube-flannel\/unscheduled'/,
    );
  });

  it('fails clearly on a missing net-conf.json, a bad prefix, a podCIDR outside Network, and a wrong token', async () => {
    await assert.rejects(make({ netConfigPath: join(dir, 'nope.json') }), /failed to read net conf: .*nope\.json/);
    await assert.rejects(make({ annotationPrefix: 'a/b/c' }), /prefix can contain at most single slash/);
    server.addNode({ name: 'outside', podCIDR: '10.9.0.0/24' });
    const m = await make({ nodeName: 'outside' });
    await assert.rejects(
      m.acquireLease(vxlanAttrs('192.168.1.20'), stop.signal),
      /subnet "10\.244\.0\.0\/16" specified in the flannel net config doesn't contain "10\.9\.0\.0\/24" PodCIDR of the "outside" node/,
    );
    server.deleteNode('outside');
    await assert.rejects(
      make({ kubeconfigFile: kubeconfig(url(), 'wrong'), syncTimeoutMs: 500 }),
      /error waiting for nodeController to sync state/,
    );
  });
});

describe('KubeSubnetManager with 5,000 nodes', () => {
  const server = new KubeApiServer({ token: TOKEN });
  let m: KubeSubnetManager | undefined;
  after(async () => {
    await m?.close();
    await server.close();
  });

  it('syncs, acquires and yields the first batch of 4,999 peers without stalling', async () => {
    const url = await server.listen(0, '127.0.0.1');
    for (let i = 0; i < 5000; i++) {
      const sub = `10.${100 + Math.floor(i / 256)}.${i % 256}.0/24`;
      server.addNode({
        name: `n${i}`,
        podCIDR: sub,
        annotations: peerAnnotations(`172.16.${Math.floor(i / 256)}.${i % 256}`, '0e:00:00:00:00:01'),
      });
    }
    const conf = join(mkdtempSync(join(tmpdir(), 'kube-big-')), 'net-conf.json');
    writeFileSync(conf, '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}');
    const t0 = Date.now();
    m = await KubeSubnetManager.create({
      kubeconfigFile: kubeconfig(url),
      nodeName: 'n0',
      netConfigPath: conf,
      annotationPrefix: 'flannel.alpha.coreos.com',
      setNodeNetworkUnavailable: false,
    });
    const own = await m.acquireLease(vxlanAttrs('172.16.0.0'), AbortSignal.timeout(30_000));
    const ac = new AbortController();
    const first = await batches(m, own, ac.signal).next(30_000, 'first batch');
    const ms = Date.now() - t0;
    ac.abort();
    assert.equal(first.length, 4999);
    assert.ok(first.every((e) => e.type === 'added'));
    assert.ok(ms < 20_000, `startup with 5,000 nodes took ${ms} ms`);
    rmSync(join(conf, '..'), { recursive: true, force: true });
  });
});
