// CNI ADD/DEL latency of the flannel plugin executable against the floor no flannel plugin can avoid: Debian's
// `bridge` plugin called directly with exactly the delegate config the flannel plugin generates. Both run in the
// same host namespace, alternating, in one run; then 50 parallel ADDs and DELs of the plugin (distinct IPs, nothing
// left behind). Run as root: `npm run bench:cni` (after `npm run build`). BENCH_CNI_RUNS sets the runs (default 30).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns, ipJson } from '../test/helpers/netns.ts';

const root = join(import.meta.dirname, '..');
const PLUGIN = process.env.FLANNEL_CNI_PLUGIN ?? join(root, 'dist/bin/flannel');
const CNI_BIN = '/usr/lib/cni';
const RUNS = Number(process.env.BENCH_CNI_RUNS ?? 30);
const PARALLEL = 50;
const TARGET_MS = 8;

interface Setup {
  host: string;
  tmp: string;
  conf: string;
  pods: string[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ms = (x: number) => x.toFixed(1).padStart(6);

function cniEnv(command: string, id: string, pod: string): NodeJS.ProcessEnv {
  // What a runtime passes: no PATH to node, CNI_PATH for the delegates.
  return {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: `/var/run/netns/${pod}`,
    CNI_IFNAME: 'eth0',
    CNI_PATH: CNI_BIN,
  };
}

/** One plugin run, timed from spawn to exit; throws with its output when it fails. */
function timed(bin: string, command: string, id: string, pod: string, stdin: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(bin, [], { input: stdin, env: cniEnv(command, id, pod), encoding: 'utf8' });
  const t = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${bin} ${command} ${id} failed (${r.status}): ${r.stdout}${r.stderr}`);
  return t;
}

function runAsync(bin: string, command: string, id: string, pod: string, stdin: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(bin, [], { env: cniEnv(command, id, pod), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (b) => (out += b));
    c.stderr.on('data', (b) => (err += b));
    c.on('error', reject);
    c.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${command} ${id} failed (${code}): ${out}${err}`)),
    );
    c.stdin.end(stdin);
  });
}

/** Inside the host namespace: the measurements. */
async function inner(s: Setup): Promise<void> {
  const conf = readFileSync(s.conf, 'utf8');
  const dataDir = join(s.tmp, 'flannel');
  // The delegate config the plugin generates: what it saved for a first container.
  timed(PLUGIN, 'ADD', 'warm', s.pods[0]!, conf);
  const delegate = readFileSync(join(dataDir, 'warm'), 'utf8');
  timed(PLUGIN, 'DEL', 'warm', s.pods[0]!, conf);

  const t = {
    bridgeAdd: [] as number[],
    bridgeDel: [] as number[],
    flannelAdd: [] as number[],
    flannelDel: [] as number[],
  };
  for (let i = 0; i < RUNS; i++) {
    const pod = s.pods[i % s.pods.length]!;
    t.bridgeAdd.push(timed(join(CNI_BIN, 'bridge'), 'ADD', `b${i}`, pod, delegate));
    t.bridgeDel.push(timed(join(CNI_BIN, 'bridge'), 'DEL', `b${i}`, pod, delegate));
    t.flannelAdd.push(timed(PLUGIN, 'ADD', `f${i}`, pod, conf));
    t.flannelDel.push(timed(PLUGIN, 'DEL', `f${i}`, pod, conf));
  }
  // Where the overhead comes from: starting the executable at all (VERSION does no work) against an empty process.
  const start = { flannel: [] as number[], empty: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    start.flannel.push(timed(PLUGIN, 'VERSION', 'v', s.pods[0]!, conf));
    start.empty.push(timed('/bin/true', 'VERSION', 'v', s.pods[0]!, conf));
  }
  const addOver = median(t.flannelAdd) - median(t.bridgeAdd);
  const delOver = median(t.flannelDel) - median(t.bridgeDel);
  console.log(`CNI plugin latency, median of ${RUNS} runs each, alternating (ms):`);
  console.log(`                          ADD     DEL`);
  console.log(`bridge (the floor)     ${ms(median(t.bridgeAdd))}  ${ms(median(t.bridgeDel))}`);
  console.log(`${PLUGIN.replace(`${root}/`, '').padEnd(22)} ${ms(median(t.flannelAdd))}  ${ms(median(t.flannelDel))}`);
  console.log(
    `overhead (b - a)       ${ms(addOver)}  ${ms(delOver)}   target <= ${TARGET_MS} ms: ADD ${addOver <= TARGET_MS ? 'met' : 'MISSED'}, DEL ${delOver <= TARGET_MS ? 'met' : 'MISSED'}`,
  );
  const startOver = median(start.flannel) - median(start.empty);
  console.log(
    `of which start-up: VERSION ${ms(median(start.flannel))} ms against /bin/true ${ms(median(start.empty))} ms = ${ms(startOver)} ms`,
  );

  // 50 containers at once, then their DELs at once.
  const ids = s.pods.slice(0, PARALLEL).map((_, i) => `p${i}`);
  const t0 = Date.now();
  const results = await Promise.all(ids.map((id, i) => runAsync(PLUGIN, 'ADD', id, s.pods[i]!, conf)));
  const addWall = Date.now() - t0;
  const ips = results.map((r) => (JSON.parse(r) as { ips: { address: string }[] }).ips[0]!.address);
  const distinct = new Set(ips).size;
  const t1 = Date.now();
  await Promise.all(ids.map((id, i) => runAsync(PLUGIN, 'DEL', id, s.pods[i]!, conf)));
  const delWall = Date.now() - t1;
  const store = join(s.tmp, 'ipam', 'cbr0');
  const leftIPs = existsSync(store) ? readdirSync(store).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
  const leftScratch = existsSync(dataDir) ? readdirSync(dataDir) : [];
  const leftVeths = ipJson(s.host, ['link', 'show', 'master', 'cni0']).length;
  console.log(
    `${PARALLEL} parallel ADDs: ${addWall} ms wall, ${distinct} distinct IPs; ${PARALLEL} parallel DELs: ${delWall} ms wall`,
  );
  console.log(
    `left behind: ${leftIPs.length} IPs in host-local's store, ${leftScratch.length} scratch files, ${leftVeths} veths on cni0`,
  );
  if (distinct !== PARALLEL || leftIPs.length + leftScratch.length + leftVeths > 0) process.exitCode = 1;
}

function setup(netns: Netns): Setup {
  const host = netns.add('fcb-host');
  const tmp = mkdtempSync(join(tmpdir(), 'flannel-bench-cni-'));
  const pods = Array.from({ length: PARALLEL }, () => netns.add('fcb-pod'));
  const subnetFile = join(tmp, 'subnet.env');
  writeFileSync(
    subnetFile,
    'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
  );
  mkdirSync(join(tmp, 'ipam'));
  // Upstream kube-flannel's plugin entry, with the files in the temp dir.
  const conf = {
    cniVersion: '0.3.1',
    name: 'cbr0',
    type: 'flannel',
    subnetFile,
    dataDir: join(tmp, 'flannel'),
    delegate: { hairpinMode: true, isDefaultGateway: true },
    ipam: { dataDir: join(tmp, 'ipam') },
  };
  const confFile = join(tmp, 'conf.json');
  writeFileSync(confFile, JSON.stringify(conf));
  return { host, tmp, conf: confFile, pods };
}

if (process.argv[2] === '--inner') {
  await inner(JSON.parse(process.argv[3]!) as Setup);
} else {
  if (process.getuid?.() !== 0) throw new Error('bench/cni.ts needs root (network namespaces)');
  if (!existsSync(PLUGIN)) throw new Error(`${PLUGIN} is missing: run \`npm run build\``);
  const netns = new Netns();
  let s: Setup | undefined;
  try {
    s = setup(netns);
    const r = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        s.host,
        process.execPath,
        '--import',
        'tsx',
        import.meta.filename,
        '--inner',
        JSON.stringify(s),
      ],
      { stdio: 'inherit' },
    );
    process.exitCode = r.status ?? 1;
  } finally {
    netns.cleanup();
    if (s) rmSync(s.tmp, { recursive: true, force: true });
  }
}
