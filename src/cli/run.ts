// flannelctl's commands, run: the command table (commands.ts) parses, then the command's handler runs. Help goes to
// stdout with exit 0; bad usage to stderr, the error naming the input and then the command's usage, with exit 2; a
// command that fails prints `flannelctl: <why>` and exits 1.
import { UsageError, type Invocation } from './command-line.ts';
import { parseFlannelctl } from './commands.ts';
import { installFile, installRequest } from './install.ts';
import { runPeers, runPeersInNetns, type PeersOutput } from './peers.ts';
import { join } from 'node:path';
import { distDir, isCompiled, nodeExecutable, selfArgv } from '../util/self.ts';
import {
  LAB_HEALTHZ_PORT,
  labDown,
  labHost,
  labRestartFlanneld,
  labStatus,
  labTraceTarget,
  labUp,
  readState,
} from '../lab/lab.ts';
import { runDoctor, runInNetns, runTrace } from './inspect.ts';
import { kubeDoctorArgs } from '../lab/kube-lab.ts';

export type CliOutput = PeersOutput;
type Handler = (inv: Invocation, io: CliOutput) => Promise<number>;

const stdio: CliOutput = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('the lab creates network namespaces: run it as root');
}

/** The flanneld flags doctor and trace read a lab host with: the lab's etcd (or API server) and its subnet.env. */
function labNodeFlags(state: ReturnType<typeof readState>, h: ReturnType<typeof labHost>): string[] {
  const source = state.kube ? kubeDoctorArgs(h) : [`--etcd-endpoints=${state.topology.etcdEndpoint}`];
  return [...source, `--subnet-file=${h.subnetFile}`];
}

/** flannelctl under node: the single executable cannot read the kernel (see cli/inspect.ts). */
function inspectingSelf(): string[] {
  return isCompiled ? [nodeExecutable(), join(distDir(), 'flannelctl.cjs')] : selfArgv();
}

/** One handler per command of the table, named as Invocation.command names it (a unit test checks the two match). */
export const HANDLERS: Readonly<Record<string, Handler>> = {
  'lab up': async ({ strings, flags }) => {
    requireRoot();
    const ok = await labUp({
      hosts: Number(strings.hosts),
      podsPerHost: Number(strings['pods-per-host']),
      backend: strings.backend!,
      distDir: distDir(),
      kube: flags.kube,
      nftables: flags.nftables,
      dualStack: flags['dual-stack'],
      ipv6Only: flags.ipv6,
    });
    return ok ? 0 : 1;
  },
  'lab status': async () => {
    requireRoot();
    return (await labStatus()) ? 0 : 1;
  },
  'lab restart': async ({ args }) => {
    requireRoot();
    await labRestartFlanneld(args[0]!, distDir());
    return 0;
  },
  'lab peers': async ({ args }) => {
    requireRoot();
    return runPeersInNetns(labHost(args[0]!).ns, LAB_HEALTHZ_PORT, selfArgv());
  },
  'lab doctor': async ({ args, flags }) => {
    requireRoot();
    const state = readState();
    const h = labHost(args[0]!, state);
    const doctorArgs = [
      ...labNodeFlags(state, h),
      `--health-url=http://127.0.0.1:${LAB_HEALTHZ_PORT}`,
      ...(flags.json ? ['--json'] : []),
      ...(flags.probe ? ['--probe'] : []),
    ];
    return runInNetns(h.ns, inspectingSelf(), 'doctor', doctorArgs);
  },
  'lab trace': async ({ args, flags }) => {
    requireRoot();
    const state = readState();
    const t = labTraceTarget(state, args[0]!, args[1]!, flags.ipv6 ?? false);
    const h = t.srcHost;
    const traceArgs = [
      t.src,
      t.dst,
      ...labNodeFlags(state, h),
      `--node-name=${h.ns}`,
      `--peer-netns=${state.topology.hosts.flatMap((x) => [x.ip, x.ipv6].filter(Boolean).map((ip) => `${ip}=${x.ns}:${x.subnetFile}`)).join(',')}`,
      ...(flags.json ? ['--json'] : []),
      ...(flags.probe ? ['--probe', `--probe-netns=${t.srcPodNs}`] : []),
    ];
    return runInNetns(h.ns, inspectingSelf(), 'trace', traceArgs);
  },
  'lab down': async () => {
    requireRoot();
    labDown();
    return 0;
  },
  install: async (inv, io) => {
    const req = installRequest(inv);
    installFile(req);
    io.err(
      `flannelctl: installed ${req.source} as ${req.destination} (mode ${req.mode.toString(8).padStart(4, '0')})\n`,
    );
    return 0;
  },
  peers: ({ strings }, io) => runPeers(strings.url!, io),
  doctor: ({ strings, flags }, io) => runDoctor(strings, flags, io),
  trace: ({ args, strings, flags }, io) => runTrace(args, strings, flags, io),
};

/** `flannelctl <argv>`: its exit code; everything it prints goes through `io`, except what the lab itself says. */
export async function runCli(argv: readonly string[], io: CliOutput = stdio, handlers = HANDLERS): Promise<number> {
  try {
    const parsed = parseFlannelctl(argv);
    if (parsed.type === 'help') {
      io.out(parsed.usage);
      return 0;
    }
    const handler = handlers[parsed.command];
    if (!handler) throw new Error(`${parsed.command} has no handler in src/cli/run.ts`);
    return await handler(parsed, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`flannelctl: ${e.message}\n${e.usage}`);
      return 2;
    }
    io.err(`flannelctl: ${(e as Error).message}\n`);
    return 1;
  }
}
