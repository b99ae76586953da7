// The external commands that the code, the lab, the tests and the benchmarks run, each with the Debian package that
// has it. `make deps` installs them (the Makefile's APT_PACKAGES); test/unit/deps.test.ts keeps the two in step.
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';

export const COMMAND_PACKAGES: Readonly<Record<string, string>> = {
  ip: 'iproute2',
  bridge: 'iproute2',
  ss: 'iproute2',
  iptables: 'iptables',
  ip6tables: 'iptables',
  'iptables-restore': 'iptables',
  'ip6tables-restore': 'iptables',
  'iptables-save': 'iptables',
  'ip6tables-save': 'iptables',
  nft: 'nftables',
  etcd: 'etcd-server',
  etcdctl: 'etcd-client',
  ping: 'iputils-ping',
  iperf3: 'iperf3',
  tcpdump: 'tcpdump',
  curl: 'curl',
  openssl: 'openssl',
  ps: 'procps',
  sysctl: 'procps',
  sleep: 'coreutils',
  cat: 'coreutils',
  mkdir: 'coreutils',
  mktemp: 'coreutils',
  bash: 'bash',
  // The containerd CNI test (test/helpers/containerd.ts): a private containerd, ctr, runc, the busybox image.
  containerd: 'containerd',
  'containerd-shim-runc-v2': 'containerd',
  ctr: 'containerd',
  runc: 'runc',
  busybox: 'busybox-static',
  nsenter: 'util-linux',
  unshare: 'util-linux',
  mount: 'mount',
  sh: 'dash',
  // node-gyp, for the native addon (npm ci runs scripts/build-native.mjs).
  make: 'make',
  'g++': 'g++',
  python3: 'python3',
};

/** Part of every Debian system: never missing, so not in APT_PACKAGES. */
export const ESSENTIAL_PACKAGES = new Set(['coreutils', 'bash', 'util-linux', 'dash']);

const PATH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Where `cmd` is on PATH (plus the sbin directories `ip netns exec` also searches), or undefined. */
export function findTool(cmd: string): string | undefined {
  const dirs = [...new Set([...(process.env.PATH ?? '').split(':').filter(Boolean), ...PATH_DIRS])];
  for (const d of dirs) {
    const p = join(d, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The message for a command that is not installed: its name and how to get it. */
export function missingToolMessage(cmd: string): string {
  const pkg = COMMAND_PACKAGES[cmd];
  return pkg
    ? `${cmd} is not installed: run \`make deps\` (it installs the Debian package ${pkg})`
    : `${cmd} is not installed, and test/helpers/tools.ts does not know its package: add it there and to the Makefile's APT_PACKAGES`;
}

/** Throws at once, naming the tool and its package, when a test needs a command that is not installed. */
export function requireTool(...cmds: string[]): void {
  for (const cmd of cmds) if (!findTool(cmd)) throw new Error(missingToolMessage(cmd));
}
