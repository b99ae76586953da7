// `flannelctl lab up --backend udp`: etcd + 3 real flanneld processes + CNI pods over the userspace udp backend
// (flannel0 TUN, raw IP packets in UDP to port 8285); checked against Appendix A's udp state, then `lab down`.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipJson, isRoot, nsRun } from '../helpers/netns.ts';

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

describe('lab: 3 hosts × 2 pods over udp', { skip: !isRoot || !existsSync(join(dist, 'flannelctl.cjs')) ? 'needs root and `npm run build`' : false }, () => {
  let upOutput = '';
  before(() => {
    try {
      upOutput = ctl(['up', '--hosts', '3', '--pods-per-host', '2', '--backend', 'udp']);
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

  it('publishes udp leases with only PublicIP and writes ext MTU − 28 to subnet.env', () => {
    const leases = etcdValues();
    assert.equal(Object.keys(leases).length, 3);
    for (const h of hosts) {
      const env = subnetEnv(h);
      assert.equal(env.FLANNEL_MTU, '1472');
      const key = `/coreos.com/network/subnets/${env.FLANNEL_SUBNET!.replace('.1/24', '.0-24')}`;
      assert.equal(leases[key], `{"PublicIP":"${underlay[h]}","PublicIPv6":null}`);
    }
  });

  it("programs Appendix A's udp state: flannel0 tun, mtu 1472, <lease>/32, route for Network, socket on :8285", () => {
    for (const h of hosts) {
      const [link] = ipJson(h, ['-d', 'link', 'show', 'flannel0']);
      assert.equal(link.linkinfo.info_kind, 'tun', h);
      assert.equal(link.linkinfo.info_data.pi, false, h);
      assert.equal(link.mtu, 1472, h);
      const [addr] = ipJson(h, ['-4', 'addr', 'show', 'flannel0']);
      const own = subnetEnv(h).FLANNEL_SUBNET!.replace('.1/24', '.0');
      assert.deepEqual(addr.addr_info.map((x: any) => `${x.local}/${x.prefixlen}`), [`${own}/32`], h);
      assert.deepEqual(ipJson(h, ['route', 'show', 'dev', 'flannel0']).map((r: any) => r.dst), ['10.244.0.0/16'], h);
      assert.match(nsRun(h, 'ss', ['-Hnlu']), new RegExp(`${underlay[h]!.replace(/\./g, '\\.')}:8285\\b`), h);
    }
  });

  it('lab down leaves no namespace or file behind', () => {
    ctl(['down']);
    assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), /flab-/);
    assert.equal(existsSync('/run/flannel-lab'), false);
  });
});
