// subnet.env: written by flanneld (format + atomic write), read by the CNI plugin and by flanneld at its next start.
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { IPv4Net, formatIPv4 } from '../ip/ipv4.ts';
import { IPv6Net, formatIPv6 } from '../ip/ipv6.ts';
import { errorMessage, logger } from '../log/log.ts';
import { writeFileAtomic } from '../util/atomic-write.ts';

const log = logger('subnet-env');

export interface SubnetEnvInput {
  /** The cluster Network (FLANNEL_NETWORK); omitted when IPv4 is disabled. */
  network?: IPv4Net;
  /** This node's lease network; written with its first host address. */
  subnet?: IPv4Net;
  ipv6Network?: IPv6Net;
  ipv6Subnet?: IPv6Net;
  mtu: number;
  ipMasq: boolean;
}

/** The exact text flanneld writes, one `KEY=value` line each, in flannel's order. */
export function formatSubnetEnv(v: SubnetEnvInput): string {
  const lines: string[] = [];
  if (v.network) lines.push(`FLANNEL_NETWORK=${v.network}`);
  if (v.subnet) lines.push(`FLANNEL_SUBNET=${formatIPv4(v.subnet.ip + 1)}/${v.subnet.prefix}`);
  if (v.ipv6Network) lines.push(`FLANNEL_IPV6_NETWORK=${v.ipv6Network}`);
  if (v.ipv6Subnet) lines.push(`FLANNEL_IPV6_SUBNET=${formatIPv6(v.ipv6Subnet.ip + 1n)}/${v.ipv6Subnet.prefix}`);
  lines.push(`FLANNEL_MTU=${v.mtu}`);
  lines.push(`FLANNEL_IPMASQ=${v.ipMasq}`);
  return lines.map((l) => `${l}\n`).join('');
}

/** mkdir -p with 0755 on every directory it creates, whatever the umask (existing ones are left alone). */
function makeDirs(dir: string): void {
  const first = mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (!first) return;
  for (let d = dir; ; d = dirname(d)) {
    chmodSync(d, 0o755);
    if (d === first || d === dirname(d)) break;
  }
}

/** Atomic replace: readers (the CNI plugin) never see a half-written file. Mode 0644 whatever the umask. */
export function writeSubnetEnv(path: string, text: string): void {
  makeDirs(dirname(path));
  try {
    writeFileAtomic(path, text, 0o644);
  } catch (e) {
    throw new Error(`writing ${path}: ${errorMessage(e)}`);
  }
}

/** What the CNI plugin reads from subnet.env. Subnets are normalised to their network. */
export interface SubnetEnv {
  networks: IPv4Net[];
  ipv6Networks: IPv6Net[];
  subnet?: IPv4Net;
  ipv6Subnet?: IPv6Net;
  mtu: number;
  ipMasq: boolean;
}

function parseList<T extends { toString(): string }>(
  file: string,
  key: string,
  value: string,
  parse: (s: string) => T,
  form: string,
): T[] {
  const out: T[] = [];
  for (const entry of value.split(',')) {
    let net: T;
    try {
      net = parse(entry.trim());
    } catch {
      throw new Error(`${file}: ${key} entry "${entry}" is not a valid CIDR; write it as ${form}`);
    }
    if (!out.some((n) => n.toString() === net.toString())) out.push(net);
  }
  return out;
}

function parseOne<T>(file: string, key: string, value: string, parse: (s: string) => T, form: string): T {
  try {
    return parse(value.trim());
  } catch {
    throw new Error(`${file}: ${key} "${value}" is not a valid CIDR; write it as ${form}`);
  }
}

/**
 * The plugin-side reading: `KEY=VALUE` lines split on the first '=', no quoting; network keys are comma lists.
 * Throws "<file> is missing <keys>" when required keys are absent.
 */
export function parseSubnetEnv(text: string, fileName: string): SubnetEnv {
  let networks: IPv4Net[] | undefined;
  let ipv6Networks: IPv6Net[] | undefined;
  let subnet: IPv4Net | undefined;
  let ipv6Subnet: IPv6Net | undefined;
  let mtu: number | undefined;
  let ipMasq: boolean | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    switch (key) {
      case 'FLANNEL_NETWORK':
        networks = parseList(fileName, key, value, IPv4Net.parse, 'a.b.c.d/n[,a.b.c.d/n…]');
        break;
      case 'FLANNEL_IPV6_NETWORK':
        ipv6Networks = parseList(fileName, key, value, IPv6Net.parse, 'an IPv6 CIDR list like 2001:db8::/56');
        break;
      case 'FLANNEL_SUBNET':
        subnet = parseOne(fileName, key, value, IPv4Net.parse, 'a.b.c.d/n');
        break;
      case 'FLANNEL_IPV6_SUBNET':
        ipv6Subnet = parseOne(fileName, key, value, IPv6Net.parse, 'an IPv6 CIDR like 2001:db8::1/64');
        break;
      case 'FLANNEL_MTU':
        if (!/^\d+$/.test(value) || Number(value) > 0xffffffff) {
          throw new Error(
            `${fileName}: FLANNEL_MTU "${value}" is not an unsigned integer; write it as e.g. FLANNEL_MTU=1450`,
          );
        }
        mtu = Number(value);
        break;
      case 'FLANNEL_IPMASQ':
        ipMasq = value === 'true';
        break;
    }
  }
  const missing: string[] = [];
  if (!networks && !ipv6Networks) missing.push('FLANNEL_NETWORK', 'FLANNEL_IPV6_NETWORK');
  if (!subnet && !ipv6Subnet) missing.push('FLANNEL_SUBNET', 'FLANNEL_IPV6_SUBNET');
  if (mtu === undefined) missing.push('FLANNEL_MTU');
  if (ipMasq === undefined) missing.push('FLANNEL_IPMASQ');
  if (missing.length > 0) throw new Error(`${fileName} is missing ${missing.join(', ')}`);
  return { networks: networks ?? [], ipv6Networks: ipv6Networks ?? [], subnet, ipv6Subnet, mtu: mtu!, ipMasq: ipMasq! };
}

/** dotenv-style reading (as flanneld does): `export `, comments, blank lines and quotes are tolerated. */
function parseDotenv(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim().replace(/^export\s+/, '');
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    let value = line.slice(eq + 1).trim();
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) value = value.slice(1, -1);
    else value = value.replace(/\s+#.*$/, '');
    out.set(line.slice(0, eq).trim(), value);
  }
  return out;
}

export interface PreviousSubnet {
  network?: IPv4Net;
  subnet?: IPv4Net;
  ipv6Network?: IPv6Net;
  ipv6Subnet?: IPv6Net;
}

function previousEntry<T>(path: string, env: Map<string, string>, key: string, parse: (s: string) => T): T | undefined {
  const value = env.get(key);
  if (!value) return undefined;
  const entries = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (entries.length > 1) {
    log.error(`error reading subnet: more than 1 entry found for key ${key} in file ${path}; ignoring it`);
    return undefined;
  }
  try {
    return parse(entries[0]!);
  } catch (e) {
    log.error(`error reading subnet: ${key} in ${path}: ${errorMessage(e)}; ignoring it`);
    return undefined;
  }
}

/** The networks a previous flanneld run wrote (subnets normalised); undefined when there is no file. */
export function readPreviousSubnet(path: string): PreviousSubnet | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    log.error(`error reading previous subnet file ${path}: ${errorMessage(e)}`);
    return undefined;
  }
  const env = parseDotenv(text);
  return {
    network: previousEntry(path, env, 'FLANNEL_NETWORK', IPv4Net.parse),
    subnet: previousEntry(path, env, 'FLANNEL_SUBNET', IPv4Net.parse),
    ipv6Network: previousEntry(path, env, 'FLANNEL_IPV6_NETWORK', IPv6Net.parse),
    ipv6Subnet: previousEntry(path, env, 'FLANNEL_IPV6_SUBNET', IPv6Net.parse),
  };
}
