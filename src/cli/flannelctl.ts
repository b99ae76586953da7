// flannelctl: the operator tool. `lab` runs a local multi-host cluster in network namespaces; `install` copies a file
// into place atomically (the DaemonSet's init containers); `peers` shows flanneld's per-peer status.
import { dirname, resolve } from 'node:path';
import { INSTALL_USAGE, installFile, parseInstallArgs } from './install.ts';
import { DEFAULT_PEERS_URL, PEERS_USAGE, runPeers, runPeersInNetns } from './peers.ts';
import { runKubeApiServer } from '../lab/kube-api/run.ts';
import { LAB_HEALTHZ_PORT, labDown, labHost, labRestartFlanneld, labStatus, labUp } from '../lab/lab.ts';

// The backends flanneld has (src/backend/registry.ts); the lab runs any of them.
const LAB_BACKENDS = ['vxlan', 'host-gw', 'udp'];

const USAGE = `Usage:
  flannelctl lab up [--hosts N] [--pods-per-host M] [--backend ${LAB_BACKENDS.join('|')}] [--kube] [--nftables] [--dual-stack | --ipv6]
  flannelctl lab status
  flannelctl lab restart <host>     stop and start one host's flanneld (e.g. h2)
  flannelctl lab peers <host>       \`flannelctl peers\` inside that host (host-gw: each peer's route, and why it failed)
  flannelctl lab down
  ${INSTALL_USAGE}
  ${PEERS_USAGE}
`;

function flagValue(args: string[], name: string, def: string): string {
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return def;
  const a = args[i]!;
  if (a.includes('=')) return a.slice(a.indexOf('=') + 1);
  const v = args[i + 1];
  if (v === undefined) throw new Error(`--${name} needs a value`);
  return v;
}

function intFlag(args: string[], name: string, def: number): number {
  const v = flagValue(args, name, String(def));
  if (!/^\d+$/.test(v)) throw new Error(`--${name} ${v}: expected a whole number`);
  return Number(v);
}

async function main(argv: string[]): Promise<number> {
  const [group, cmd, ...rest] = argv;
  if (group === 'install') {
    const req = parseInstallArgs(argv.slice(1));
    installFile(req);
    process.stderr.write(`flannelctl: installed ${req.source} as ${req.destination} (mode ${req.mode.toString(8).padStart(4, '0')})\n`);
    return 0;
  }
  if (group === 'peers') {
    const args = argv.slice(1);
    const stray = args.find((a, i) => !(a === '--url' || a.startsWith('--url=') || args[i - 1] === '--url'));
    if (stray !== undefined) throw new Error(`peers: unexpected argument ${stray}\n${USAGE}`);
    return runPeers(flagValue(args, 'url', DEFAULT_PEERS_URL));
  }
  if (group !== 'lab' || !cmd) {
    process.stderr.write(USAGE);
    return group === undefined || group === '--help' ? 0 : 2;
  }
  if (process.getuid?.() !== 0) throw new Error('the lab creates network namespaces: run it as root');
  // The built binaries live next to this script (dist/); under tsx, use the repo's dist/.
  const here = dirname(process.argv[1] ?? '.');
  const distDir = here.endsWith('dist') ? here : resolve(here, '../../dist');
  switch (cmd) {
    case 'up': {
      const known = ['--hosts', '--pods-per-host', '--backend', '--kube', '--nftables', '--dual-stack', '--ipv6'];
      for (const a of rest) if (a.startsWith('--') && !known.includes(a.split('=')[0]!)) throw new Error(`unknown option ${a}\n${USAGE}`);
      const backend = flagValue(rest, 'backend', 'vxlan');
      if (!LAB_BACKENDS.includes(backend)) throw new Error(`--backend ${backend}: choose one of ${LAB_BACKENDS.join(', ')}`);
      const kube = rest.includes('--kube');
      const nftables = rest.includes('--nftables');
      const dualStack = rest.includes('--dual-stack');
      const ipv6Only = rest.includes('--ipv6');
      if (dualStack && ipv6Only) throw new Error('--dual-stack and --ipv6 exclude each other: --dual-stack runs IPv4 and IPv6 pod networks, --ipv6 only IPv6');
      // As real flannel: the udp backend encapsulates IPv4 only.
      if (backend === 'udp' && (dualStack || ipv6Only)) {
        throw new Error(`--backend udp carries IPv4 only; use --backend vxlan or host-gw with ${dualStack ? '--dual-stack' : '--ipv6'}`);
      }
      const ok = await labUp({ hosts: intFlag(rest, 'hosts', 3), podsPerHost: intFlag(rest, 'pods-per-host', 2), backend, distDir, kube, nftables, dualStack, ipv6Only });
      return ok ? 0 : 1;
    }
    case 'status':
      return (await labStatus()) ? 0 : 1;
    case 'restart':
      if (!rest[0]) throw new Error(`lab restart needs a host name\n${USAGE}`);
      await labRestartFlanneld(rest[0], distDir);
      return 0;
    case 'peers':
      if (!rest[0]) throw new Error(`lab peers needs a host name\n${USAGE}`);
      // execArgv keeps tsx's loader when run from source; argv[1] is this script (dist/flannelctl.cjs or the .ts).
      return runPeersInNetns(labHost(rest[0]).ns, LAB_HEALTHZ_PORT, [...process.execArgv, process.argv[1]!]);
    case 'kube-api-server': // hidden: the lab's --kube mode runs it in its control-plane namespace
      await runKubeApiServer({
        listen: flagValue(rest, 'listen', '127.0.0.1:6443'),
        token: flagValue(rest, 'token', ''),
        nodes: flagValue(rest, 'nodes', '').split(',').filter(Boolean),
        readyFile: flagValue(rest, 'ready-file', '') || undefined,
      });
      return 0;
    case 'down':
      labDown();
      return 0;
    default:
      process.stderr.write(USAGE);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`flannelctl: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
