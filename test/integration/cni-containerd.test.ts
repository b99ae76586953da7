// The flannel CNI plugin run by a real container runtime: containerd 1.6's `ctr run --cni` on two flanneld hosts
// (vxlan, etcd), with upstream kube-flannel's conflist and the reference bridge, host-local and portmap plugins.
// Checked against the kernel and the files: addresses, a cross-host ping, and what DEL leaves behind.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';
import { buildBusyboxImage, CONTAINERD_TOOLS, Containerd, type Container } from '../helpers/containerd.ts';
import { flanneldSkip, readSubnetEnv, FlanneldHosts } from '../helpers/flanneld-hosts.ts';
import { ipJson, uniqueName } from '../helpers/netns.ts';
import { requireTool } from '../helpers/tools.ts';

const root = join(import.meta.dirname, '../..');
const REFERENCE_PLUGINS = '/usr/lib/cni';
// FLANNEL_CNI_PLUGIN tests another build; by default the single executable users install.
const PLUGIN = process.env.FLANNEL_CNI_PLUGIN ?? join(root, 'dist/bin/flannel');
// ctr's PATH is the plugins' PATH: iptables (portmap) and nothing else, so a plugin that wanted node would fail.
const PLUGIN_PATH = ['/usr/sbin', '/sbin'].join(delimiter);
const IMAGE = 'localhost/flannel-test/busybox:1';

const skip = flanneldSkip || (!existsSync(PLUGIN) ? `${PLUGIN} is missing: run \`npm run build\`` : false);

/** Upstream kube-flannel's cni-conf.json, plus per-host files so two hosts on one machine stay apart. */
function kubeFlannelConflist(subnetFile: string, hostDir: string) {
  return {
    name: 'cbr0',
    cniVersion: '0.3.1',
    plugins: [
      {
        type: 'flannel',
        delegate: { hairpinMode: true, isDefaultGateway: true },
        subnetFile,
        dataDir: join(hostDir, 'flannel'),
        ipam: { dataDir: join(hostDir, 'ipam') },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

/** 10.244.5.1/24 → does `ip` lie inside it? */
function inSubnet(ip: string, cidr: string): boolean {
  const [net, len] = cidr.split('/');
  const n = (s: string) => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(len));
  return Math.floor(n(ip) / size) === Math.floor(n(net!) / size);
}

describe(`flannel CNI plugin under containerd (ctr run --cni), two vxlan hosts, ${PLUGIN?.startsWith(root) ? relative(root, PLUGIN) : (PLUGIN ?? 'no plugin')}`, {
  skip,
}, () => {
  const u = new FlanneldHosts();
  let tmp = '';
  interface Host {
    ns: string;
    dir: string;
    subnetFile: string;
    containerd?: Containerd;
    container?: Container;
    ip?: string;
  }
  const hosts: Host[] = [];
  /** The container the first test started on `h`. */
  const containerOf = (h: Host): Container => {
    assert.ok(h.container && h.ip, `the container on ${h.ns} was started by the first test`);
    return h.container;
  };

  before(async () => {
    requireTool(...CONTAINERD_TOOLS, 'iptables', 'etcdctl');
    assert.deepEqual(
      PLUGIN_PATH.split(delimiter).filter((d) => existsSync(join(d, 'node'))),
      [],
      `node is not on the plugins' PATH ${PLUGIN_PATH}`,
    );
    tmp = mkdtempSync(join(tmpdir(), 'flannel-cni-ctr-'));
    const archive = join(tmp, 'busybox.oci.tar');
    buildBusyboxImage(archive, IMAGE);
    await u.start();
    const prefix = u.prefix();
    for (const [i, eth0] of ['192.168.150.71', '192.168.150.72'].entries()) {
      const ns = u.addHost(`fdctr${i}`, { eth0 });
      const dir = join(tmp, `host${i}`);
      const subnetFile = join(dir, 'subnet.env');
      const d = u.flanneld(ns, [...u.etcdFlags(prefix, subnetFile), '--ip-masq']);
      hosts.push({ ns, dir, subnetFile });
      await d.ready();
    }
    for (const h of hosts) {
      h.containerd = await Containerd.start({
        netns: h.ns,
        cni: {
          conflist: kubeFlannelConflist(h.subnetFile, h.dir),
          plugins: {
            flannel: PLUGIN!,
            ...Object.fromEntries(['bridge', 'host-local', 'portmap'].map((p) => [p, join(REFERENCE_PLUGINS, p)])),
          },
          path: PLUGIN_PATH,
        },
      });
      assert.ok(h.containerd.importImage(archive).includes(IMAGE), `ctr images import made ${IMAGE}`);
    }
  });

  after(async () => {
    // FLANNEL_TS_TEST_LOGS=1 shows each ctr run's output and containerd's log when investigating a failure.
    for (const h of hosts) {
      if (process.env.FLANNEL_TS_TEST_LOGS && h.containerd) {
        for (const c of h.containerd.containers) process.stderr.write(`==== ctr run ${c.id} in ${h.ns}\n${c.output}\n`);
        process.stderr.write(`==== containerd in ${h.ns}\n${h.containerd.log}\n`);
      }
    }
    await Promise.allSettled(hosts.map((h) => h.containerd?.stop()));
    await u.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("ADD gives each container an eth0 address inside its host's FLANNEL_SUBNET", async () => {
    for (const h of hosts) {
      h.container = await h.containerd!.run(IMAGE, uniqueName('c'), ['/bin/sleep', '3600']);
      const subnet = readSubnetEnv(h.subnetFile)!.FLANNEL_SUBNET!;
      const addr = h.container.ipv4();
      assert.ok(
        addr,
        `container ${h.container.id} has an IPv4 address on eth0: ${JSON.stringify(h.container.ipJson(['addr']))}`,
      );
      assert.equal(addr.prefixlen, Number(subnet.split('/')[1]));
      assert.ok(inSubnet(addr.local, subnet), `${addr.local} is inside ${subnet}`);
      assert.notEqual(`${addr.local}/${addr.prefixlen}`, subnet, 'not the gateway address');
      h.ip = addr.local;
    }
    assert.notEqual(
      readSubnetEnv(hosts[0]!.subnetFile)!.FLANNEL_SUBNET,
      readSubnetEnv(hosts[1]!.subnetFile)!.FLANNEL_SUBNET,
    );
  });

  it("records the container in host-local's store, the plugin's scratch file and a veth on cni0", () => {
    for (const h of hosts) {
      const c = containerOf(h);
      assert.equal(readFileSync(join(h.dir, 'ipam/cbr0', h.ip!), 'utf8').split(/\s+/)[0], c.cniId);
      const scratch = JSON.parse(readFileSync(join(h.dir, 'flannel', c.cniId), 'utf8'));
      assert.equal(scratch.type, 'bridge');
      assert.equal(
        scratch.ipam.ranges[0][0].subnet,
        readSubnetEnv(h.subnetFile)!.FLANNEL_SUBNET!.replace(/\.1\//, '.0/'),
      );
      assert.equal(ipJson(h.ns, ['link', 'show', 'master', 'cni0']).length, 1);
    }
  });

  it('carries pings between the containers across the hosts', () => {
    const [a, b] = hosts as [Host, Host];
    assert.ok(containerOf(a).pings(b.ip!), `container on ${a.ns} pings ${b.ip} on ${b.ns}`);
    assert.ok(containerOf(b).pings(a.ip!), `container on ${b.ns} pings ${a.ip} on ${a.ns}`);
  });

  it('kill and removal run DEL: the IP, the scratch file and the veth are gone', async () => {
    for (const h of hosts) {
      const c = containerOf(h);
      assert.equal(await c.kill(), 137, `ctr run ends with the killed task's status; output: ${c.output}`);
      assert.doesNotMatch(c.output, /network review|level=error/, 'ctr logged no DEL error');
      assert.deepEqual(
        h.containerd!.ctrOk(['containers', 'ls', '-q']).trim(),
        '',
        'ctr run --rm removed the container',
      );
      assert.equal(existsSync(join(h.dir, 'ipam/cbr0', h.ip!)), false, `host-local freed ${h.ip}`);
      assert.equal(existsSync(join(h.dir, 'flannel', c.cniId)), false, 'the scratch file is removed');
      assert.deepEqual(ipJson(h.ns, ['link', 'show', 'master', 'cni0']), [], 'no veth left on cni0');
      assert.deepEqual(readdirSync(join(h.containerd!.cniCacheDir, 'results')), [], 'libcni dropped its cached result');
    }
  });
});
