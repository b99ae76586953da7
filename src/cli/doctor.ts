// `flannelctl doctor`: read this node (src/inspect), run every check, print the findings; `lab doctor <host>` runs it
// inside a lab host. Exit 0: no error finding; 1: an error finding; 2: the node could not be inspected.
import { spawnSync } from 'node:child_process';
import { etcdOptionsOf, parseFlags } from '../daemon/flags.ts';
import { diagnose } from '../inspect/checks.ts';
import { readNode } from '../inspect/read.ts';
import { diagnosisJson, formatDiagnosis } from '../inspect/report.ts';
import { errorMessage } from '../log/log.ts';
import { isCompiled } from '../util/self.ts';
import type { PeersOutput } from './peers.ts';

/**
 * `strings` are doctor's flanneld flags as given ('' when not): flanneld's own flag parser supplies the defaults and
 * the FLANNELD_<NAME> variables, so doctor reads exactly what flanneld would.
 */
export async function runDoctor(strings: Record<string, string>, flags: Record<string, boolean>, io: PeersOutput): Promise<number> {
  // bun cannot run the netlink package's addon (docs/single-executable.md): say so instead of crashing.
  if (isCompiled) {
    io.err(
      'flannelctl doctor: this single executable cannot read the kernel (the netlink module needs Node.js); run ' +
        '`node <flannel-ts>/dist/flannelctl.cjs doctor`, e.g. in the flannel pod: ' +
        'kubectl -n kube-flannel exec <pod> -c kube-flannel -- /opt/flannel-ts/dist/flannelctl.cjs doctor\n',
    );
    return 2;
  }
  // The rule listers need root, and a partial picture would report healthy rules as missing.
  if (process.getuid?.() !== 0) {
    io.err('flannelctl doctor: run it as root (it reads iptables, nftables and the kernel tables like flanneld does)\n');
    return 2;
  }
  // --health-url is doctor's own; the rest are flanneld's flags.
  const { 'health-url': healthUrl, ...flanneldFlags } = strings;
  const argv = Object.entries(flanneldFlags).filter(([, v]) => v !== '').map(([k, v]) => `--${k}=${v}`);
  if (flags['kube-subnet-mgr']) argv.push('--kube-subnet-mgr');
  let o;
  try {
    o = parseFlags(argv, process.env);
  } catch (e) {
    io.err(`flannelctl doctor: ${errorMessage(e)}\n`);
    return 2;
  }
  let snapshot;
  try {
    snapshot = await readNode({
      subnetFile: o.subnetFile,
      healthUrl: healthUrl || undefined,
      publicIP: o.publicIP || undefined,
      probe: flags.probe ?? false,
      cluster: o.kubeSubnetMgr
        ? { kind: 'kube', apiUrl: o.kubeApiUrl || undefined, kubeconfigFile: o.kubeconfigFile || undefined, netConfigPath: o.netConfigPath, annotationPrefix: o.kubeAnnotationPrefix }
        : { kind: 'etcd', etcd: etcdOptionsOf(o) },
    });
  } catch (e) {
    io.err(`flannelctl doctor: cannot inspect this node: ${errorMessage(e)}\n`);
    return 2;
  }
  const d = diagnose(snapshot);
  io.out(flags.json ? diagnosisJson(d) : formatDiagnosis(d));
  return d.ok ? 0 : 1;
}

/** `flannelctl doctor` run by `self` inside `ns` (a lab host) with `args`; its exit code. */
export function runDoctorInNetns(ns: string, self: string[], args: string[]): number {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...self, 'doctor', ...args], { stdio: 'inherit', timeout: 60_000 });
  if (r.error) throw new Error(`running flannelctl doctor in ${ns} failed: ${r.error.message}`);
  return r.status ?? 2;
}
