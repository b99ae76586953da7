// flanneld's command line (Go flag syntax) with FLANNELD_* environment fallback; pure.

export interface Options {
  etcdEndpoints: string[];
  etcdPrefix: string;
  etcdKeyfile: string;
  etcdCertfile: string;
  etcdCafile: string;
  etcdUsername: string;
  etcdPassword: string;
  kubeSubnetMgr: boolean;
  kubeApiUrl: string;
  kubeAnnotationPrefix: string;
  kubeconfigFile: string;
  netConfigPath: string;
  setNodeNetworkUnavailable: boolean;
  iface: string[];
  ifaceRegex: string[];
  ifaceCanReach: string;
  subnetFile: string;
  publicIP: string;
  publicIPv6: string;
  subnetLeaseRenewMargin: number;
  ipMasq: boolean;
  ipMasqFullyRandomDisable: boolean;
  healthzIP: string;
  healthzPort: number;
  iptablesResync: number;
  iptablesForwardRules: boolean;
  ipBlackholeRoute: boolean;
  version: boolean;
  v: number;
  help: boolean;
}

type Kind = 'string' | 'bool' | 'int' | 'list';
interface FlagDef {
  name: string;
  kind: Kind;
  key: keyof Options;
  def: string | boolean | number | string[];
  usage: string;
}

const DEFS: FlagDef[] = [
  {
    name: 'etcd-endpoints',
    kind: 'string',
    key: 'etcdEndpoints',
    def: 'http://127.0.0.1:4001,http://127.0.0.1:2379',
    usage: 'a comma-delimited list of etcd endpoints',
  },
  { name: 'etcd-prefix', kind: 'string', key: 'etcdPrefix', def: '/coreos.com/network', usage: 'etcd prefix' },
  {
    name: 'etcd-keyfile',
    kind: 'string',
    key: 'etcdKeyfile',
    def: '',
    usage: 'SSL key file used to secure etcd communication',
  },
  {
    name: 'etcd-certfile',
    kind: 'string',
    key: 'etcdCertfile',
    def: '',
    usage: 'SSL certification file used to secure etcd communication',
  },
  {
    name: 'etcd-cafile',
    kind: 'string',
    key: 'etcdCafile',
    def: '',
    usage: 'SSL Certificate Authority file used to secure etcd communication',
  },
  { name: 'etcd-username', kind: 'string', key: 'etcdUsername', def: '', usage: 'username for BasicAuth to etcd' },
  { name: 'etcd-password', kind: 'string', key: 'etcdPassword', def: '', usage: 'password for BasicAuth to etcd' },
  {
    name: 'kube-subnet-mgr',
    kind: 'bool',
    key: 'kubeSubnetMgr',
    def: false,
    usage: 'contact the Kubernetes API for subnet assignment instead of etcd',
  },
  {
    name: 'kube-api-url',
    kind: 'string',
    key: 'kubeApiUrl',
    def: '',
    usage: 'Kubernetes API server URL. Does not need to be specified if flannel is running in a pod.',
  },
  {
    name: 'kube-annotation-prefix',
    kind: 'string',
    key: 'kubeAnnotationPrefix',
    def: 'flannel.alpha.coreos.com',
    usage: 'Kubernetes annotation prefix. Can contain single slash "/", otherwise it will be appended at the end.',
  },
  {
    name: 'kubeconfig-file',
    kind: 'string',
    key: 'kubeconfigFile',
    def: '',
    usage: 'kubeconfig file location. Does not need to be specified if flannel is running in a pod.',
  },
  {
    name: 'net-config-path',
    kind: 'string',
    key: 'netConfigPath',
    def: '/etc/kube-flannel/net-conf.json',
    usage: 'path to the network configuration file (kube mode)',
  },
  {
    name: 'set-node-network-unavailable',
    kind: 'bool',
    key: 'setNodeNetworkUnavailable',
    def: true,
    usage: 'set NodeNetworkUnavailable after flannel is ready (kube mode)',
  },
  {
    name: 'iface',
    kind: 'list',
    key: 'iface',
    def: [],
    usage:
      'interface to use (IP or name) for inter-host communication. Can be specified multiple times to check each option in order. Returns the first match found.',
  },
  {
    name: 'iface-regex',
    kind: 'list',
    key: 'ifaceRegex',
    def: [],
    usage:
      'regex expression to match the first interface to use (IP or name) for inter-host communication. Can be specified multiple times to check each regex in order. Returns the first match found. Regexes are checked after specific interfaces specified by the iface option have already been checked.',
  },
  {
    name: 'iface-can-reach',
    kind: 'string',
    key: 'ifaceCanReach',
    def: '',
    usage:
      'detect interface to use (IP or name) for inter-host communication based on which will be used for provided IP. This is exactly the interface to use of command "ip route get <ip-address>"',
  },
  {
    name: 'subnet-file',
    kind: 'string',
    key: 'subnetFile',
    def: '/run/flannel/subnet.env',
    usage: 'filename where env variables (subnet, MTU, ... ) will be written to',
  },
  {
    name: 'public-ip',
    kind: 'string',
    key: 'publicIP',
    def: '',
    usage: 'IP accessible by other nodes for inter-host communication',
  },
  {
    name: 'public-ipv6',
    kind: 'string',
    key: 'publicIPv6',
    def: '',
    usage: 'IPv6 accessible by other nodes for inter-host communication',
  },
  {
    name: 'subnet-lease-renew-margin',
    kind: 'int',
    key: 'subnetLeaseRenewMargin',
    def: 60,
    usage: 'subnet lease renewal margin, in minutes, ranging from 1 to 1439',
  },
  {
    name: 'ip-masq',
    kind: 'bool',
    key: 'ipMasq',
    def: false,
    usage: 'setup IP masquerade rule for traffic destined outside of overlay network',
  },
  {
    name: 'ip-masq-fully-random-disable',
    kind: 'bool',
    key: 'ipMasqFullyRandomDisable',
    def: false,
    usage: 'disable --random-fully on the MASQUERADE rules',
  },
  {
    name: 'healthz-ip',
    kind: 'string',
    key: 'healthzIP',
    def: '0.0.0.0',
    usage: 'the IP address for healthz server to listen',
  },
  {
    name: 'healthz-port',
    kind: 'int',
    key: 'healthzPort',
    def: 0,
    usage: 'the port for healthz server to listen(0 to disable)',
  },
  {
    name: 'iptables-resync',
    kind: 'int',
    key: 'iptablesResync',
    def: 5,
    usage: 'resync period for iptables rules, in seconds',
  },
  {
    name: 'iptables-forward-rules',
    kind: 'bool',
    key: 'iptablesForwardRules',
    def: true,
    usage: 'add default accept rules to FORWARD chain in iptables',
  },
  {
    name: 'ip-blackhole-route',
    kind: 'bool',
    key: 'ipBlackholeRoute',
    def: false,
    usage: 'add a blackhole route for the own pod subnet',
  },
  { name: 'version', kind: 'bool', key: 'version', def: false, usage: 'print version and exit' },
  { name: 'v', kind: 'int', key: 'v', def: 0, usage: 'number for the log level verbosity' },
  { name: 'help', kind: 'bool', key: 'help', def: false, usage: 'print this help and exit' },
];

/** A bad command line; `exitCode` 2 also prints the usage (Go's flag package), 1 does not (flanneld's own checks). */
export class FlagError extends Error {
  readonly code = 'EFLAG';
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 2,
  ) {
    super(message);
  }
}

// flanneld rejects a bad renew margin itself (exit 1, no usage), whether out of range or not a number at all.
const exitCodeOf = (d: FlagDef): 1 | 2 => (d.key === 'subnetLeaseRenewMargin' ? 1 : 2);

function defaults(): Options {
  const o: Record<string, unknown> = {};
  for (const d of DEFS)
    o[d.key] = convert(d, String(Array.isArray(d.def) ? '' : d.def), 'default', Array.isArray(d.def) ? [] : undefined);
  return o as unknown as Options;
}

function convert(d: FlagDef, raw: string, source: string, list?: string[]): unknown {
  switch (d.kind) {
    case 'string':
      return d.key === 'etcdEndpoints'
        ? raw
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : raw;
    case 'list':
      return list ?? [raw];
    case 'bool': {
      const v = raw.toLowerCase();
      if (['1', 't', 'true'].includes(v)) return true;
      if (['0', 'f', 'false'].includes(v)) return false;
      throw new FlagError(`invalid boolean value "${raw}" for ${source} -${d.name}: use true or false`);
    }
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim()))
        throw new FlagError(`invalid value "${raw}" for ${source} -${d.name}: expected an integer`, exitCodeOf(d));
      return Number(raw.trim());
    }
  }
}

/** The environment variable that backs a flag: FLANNELD_ + upper-case name with dashes as underscores. */
export function envName(flag: string): string {
  return `FLANNELD_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/**
 * Parses argv (without node and script) and env. A flag given on the command line wins; otherwise a non-empty
 * FLANNELD_* variable applies (repeatable flags take it as one value, no comma splitting).
 */
export function parseFlags(argv: string[], env: Record<string, string | undefined>): Options {
  const opts = defaults() as unknown as Record<string, unknown>;
  const seen = new Set<string>();
  const byName = new Map(DEFS.map((d) => [d.name, d]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    const m = /^--?([^=]+)(?:=(.*))?$/s.exec(arg);
    if (!m || arg === '-') throw new FlagError(`unexpected argument "${arg}": flanneld takes only flags (see --help)`);
    const name = m[1]!;
    const d = byName.get(name) ?? (name === 'h' ? byName.get('help') : undefined);
    if (!d) throw new FlagError(`flag provided but not defined: -${name}`);
    let value = m[2];
    if (value === undefined) {
      if (d.kind === 'bool') value = 'true';
      else {
        if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${name}`, exitCodeOf(d));
        value = argv[++i]!;
      }
    }
    if (d.kind === 'list') {
      const cur = seen.has(d.name) ? (opts[d.key] as string[]) : [];
      opts[d.key] = [...cur, value];
    } else {
      opts[d.key] = convert(d, value, 'flag', undefined);
    }
    seen.add(d.name);
  }
  for (const d of DEFS) {
    if (seen.has(d.name) || d.name === 'help') continue;
    const raw = env[envName(d.name)];
    if (raw === undefined || raw === '') continue;
    opts[d.key] = convert(d, raw, `environment variable ${envName(d.name)} for`, undefined);
  }
  return opts as unknown as Options;
}

/** Checks that need more than one value's syntax. */
export function validateOptions(o: Options): void {
  if (o.subnetLeaseRenewMargin < 1 || o.subnetLeaseRenewMargin > 1439) {
    throw new FlagError('Invalid subnet-lease-renew-margin option, out of acceptable range', 1);
  }
  if (o.iptablesResync < 1)
    throw new FlagError(`--iptables-resync ${o.iptablesResync} is invalid: it must be at least 1 second`);
  if (o.healthzPort < 0 || o.healthzPort > 65535)
    throw new FlagError(`--healthz-port ${o.healthzPort} is not a valid port (0 disables the server)`);
}

export function usage(argv0: string): string {
  const lines = [`Usage: ${argv0} [OPTION]...`];
  for (const d of DEFS) {
    const def = Array.isArray(d.def) ? '' : d.def === '' ? '' : ` (default ${JSON.stringify(d.def)})`;
    const type = d.kind === 'bool' ? '' : d.kind === 'int' ? ' int' : ' string';
    lines.push(`  -${d.name}${type}`, `    \t${d.usage}${def}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Effective options for the startup log line "CLI flags config: {...}", secrets masked. */
export function describeOptions(o: Options): string {
  return JSON.stringify({ ...o, etcdPassword: o.etcdPassword ? '****' : '' });
}

/** The --etcd-* flags as the etcd client takes them (unset ones left out), for flanneld and doctor alike. */
export function etcdOptionsOf(o: Options): {
  endpoints: string[];
  prefix: string;
  keyFile?: string;
  certFile?: string;
  caFile?: string;
  username?: string;
  password?: string;
} {
  return {
    endpoints: o.etcdEndpoints,
    prefix: o.etcdPrefix,
    keyFile: o.etcdKeyfile || undefined,
    certFile: o.etcdCertfile || undefined,
    caFile: o.etcdCafile || undefined,
    username: o.etcdUsername || undefined,
    password: o.etcdPassword || undefined,
  };
}
