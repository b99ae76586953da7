// The plugin as a real child process with the real bridge and host-local plugins: a namespace plays the node,
// others play pods. Checked against what the kernel and the files actually hold.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns, bridgeJson, ipJson, isRoot, nsRun } from '../helpers/netns.ts';
import { findTool } from '../helpers/tools.ts';

const root = join(import.meta.dirname, '../..');
// FLANNEL_CNI_PLUGIN tests an executable built elsewhere.
const executable = process.env.FLANNEL_CNI_PLUGIN ?? join(root, 'dist/bin/flannel');
const CNI_BIN = '/usr/lib/cni';
const IP = findTool('ip')!;

// The executable users install runs with a PATH that reaches no node, as under a container runtime.
const runners: { name: string; argv: string[]; path: string }[] = [
  {
    name: 'source (tsx)',
    argv: [process.execPath, '--import', 'tsx', join(root, 'src/cni/main.ts')],
    path: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
  },
  { name: `executable (${executable}, PATH without node)`, argv: [executable], path: '/nonexistent' },
];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

for (const runner of runners) {
  describe(`flannel CNI plugin, ${runner.name}`, {
    skip: !isRoot || !existsSync(join(CNI_BIN, 'bridge')) ? 'needs root and /usr/lib/cni/bridge' : false,
  }, () => {
    const netns = new Netns();
    let host = '';
    let pod = '';
    let tmp = '';
    let conf: Record<string, unknown>;
    let expectedDelegate = '';
    let podIP = '';

    /** The plugin inside the host namespace, as the kubelet's runtime would run it there. */
    function plugin(env: Record<string, string>, stdin: string, hostNs = host, argv = runner.argv): Run {
      const r = spawnSync(IP, ['netns', 'exec', hostNs, ...argv], {
        cwd: root,
        input: stdin,
        encoding: 'utf8',
        timeout: 30_000,
        env: { PATH: runner.path, CNI_PATH: CNI_BIN, CNI_IFNAME: 'eth0', ...env },
      });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    }
    const podEnv = (command: string, ns: string) => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: `id-${ns}`,
      CNI_NETNS: `/var/run/netns/${ns}`,
    });

    before(() => {
      host = netns.add('flcni-host');
      pod = netns.add('flcni-pod');
      tmp = mkdtempSync(join(tmpdir(), 'flcni-'));
      writeFileSync(
        join(tmp, 'subnet.env'),
        'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
      );
      conf = {
        cniVersion: '0.3.1',
        name: 'cbr0',
        type: 'flannel',
        subnetFile: join(tmp, 'subnet.env'),
        dataDir: join(tmp, 'data'),
        delegate: { hairpinMode: true, isDefaultGateway: true },
        ipam: { dataDir: join(tmp, 'ipam') },
      };
      expectedDelegate =
        `{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"dataDir":"${join(tmp, 'ipam')}","ranges":[[{"subnet":"10.244.7.0/24"}]],` +
        `"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}`;
    });
    after(() => {
      netns.cleanup();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it('ADD creates cni0 with the gateway address and a pod eth0 in the node subnet', () => {
      const r = plugin(podEnv('ADD', pod), JSON.stringify(conf));
      assert.equal(r.status, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
      const result = JSON.parse(r.stdout) as { ips: { address: string; gateway: string }[] };
      podIP = result.ips[0]!.address.split('/')[0]!;
      assert.match(result.ips[0]!.address, /^10\.244\.7\.\d+\/24$/);
      assert.equal(result.ips[0]!.gateway, '10.244.7.1');

      const cni0 = ipJson(host, ['addr', 'show', 'dev', 'cni0'])[0];
      assert.deepEqual(
        cni0.addr_info.filter((a: any) => a.family === 'inet').map((a: any) => `${a.local}/${a.prefixlen}`),
        ['10.244.7.1/24'],
      );
      const eth0 = ipJson(pod, ['addr', 'show', 'dev', 'eth0'])[0];
      assert.equal(eth0.mtu, 1450);
      assert.deepEqual(
        eth0.addr_info.filter((a: any) => a.family === 'inet').map((a: any) => `${a.local}/${a.prefixlen}`),
        [`${podIP}/24`],
      );
    });

    it('gives the pod a route to the Network (and the default route) via the gateway', () => {
      const routes = ipJson(pod, ['-4', 'route', 'show']);
      assert.ok(
        routes.some((r: any) => r.dst === '10.244.0.0/16' && r.gateway === '10.244.7.1' && r.dev === 'eth0'),
        JSON.stringify(routes),
      );
      assert.ok(
        routes.some((r: any) => r.dst === 'default' && r.gateway === '10.244.7.1'),
        JSON.stringify(routes),
      );
    });

    it('plugs the host veth into cni0 with hairpin mode', () => {
      const ports = ipJson(host, ['link', 'show', 'master', 'cni0']);
      assert.equal(ports.length, 1, JSON.stringify(ports));
      const port = bridgeJson(host, ['-d', 'link', 'show', 'dev', ports[0].ifname])[0];
      assert.equal(port.hairpin, true, JSON.stringify(port));
    });

    it('saves the exact delegate JSON, 0600 in a 0700 dataDir', () => {
      const saved = join(tmp, 'data', `id-${pod}`);
      assert.equal(readFileSync(saved, 'utf8'), expectedDelegate);
      assert.equal(statSync(saved).mode & 0o777, 0o600);
      assert.equal(statSync(join(tmp, 'data')).mode & 0o777, 0o700);
      assert.ok(existsSync(join(tmp, 'ipam', 'cbr0', podIP)), 'host-local state stays in the test dataDir');
    });

    it('reaches the pod from the node namespace', () => {
      const out = nsRun(host, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', podIP]);
      assert.match(out, /2 received/);
    });

    it('DEL removes the veth, the IP allocation and the saved file; DEL again succeeds', () => {
      const r = plugin(podEnv('DEL', pod), JSON.stringify(conf));
      assert.equal(r.status, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.deepEqual(
        ipJson(pod, ['link', 'show']).map((l: any) => l.ifname),
        ['lo'],
      );
      assert.deepEqual(ipJson(host, ['link', 'show', 'master', 'cni0']), []);
      assert.equal(existsSync(join(tmp, 'data', `id-${pod}`)), false);
      assert.equal(existsSync(join(tmp, 'ipam', 'cbr0', podIP)), false);
      const again = plugin(podEnv('DEL', pod), JSON.stringify(conf));
      assert.deepEqual([again.status, again.stdout], [0, '']);
    });

    it('DELs a pod the real flannel plugin added (its saved file written by hand, bridge run directly)', () => {
      const pod2 = netns.add('flcni-real');
      const env = podEnv('ADD', pod2);
      // What the real plugin saves and hands to bridge: Go map order, compact.
      const realBytes =
        `{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"dataDir":"${join(tmp, 'ipam')}","ranges":[[{"subnet":"10.244.7.0/24"}]],` +
        `"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}`;
      mkdirSync(join(tmp, 'data'), { recursive: true, mode: 0o700 });
      writeFileSync(join(tmp, 'data', env.CNI_CONTAINERID), realBytes, { mode: 0o600 });
      const add = plugin(env, realBytes, host, [join(CNI_BIN, 'bridge')]);
      assert.equal(add.status, 0, add.stdout);
      assert.equal(ipJson(pod2, ['link', 'show', 'dev', 'eth0']).length, 1);
      assert.equal(ipJson(host, ['link', 'show', 'master', 'cni0']).length, 1);

      // subnet.env is not needed for DEL.
      const del = plugin(podEnv('DEL', pod2), JSON.stringify({ ...conf, subnetFile: join(tmp, 'absent.env') }));
      assert.equal(del.status, 0, `stdout: ${del.stdout}\nstderr: ${del.stderr}`);
      assert.deepEqual(
        ipJson(pod2, ['link', 'show']).map((l: any) => l.ifname),
        ['lo'],
      );
      assert.deepEqual(ipJson(host, ['link', 'show', 'master', 'cni0']), []);
      assert.equal(existsSync(join(tmp, 'data', env.CNI_CONTAINERID)), false);
    });

    it('answers bad stdin with a decoding error (code 6) and exit 1', () => {
      const r = plugin(podEnv('ADD', pod), '{"name":');
      assert.equal(r.status, 1);
      const e = JSON.parse(r.stdout);
      assert.equal(e.code, 6);
      assert.match(e.msg, /error decoding network config from stdin/);
    });

    it("answers a missing subnet.env with the newest plugin's message and leaves no pod interface", () => {
      const missing = join(tmp, 'gone', 'subnet.env');
      const r = plugin(podEnv('ADD', pod), JSON.stringify({ ...conf, subnetFile: missing }));
      assert.equal(r.status, 1);
      assert.deepEqual(JSON.parse(r.stdout), {
        cniVersion: '0.3.1',
        code: 999,
        msg: `failed to load flannel 'subnet.env' file: open ${missing}: no such file or directory. Check the flannel pod log for this node.`,
      });
      assert.deepEqual(
        ipJson(pod, ['link', 'show']).map((l: any) => l.ifname),
        ['lo'],
      );
    });
  });
}
