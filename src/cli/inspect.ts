// `flannelctl doctor` and `flannelctl trace`: read this node (src/inspect) with flanneld's own flags, then run every
// check (doctor) or walk one packet's path (trace); `lab doctor <host>` / `lab trace` run them inside lab hosts.
// Exit 0: nothing wrong; 1: an error finding or a stopped trace; 2: the node could not be inspected.
import { spawnSync } from 'node:child_process';
import { etcdOptionsOf, parseFlags } from '../daemon/flags.ts';
import { diagnose } from '../inspect/checks.ts';
import { readNode, type ReadOptions } from '../inspect/read.ts';
import { diagnosisJson, formatDiagnosis } from '../inspect/report.ts';
import { formatTrace, traceJson, tracePath, TraceError } from '../inspect/trace.ts';
import { readTrace } from '../inspect/trace-read.ts';
import { runProbe, withCounts } from '../inspect/trace-probe.ts';
import { processExec } from '../util/exec.ts';
import { isIPv4 } from '../ip/ipv4.ts';
import { isIPv6 } from '../ip/ipv6.ts';
import { errorMessage } from '../log/log.ts';
import { isCompiled } from '../util/self.ts';
import type { PeersOutput } from './peers.ts';

/** Why this process cannot inspect the node, or undefined when it can. */
function cannotInspect(command: string): string | undefined {
  // bun cannot run the netlink package's addon (docs/single-executable.md): say so instead of crashing.
  if (isCompiled) {
    return (
      `flannelctl ${command}: this single executable cannot read the kernel (the netlink module needs Node.js); run ` +
      `\`node <flannel-ts>/dist/flannelctl.cjs ${command}\`, e.g. in the flannel pod: ` +
      `kubectl -n kube-flannel exec <pod> -c kube-flannel -- /opt/flannel-ts/dist/flannelctl.cjs ${command}\n`
    );
  }
  // The rule listers need root, and a partial picture would report healthy rules as missing.
  if (process.getuid?.() !== 0)
    return `flannelctl ${command}: run it as root (it reads iptables, nftables and the kernel tables like flanneld does)\n`;
  return undefined;
}

/**
 * What to read, from the command's flanneld flags as given ('' when not): flanneld's own flag parser supplies the
 * defaults and the FLANNELD_<NAME> variables, so doctor and trace read exactly what flanneld would.
 */
function readOptionsOf(strings: Record<string, string>, flags: Record<string, boolean>): ReadOptions {
  // --health-url and --peer-netns are ours; the rest are flanneld's flags.
  const {
    'health-url': healthUrl,
    'peer-netns': _peers,
    'probe-netns': _from,
    'node-name': _name,
    ...flanneldFlags
  } = strings;
  const argv = Object.entries(flanneldFlags)
    .filter(([, v]) => v !== '')
    .map(([k, v]) => `--${k}=${v}`);
  if (flags['kube-subnet-mgr']) argv.push('--kube-subnet-mgr');
  const o = parseFlags(argv, process.env);
  return {
    subnetFile: o.subnetFile,
    healthUrl: healthUrl || undefined,
    publicIP: o.publicIP || undefined,
    probe: flags.probe ?? false,
    cluster: o.kubeSubnetMgr
      ? {
          kind: 'kube',
          apiUrl: o.kubeApiUrl || undefined,
          kubeconfigFile: o.kubeconfigFile || undefined,
          netConfigPath: o.netConfigPath,
          annotationPrefix: o.kubeAnnotationPrefix,
        }
      : { kind: 'etcd', etcd: etcdOptionsOf(o) },
  };
}

export async function runDoctor(
  strings: Record<string, string>,
  flags: Record<string, boolean>,
  io: PeersOutput,
): Promise<number> {
  const why = cannotInspect('doctor');
  if (why) {
    io.err(why);
    return 2;
  }
  let o;
  try {
    o = readOptionsOf(strings, flags);
  } catch (e) {
    io.err(`flannelctl doctor: ${errorMessage(e)}\n`);
    return 2;
  }
  let snapshot;
  try {
    snapshot = await readNode(o);
  } catch (e) {
    io.err(`flannelctl doctor: cannot inspect this node: ${errorMessage(e)}\n`);
    return 2;
  }
  const d = diagnose(snapshot);
  io.out(flags.json ? diagnosisJson(d) : formatDiagnosis(d));
  return d.ok ? 0 : 1;
}

/** `--peer-netns IP=NETNS:SUBNET_FILE,…`: nodes trace can read in a namespace of this host (the lab's hosts). */
export function parsePeerNetns(text: string): Map<string, { netns: string; subnetFile: string }> {
  const out = new Map<string, { netns: string; subnetFile: string }>();
  for (const item of text.split(',').filter(Boolean)) {
    const m = /^([^=]+)=([^:]+):(.+)$/.exec(item);
    if (!m) throw new Error(`--peer-netns entry "${item}" is not IP=NETNS:SUBNET_FILE`);
    out.set(m[1]!, { netns: m[2]!, subnetFile: m[3]! });
  }
  return out;
}

export async function runTrace(
  args: string[],
  strings: Record<string, string>,
  flags: Record<string, boolean>,
  io: PeersOutput,
): Promise<number> {
  const why = cannotInspect('trace');
  if (why) {
    io.err(why);
    return 2;
  }
  const [src, dst] = args as [string, string];
  for (const ip of [src, dst]) {
    if (!isIPv4(ip) && !isIPv6(ip)) {
      io.err(
        `flannelctl trace: "${ip}" is not a pod IP (IPv4 or IPv6); in the lab, \`lab trace\` also takes pod names\n`,
      );
      return 2;
    }
  }
  let input;
  let peers: ReturnType<typeof parsePeerNetns>;
  try {
    const o = readOptionsOf(strings, flags);
    peers = parsePeerNetns(strings['peer-netns'] ?? '');
    input = await readTrace({
      src,
      dst,
      local: { ...o, probe: false, name: strings['node-name'] || 'this node' },
      remote: (ip) => {
        const p = peers.get(ip);
        return (
          p && { ...o, probe: false, healthUrl: undefined, netns: p.netns, subnetFile: p.subnetFile, name: p.netns }
        );
      },
    });
  } catch (e) {
    io.err(`flannelctl trace: cannot inspect this node: ${errorMessage(e)}\n`);
    return 2;
  }
  let trace;
  try {
    trace = tracePath(input);
  } catch (e) {
    if (!(e instanceof TraceError)) throw e;
    io.err(`flannelctl trace: ${e.message}\n`);
    return 2;
  }
  if (flags.probe) {
    const remoteNs = input.remote && [...peers.values()].find((p) => p.netns === input.remote!.name)?.netns;
    try {
      const result = await runProbe(input, {
        local: { name: input.local.name, exec: processExec() },
        ...(remoteNs ? { remote: { name: remoteNs, exec: processExec(remoteNs), netns: remoteNs } } : {}),
        from: { netns: strings['probe-netns'] || undefined, exec: processExec(strings['probe-netns'] || undefined) },
      });
      trace = withCounts(trace, input, result);
    } catch (e) {
      io.err(`flannelctl trace: ${errorMessage(e)}\n`);
      return 2;
    }
  }
  io.out(flags.json ? traceJson(trace) : formatTrace(trace));
  const probe = trace.probe;
  return trace.stoppedAt || (probe && probe.received < probe.sent) ? 1 : 0;
}

/** `flannelctl <command>` run by `self` inside `ns` (a lab host) with `args`; its exit code. */
export function runInNetns(ns: string, self: string[], command: string, args: string[]): number {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...self, command, ...args], { stdio: 'inherit', timeout: 120_000 });
  if (r.error) throw new Error(`running flannelctl ${command} in ${ns} failed: ${r.error.message}`);
  return r.status ?? 2;
}
