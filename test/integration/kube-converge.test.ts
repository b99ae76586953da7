// Kube mode at the kernel level: real flanneld processes (--kube-subnet-mgr) on throwaway hosts, the fake API server
// (`dist/lab-kube-api.cjs`) on a switch namespace, and a fake peer node added, changed and deleted through
// the API's write calls. Each step must reach every host's route, neighbour and FDB within a second of the API's
// response. Own topology on 192.168.152.0/24; never the lab's flab-* namespaces or the root namespace.
import { plugIntoBridge } from '../../src/lab/plug.ts';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FLANNELD, Flanneld, flanneldBuilt, peerState } from '../helpers/flanneld-hosts.ts';
import { bridgeJson, ipJson, isRoot, Netns, nsRun, run, uniqueName } from '../helpers/netns.ts';
import { until } from '../helpers/wait.ts';
import { writeKubeconfig } from '../helpers/kube-api.ts';

const KUBE_API = join(import.meta.dirname, '../../dist/lab-kube-api.cjs');
const skip = !isRoot
  ? 'needs root'
  : !flanneldBuilt || !existsSync(KUBE_API)
    ? `${FLANNELD} or ${KUBE_API} is missing: run \`npm run build\``
    : false;

const SW_IP = '192.168.152.1';
const API = `http://${SW_IP}:6443`;
const TOKEN = `converge-${process.pid}`;
const P = 'flannel.alpha.coreos.com/';
const HOSTS = [1, 2, 3].map((i) => ({ name: `kc${i}`, ip: `192.168.152.${10 + i}`, podCIDR: `10.244.${i}.0/24` }));
// The fake peer: no host behind it, only a Node object whose annotations say where its VTEP is.
const PEER = {
  name: 'fake-peer',
  podCIDR: '10.244.50.0/24',
  ip1: '192.168.152.50',
  ip2: '192.168.152.51',
  mac1: '0e:fc:00:00:50:01',
  mac2: '0e:fc:00:00:50:02',
};
const BOUND_MS = 1000;
const POLL_MS = 25;

const backendData = (mac: string) => JSON.stringify({ VNI: 1, VtepMAC: mac });

describe('kube mode: node add / VtepMAC change / public-ip change / delete converge on every host within 1 s', {
  skip,
}, () => {
  const netns = new Netns();
  const tmp = mkdtempSync(join(tmpdir(), 'kube-converge-'));
  const daemons: Flanneld[] = [];
  let api: ChildProcess | undefined;
  let sw = '';
  const hostNs: string[] = [];
  const times: Record<string, number[]> = {};

  /** One API call with curl from the switch namespace: status code and parsed body. */
  function call(
    method: string,
    path: string,
    body?: unknown,
    type = 'application/json',
  ): { status: number; body: any } {
    const args = [
      '-s',
      '--max-time',
      '3',
      '-X',
      method,
      '-H',
      `Authorization: Bearer ${TOKEN}`,
      '-w',
      '\n%{http_code}',
    ];
    if (body !== undefined) args.push('-H', `Content-Type: ${type}`, '--data-binary', '@-');
    const out = execFileSync('ip', ['netns', 'exec', sw, 'curl', ...args, `${API}${path}`], {
      encoding: 'utf8',
      input: body === undefined ? '' : JSON.stringify(body),
      timeout: 5000,
    });
    const i = out.lastIndexOf('\n');
    return { status: Number(out.slice(i + 1)), body: JSON.parse(out.slice(0, i)) };
  }

  /** Polls every host every 25 ms until `ok` holds on all of them; returns ms from `t0` per host. */
  async function converge(step: string, t0: number, ok: (ns: string) => boolean): Promise<number[]> {
    const ms = await Promise.all(
      hostNs.map((ns) => until(`${step} on ${ns}`, () => ok(ns) && Date.now() - t0, BOUND_MS, POLL_MS)),
    );
    times[step] = ms;
    return ms;
  }

  const fdbOf = (ns: string, mac: string) =>
    bridgeJson(ns, ['fdb', 'show', 'dev', 'flannel.1']).filter((f) => f.mac === mac);
  const neighOf = (ns: string, ip: string) => ipJson(ns, ['neigh', 'show', 'dev', 'flannel.1', 'to', ip]);
  const routeOf = (ns: string, cidr: string) => ipJson(ns, ['route', 'show', cidr]).filter((r) => r.dst === cidr);

  before(async () => {
    sw = netns.add('kcsw');
    // A fixed bridge MAC, so that plugging in hosts does not change it under the daemons' ARP entries.
    nsRun(sw, 'ip', ['link', 'add', 'br0', 'address', '02:fc:00:00:01:52', 'type', 'bridge']);
    nsRun(sw, 'ip', ['addr', 'add', `${SW_IP}/24`, 'dev', 'br0']);
    nsRun(sw, 'ip', ['link', 'set', 'br0', 'up']);
    const ready = join(tmp, 'api.ready');
    api = spawn(
      'ip',
      [
        'netns',
        'exec',
        sw,
        process.execPath,
        KUBE_API,
        '--listen',
        `${SW_IP}:6443`,
        '--token',
        TOKEN,
        '--nodes',
        HOSTS.map((h) => `${h.name}=${h.podCIDR}`).join(','),
        '--ready-file',
        ready,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let apiLog = '';
    api.stdout!.on('data', (b) => (apiLog += b));
    api.stderr!.on('data', (b) => (apiLog += b));
    await until(`the API server to start (log: ${apiLog})`, () => existsSync(ready), 15_000, 50);

    const netConf = join(tmp, 'net-conf.json');
    writeFileSync(netConf, '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');
    for (const h of HOSTS) {
      const ns = netns.add('kch');
      plugIntoBridge({
        ns,
        ifname: 'eth0',
        sw,
        bridge: 'br0',
        addresses: [[`${h.ip}/24`]],
        names: [uniqueName('kci'), uniqueName('kco')],
      });
      run('ip', ['-n', ns, 'route', 'add', 'default', 'via', SW_IP]);
      const kubeconfig = join(tmp, `kubeconfig-${h.name}`);
      writeKubeconfig(kubeconfig, API, TOKEN, h.name);
      daemons.push(
        new Flanneld(
          ns,
          [
            '--kube-subnet-mgr',
            `--kubeconfig-file=${kubeconfig}`,
            `--net-config-path=${netConf}`,
            `--subnet-file=${join(tmp, `subnet-${h.name}.env`)}`,
            '--iface=eth0',
          ],
          { NODE_NAME: h.name },
        ),
      );
      hostNs.push(ns);
    }
    await Promise.all(daemons.map((d) => d.ready(30_000)));
    // Each host has programmed the others: the informers are past their first list.
    const macs = hostNs.map((ns) => (ipJson(ns, ['link', 'show', 'flannel.1'])[0] as { address: string }).address);
    for (const [i, ns] of hostNs.entries()) {
      for (const [j, other] of HOSTS.entries()) {
        if (i === j) continue;
        await until(
          `${ns} to program ${other.name}`,
          () => {
            const s = peerState(ns, other.podCIDR, macs[j]!, other.ip);
            return s.route && s.neigh && s.fdb;
          },
          10_000,
          50,
        );
      }
    }
  });

  after(async () => {
    for (const d of daemons) {
      if (process.env.FLANNEL_TS_TEST_LOGS) process.stderr.write(`==== flanneld in ${d.ns}\n${d.log}\n`);
      d.kill();
    }
    await Promise.all(daemons.map((d) => d.exited(5000).catch(() => undefined)));
    api?.kill('SIGKILL');
    netns.cleanup();
    rmSync(tmp, { recursive: true, force: true });
    if (Object.keys(times).length)
      process.stdout.write(`# kube-converge ms per host (${hostNs.length} hosts): ${JSON.stringify(times)}\n`);
  });

  it('(a) a node POSTed with flannel annotations and a podCIDR gets a route, neighbour and FDB entry on every host', async (t) => {
    const res = call('POST', '/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: PEER.name,
        annotations: {
          [`${P}kube-subnet-manager`]: 'true',
          [`${P}backend-type`]: 'vxlan',
          [`${P}backend-data`]: backendData(PEER.mac1),
          [`${P}public-ip`]: PEER.ip1,
        },
      },
      spec: { podCIDR: PEER.podCIDR },
    });
    const t0 = Date.now();
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const ms = await converge('add', t0, (ns) => {
      const s = peerState(ns, PEER.podCIDR, PEER.mac1, PEER.ip1);
      return s.route && s.neigh && s.fdb;
    });
    t.diagnostic(`add converged after ${ms.join(' / ')} ms`);
  });

  it('(b) a PATCH with a new VtepMAC replaces the neighbour and FDB entry on every host, the old FDB entry gone', async (t) => {
    const res = call(
      'PATCH',
      `/api/v1/nodes/${PEER.name}`,
      { metadata: { annotations: { [`${P}backend-data`]: backendData(PEER.mac2) } } },
      'application/merge-patch+json',
    );
    const t0 = Date.now();
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const ms = await converge('VtepMAC', t0, (ns) => {
      const s = peerState(ns, PEER.podCIDR, PEER.mac2, PEER.ip1);
      return (
        s.route && s.neigh && s.fdb && fdbOf(ns, PEER.mac1).length === 0 && neighOf(ns, '10.244.50.0').length === 1
      );
    });
    t.diagnostic(`VtepMAC change converged after ${ms.join(' / ')} ms`);
  });

  it("(c) a PATCH with a new public-ip moves the FDB entry's dst on every host", async (t) => {
    const res = call(
      'PATCH',
      `/api/v1/nodes/${PEER.name}`,
      { metadata: { annotations: { [`${P}public-ip`]: PEER.ip2 } } },
      'application/strategic-merge-patch+json',
    );
    const t0 = Date.now();
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const ms = await converge('public-ip', t0, (ns) => {
      const fdb = fdbOf(ns, PEER.mac2);
      return (
        fdb.length === 1 &&
        fdb[0].dst === PEER.ip2 &&
        peerState(ns, PEER.podCIDR, PEER.mac2, PEER.ip2).neigh &&
        routeOf(ns, PEER.podCIDR).length === 1
      );
    });
    t.diagnostic(`public-ip change converged after ${ms.join(' / ')} ms`);
  });

  it('(d) DELETE removes the route, neighbour and FDB entry from every host and leaves the real peers alone', async (t) => {
    const res = call('DELETE', `/api/v1/nodes/${PEER.name}`);
    const t0 = Date.now();
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'Success');
    const ms = await converge(
      'delete',
      t0,
      (ns) =>
        routeOf(ns, PEER.podCIDR).length === 0 &&
        neighOf(ns, '10.244.50.0').length === 0 &&
        fdbOf(ns, PEER.mac1).length === 0 &&
        fdbOf(ns, PEER.mac2).length === 0,
    );
    t.diagnostic(`delete converged after ${ms.join(' / ')} ms`);
    for (const [i, ns] of hostNs.entries()) {
      for (const [j, other] of HOSTS.entries())
        if (i !== j) assert.equal(routeOf(ns, other.podCIDR).length, 1, `${ns} still routes ${other.podCIDR}`);
    }
    for (const d of daemons) assert.ok(d.running, `flanneld in ${d.ns} still runs; log:\n${d.log}`);
  });
});
