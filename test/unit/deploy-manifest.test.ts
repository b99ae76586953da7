// deploy/kube-flannel.yml and the Dockerfile, checked against the code they run: flags, paths, configs, image layout.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseNetworkConfig } from '../../src/config/parse.ts';
import { backendFactories } from '../../src/backend/registry.ts';
import { configVersion, decodeConfig, parseNetConf } from '../../src/cni/netconf.ts';
import { delegateBytes } from '../../src/cni/delegate.ts';
import { parseSubnetEnv } from '../../src/subnet/subnet-env.ts';
import { parseFlags, validateOptions } from '../../src/daemon/flags.ts';
import { parseInstallArgs } from '../../src/cli/install.ts';

const ROOT = join(import.meta.dirname, '../..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const VERSION = (JSON.parse(read('package.json')) as { version: string }).version;
// flanneld's kube-mode config file default (--net-config-path, docs/COMPATIBILITY.md,
// "flanneld flags and environment").
const NET_CONFIG_PATH = '/etc/kube-flannel/net-conf.json';

type Obj = Record<string, any>;

function loadManifest(): Obj[] {
  const docs = parseAllDocuments(read('deploy/kube-flannel.yml'));
  assert.ok(Array.isArray(docs), 'deploy/kube-flannel.yml is empty');
  for (const d of docs) {
    assert.deepEqual(d.errors.map(String), [], 'YAML errors');
    assert.deepEqual(d.warnings.map(String), [], 'YAML warnings');
  }
  return docs.map((d) => d.toJS() as Obj).filter((d) => d !== null);
}

const DOCS = loadManifest();
function one(kind: string): Obj {
  const found = DOCS.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `expected exactly one ${kind}`);
  return found[0]!;
}
const DS = one('DaemonSet');
const POD = DS.spec.template.spec as Obj;
const MAIN = (POD.containers as Obj[]).find((c) => c.name === 'kube-flannel')!;
const INIT = (name: string) => (POD.initContainers as Obj[]).find((c) => c.name === name)!;
const CM = one('ConfigMap');

/** The volume behind a path inside a container: hostPath/configMap plus the path below the mount. */
function resolveMount(container: Obj, path: string): { volume: Obj; rest: string } {
  const mounts = (container.volumeMounts ?? []) as Obj[];
  const m = mounts
    .filter(
      (v) =>
        path === posix.normalize(v.mountPath) || path.startsWith(posix.normalize(v.mountPath).replace(/\/?$/, '/')),
    )
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  assert.ok(m, `${container.name}: nothing is mounted at ${path}`);
  const volume = (POD.volumes as Obj[]).find((v) => v.name === m.name);
  assert.ok(volume, `${container.name}: volume ${m.name} is not declared`);
  return { volume, rest: posix.relative(posix.normalize(m.mountPath), path) };
}

describe('deploy/kube-flannel.yml', () => {
  it('every document parses and has apiVersion, kind and metadata.name; namespaced ones live in kube-flannel', () => {
    assert.deepEqual(
      DOCS.map((d) => d.kind),
      ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'DaemonSet'],
    );
    for (const d of DOCS) {
      assert.equal(typeof d.apiVersion, 'string', `${d.kind}: apiVersion`);
      assert.ok(d.metadata?.name, `${d.kind}: metadata.name`);
      if (['ServiceAccount', 'ConfigMap', 'DaemonSet'].includes(d.kind))
        assert.equal(d.metadata.namespace, 'kube-flannel', d.kind);
    }
    assert.equal(one('Namespace').metadata.labels['pod-security.kubernetes.io/enforce'], 'privileged');
  });

  it('grants exactly the least rights: pods get, nodes get/list/watch, nodes/status patch', () => {
    const rules = (one('ClusterRole').rules as Obj[]).flatMap((r) =>
      (r.apiGroups as string[]).flatMap((g) =>
        (r.resources as string[]).flatMap((res) => (r.verbs as string[]).map((v) => `${g}/${res}:${v}`)),
      ),
    );
    assert.deepEqual(rules.sort(), ['/nodes/status:patch', '/nodes:get', '/nodes:list', '/nodes:watch', '/pods:get']);
    const binding = one('ClusterRoleBinding');
    assert.deepEqual(binding.roleRef, {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: one('ClusterRole').metadata.name,
    });
    const sa = one('ServiceAccount');
    assert.deepEqual(binding.subjects, [
      { kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace },
    ]);
    assert.equal(POD.serviceAccountName, sa.metadata.name);
  });

  it('net-conf.json is the spec default and parses as flanneld parses it (and as etcd mode would validate it)', () => {
    const text = CM.data['net-conf.json'] as string;
    const conf = parseNetworkConfig(text, { validate: false });
    assert.equal(conf.network?.toString(), '10.244.0.0/16');
    assert.equal(conf.backendType, 'vxlan');
    assert.equal(conf.enableNFTables, false);
    assert.ok(conf.backendType in backendFactories, `backend ${conf.backendType} is not registered`);
    assert.doesNotThrow(() => parseNetworkConfig(text, { validate: true }));
  });

  it('cni-conf.json is a conflist whose flannel entry our plugin accepts and turns into the spec delegate', () => {
    const list = decodeConfig(CM.data['cni-conf.json'] as string);
    assert.equal(list.name, 'cbr0');
    assert.equal(configVersion(list), '0.3.1');
    const plugins = list.plugins as Obj[];
    assert.deepEqual(
      plugins.map((p) => p.type),
      ['flannel', 'portmap'],
    );
    // libcni hands each plugin its entry with the list's name and cniVersion injected.
    const netconf = parseNetConf({ ...plugins[0], name: list.name, cniVersion: list.cniVersion });
    const env = parseSubnetEnv(
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
      'subnet.env',
    );
    assert.equal(
      delegateBytes(netconf, env),
      '{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}',
    );
    assert.equal(netconf.subnetFile, parseFlags([], {}).subnetFile, 'the plugin reads the subnet file flanneld writes');
  });

  it('runs flanneld with --ip-masq --kube-subnet-mgr and a healthz port the probes use', () => {
    const env = Object.fromEntries((MAIN.env as Obj[]).filter((e) => 'value' in e).map((e) => [e.name, e.value]));
    const opts = parseFlags([...(MAIN.command as string[]).slice(1), ...(MAIN.args as string[])], env);
    validateOptions(opts);
    assert.equal(opts.kubeSubnetMgr, true);
    assert.equal(opts.ipMasq, true);
    assert.equal(opts.healthzPort, 8081);
    assert.deepEqual(
      {
        path: MAIN.livenessProbe.httpGet.path,
        port: MAIN.livenessProbe.httpGet.port,
        delay: MAIN.livenessProbe.initialDelaySeconds,
        period: MAIN.livenessProbe.periodSeconds,
      },
      { path: '/healthz', port: opts.healthzPort, delay: 10, period: 30 },
    );
    assert.deepEqual(
      {
        path: MAIN.readinessProbe.httpGet.path,
        port: MAIN.readinessProbe.httpGet.port,
        delay: MAIN.readinessProbe.initialDelaySeconds,
        period: MAIN.readinessProbe.periodSeconds,
      },
      { path: '/readyz', port: opts.healthzPort, delay: 5, period: 10 },
    );
    assert.equal(opts.healthzIP, '0.0.0.0', 'hostNetwork probes reach the node address');
  });

  it('exposes /metrics on the healthz port the way Prometheus discovers exporters: pod annotations and a named port', () => {
    const opts = parseFlags([...(MAIN.command as string[]).slice(1), ...(MAIN.args as string[])], {});
    assert.deepEqual(DS.spec.template.metadata.annotations, {
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': String(opts.healthzPort),
      'prometheus.io/path': '/metrics',
    });
    assert.deepEqual(MAIN.ports, [{ name: 'metrics', containerPort: opts.healthzPort, protocol: 'TCP' }]);
    // hostNetwork: a hostPort, when given, must equal the containerPort; none is given.
    assert.ok(POD.hostNetwork);
    assert.match(read('src/daemon/health.ts'), /path === '\/metrics'/, 'the health server serves /metrics');
  });

  it('sets the kube-mode environment: POD_NAME/POD_NAMESPACE from the pod, queue depth, cache wait', () => {
    const env = Object.fromEntries(
      (MAIN.env as Obj[]).map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
    );
    assert.deepEqual(env, {
      POD_NAME: 'metadata.name',
      POD_NAMESPACE: 'metadata.namespace',
      EVENT_QUEUE_DEPTH: '5000',
      CONT_WHEN_CACHE_NOT_READY: 'false',
    });
  });

  it('mounts the subnet file dir, the net-conf file, the xtables lock and the CNI dirs where the code expects them', () => {
    const opts = parseFlags([], {});
    const run = resolveMount(MAIN, dirname(opts.subnetFile));
    assert.deepEqual(run.volume.hostPath, { path: '/run/flannel' });
    const cfg = resolveMount(MAIN, NET_CONFIG_PATH);
    assert.equal(cfg.volume.configMap?.name, CM.metadata.name);
    assert.ok(cfg.rest in CM.data, `ConfigMap has no key ${cfg.rest}`);
    const lock = resolveMount(MAIN, '/run/xtables.lock');
    assert.deepEqual(lock.volume.hostPath, { path: '/run/xtables.lock', type: 'FileOrCreate' });
    assert.equal(lock.rest, '');

    const plugin = parseInstallArgs((INIT('install-cni-plugin').command as string[]).slice(2));
    assert.equal(plugin.mode, 0o755);
    // The runtime runs the plugin on the host, outside the image: the single executable, not a node script.
    assert.equal(plugin.source, '/opt/flannel-ts/dist/bin/flannel');
    assert.deepEqual(resolveMount(INIT('install-cni-plugin'), plugin.destination), {
      volume: { name: 'cni-plugin', hostPath: { path: '/opt/cni/bin' } },
      rest: 'flannel',
    });
    const conf = parseInstallArgs((INIT('install-cni').command as string[]).slice(2));
    assert.equal(conf.mode, 0o644);
    const src = resolveMount(INIT('install-cni'), conf.source);
    assert.equal(src.volume.configMap?.name, CM.metadata.name);
    assert.equal(src.rest, 'cni-conf.json');
    assert.deepEqual(resolveMount(INIT('install-cni'), conf.destination), {
      volume: { name: 'cni', hostPath: { path: '/etc/cni/net.d' } },
      rest: '10-flannel.conflist',
    });
    for (const name of ['install-cni-plugin', 'install-cni']) assert.equal(INIT(name).command[1], 'install');
  });

  it('runs host-networked on Linux nodes as system-node-critical with NET_ADMIN and NET_RAW only', () => {
    assert.equal(POD.hostNetwork, true);
    assert.equal(POD.priorityClassName, 'system-node-critical');
    assert.deepEqual(POD.tolerations, [{ operator: 'Exists', effect: 'NoSchedule' }]);
    assert.deepEqual(POD.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms, [
      { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] },
    ]);
    assert.deepEqual(MAIN.securityContext, { privileged: false, capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } });
    assert.deepEqual(DS.metadata.labels, { tier: 'node', app: 'flannel', 'k8s-app': 'flannel' });
    for (const [k, v] of Object.entries(DS.spec.selector.matchLabels as Obj))
      assert.equal(DS.spec.template.metadata.labels[k], v, `selector ${k}`);
  });

  it('uses the image tagged with the package.json version in every container', () => {
    const images = [...(POD.initContainers as Obj[]), ...(POD.containers as Obj[])].map((c) => c.image);
    assert.deepEqual(images, Array(3).fill(`flannel-ts:${VERSION}`));
  });
});

/** Dockerfile → instructions of the last stage (continuations joined, comments dropped) plus all stages' text. */
function dockerfile(): { stages: { from: string; lines: string[] }[] } {
  const joined = read('Dockerfile')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const stages: { from: string; lines: string[] }[] = [];
  for (const line of joined
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)) {
    if (line.startsWith('FROM ')) stages.push({ from: line, lines: [] });
    else stages.at(-1)?.lines.push(line);
  }
  return { stages };
}

describe('Dockerfile', () => {
  const { stages } = dockerfile();
  const build = stages[0]!;
  const runtime = stages.at(-1)!;
  const workdir = runtime.lines
    .filter((l) => l.startsWith('WORKDIR '))
    .at(-1)!
    .slice('WORKDIR '.length);
  const buildDir = build.lines
    .filter((l) => l.startsWith('WORKDIR '))
    .at(-1)!
    .slice('WORKDIR '.length);
  // image path → repository path, from `COPY --from=build /src/<x> <dst>`.
  const copies = runtime.lines
    .filter((l) => l.startsWith('COPY --from='))
    .map((l) => {
      const [, , from, to] = l.split(/\s+/);
      return { from: posix.relative(buildDir, from!), to: posix.resolve(workdir, to!) };
    });
  const repoPathOf = (imagePath: string): string | undefined => {
    const c = copies.find((c) => imagePath === c.to || imagePath.startsWith(`${c.to}/`));
    return c && posix.join(c.from, posix.relative(c.to, imagePath));
  };
  const builtFiles = [...read('scripts/build.mjs').matchAll(/out: '([^']+)'/g)].map((m) => m[1]!);

  it('builds from node:20-bookworm-slim in two stages: npm ci, the addon, the bundles, production dependencies only', () => {
    assert.ok(stages.length === 2);
    assert.match(read('Dockerfile'), /^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    for (const s of stages) assert.match(s.from, /^FROM \$\{NODE_IMAGE\}/);
    const run = build.lines.filter((l) => l.startsWith('RUN ')).join('\n');
    for (const step of ['npm ci', 'build-native.mjs', 'npm run build', 'npm prune --omit=dev'])
      assert.ok(run.includes(step), `build stage lacks ${step}`);
    assert.ok(
      run.indexOf('build-native.mjs') < run.indexOf('npm run build'),
      'the addon must be built before build.mjs checks it',
    );
    const apt = runtime.lines.find((l) => l.includes('apt-get install'))!;
    for (const pkg of ['iptables', 'nftables', 'iproute2'])
      assert.match(apt, new RegExp(`\\s${pkg}\\s`), `runtime lacks ${pkg}`);
  });

  it('the image holds every file the manifest runs, as produced by scripts/build.mjs', () => {
    const runs = [
      ...[...(POD.initContainers as Obj[]), ...(POD.containers as Obj[])].map((c) => c.command[0] as string),
      parseInstallArgs((INIT('install-cni-plugin').command as string[]).slice(2)).source,
    ];
    assert.ok(runs.length === 4);
    for (const p of runs) {
      const repo = repoPathOf(p);
      assert.ok(repo, `${p} is not copied into the image`);
      assert.ok(
        builtFiles.includes(repo),
        `${p} comes from ${repo}, which scripts/build.mjs does not produce (${builtFiles.join(', ')})`,
      );
    }
    // The bundles are run directly: build.mjs gives them a node shebang and mode 0755.
    assert.match(read('scripts/build.mjs'), /banner: \{ js: '#!\/usr\/bin\/env node' \}/);
    assert.match(read('scripts/build.mjs'), /chmodSync\(e\.out, 0o755\)/);
    assert.equal(repoPathOf(posix.join(workdir, 'node_modules/netlink')), 'node_modules/netlink');
    // flanneld.cjs keeps packages external: /metrics needs prom-client in the image, so a production dependency.
    assert.equal(repoPathOf(posix.join(workdir, 'node_modules/prom-client')), 'node_modules/prom-client');
    const pkg = JSON.parse(read('package.json')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    assert.match(
      pkg.dependencies['prom-client'] ?? '',
      /^\d+\.\d+\.\d+$/,
      'prom-client is a production dependency, pinned exactly',
    );
    assert.equal(pkg.devDependencies['prom-client'], undefined);
    assert.equal(
      repoPathOf(posix.join(workdir, 'build/Release/flannel_native.node')),
      'build/Release/flannel_native.node',
    );
  });

  it("its ENTRYPOINT is the manifest's flanneld", () => {
    const ep = runtime.lines.find((l) => l.startsWith('ENTRYPOINT '))!;
    assert.deepEqual(JSON.parse(ep.slice('ENTRYPOINT '.length)), MAIN.command);
  });

  it('.dockerignore keeps host build output out of the context but not a file the build copies', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const p of ['node_modules', 'dist', 'build']) assert.ok(ignored.includes(p), `.dockerignore lacks ${p}`);
    const sources = build.lines
      .filter((l) => l.startsWith('COPY ') && !l.includes('--from'))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    assert.ok(sources.length >= 5);
    for (const s of sources) {
      assert.ok(!ignored.some((i) => s === i || s.startsWith(`${i}/`)), `${s} is copied but .dockerignore excludes it`);
      assert.ok(existsSync(join(ROOT, s)), `the build copies ${s}, which the repository does not have`);
    }
  });
});
