// `flannelctl lab up --backend host-gw`: etcd + 3 real flanneld processes + CNI pods, routed host to host with no
// overlay device; checked against Appendix A's host-gw state, then `lab down`.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipJson, isRoot } from '../helpers/netns.ts';

const dist = join(import.meta.dirname, '../../dist');
const ctl = (args: string[]) => execFileSync(process.execPath, [join(dist, 'flannelctl.cjs'), 'lab', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
const hosts = ['flab-h1', 'flab-h2', 'flab-h3'];
const underlay: Record<string, string> = { 'flab-h1': '192.168.100.11', 'flab-h2': '192.168.100.12', 'flab-h3': '192.168.100.13' };

function subnetEnv(host: string): Record<string, string> {
  const text = readFileSync(`/run/flannel-lab/${host.replace('flab-', '')}/subnet.env`, 'utf8');
  return Object.fromEntries(text.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
function etcdValues(): Record<string, string> {
  const out = execFileSync('ip', ['netns', 'exec', 'flab-etcd', 'etcdctl', '--endpoints=http://192.168.100.2:2379', 'get', '--prefix', '/coreos.com/network/subnets/', '-w', 'json'], {
    encoding: 'utf8',
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  const kvs = (JSON.parse(out.replace(/"lease":(\d+)/g, '"lease":"$1"')).kvs ?? []) as { key: string; value: string }[];
  return Object.fromEntries(kvs.map((kv) => [Buffer.from(kv.key, 'base64').toString(), Buffer.from(kv.value, 'base64').toString()]));
}

describe('lab: 3 hosts × 2 pods over host-gw', { skip: !isRoot || !existsSync(join(dist, 'flannelctl.cjs')) ? 'needs root and `npm run build`' : false }, () => {
  let upOutput = '';
  before(() => {
    try {
      upOutput = ctl(['up', '--hosts', '3', '--pods-per-host', '2', '--backend', 'host-gw']);
    } catch (e) {
      // A failed matrix exits non-zero; keep the output for the assertion below.
      upOutput = String((e as { stdout?: string }).stdout ?? e);
    }
  });
  after(() => {
    try {
      ctl(['down']);
    } catch {
      /* checked in the last test */
    }
  });

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

  it("programs Appendix A's host-gw state: <peer subnet> via <peer> dev eth0 and no flannel device", () => {
    for (const h of hosts) {
      assert.deepEqual(ipJson(h, ['link', 'show']).filter((l: any) => l.ifname.startsWith('flannel')), []);
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

  it('lab down leaves no namespace or file behind', () => {
    ctl(['down']);
    assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), /flab-/);
    assert.equal(existsSync('/run/flannel-lab'), false);
  });
});
