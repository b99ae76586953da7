// flannelctl's command table: every command, its options and arguments, with the one-line descriptions the usage
// shows. Both the parser and `--help` read it (command-line.ts); the handlers are in run.ts.
import {
  parseCommandLine,
  type CommandSpec,
  type Invocation,
  type OptionSpec,
  type ParseResult,
} from './command-line.ts';
import { DEFAULT_PEERS_URL } from './peers.ts';

// The backends flanneld has, by name: importing src/backend/registry.ts would pull the backends (and the udp
// backend's native addon) into flannelctl, which must run as a single executable; test/unit/cli-help.test.ts checks
// that the two lists agree.
export const LAB_BACKENDS = ['vxlan', 'host-gw', 'udp'] as const;

const wholeNumber = (v: string) => (/^\d+$/.test(v) ? undefined : 'expected a whole number');
const octalMode = (v: string) => (/^0?[0-7]{3}$/.test(v) ? undefined : 'not an octal permission like 0755 or 0644');

function labUpProblem({ strings, flags }: Invocation): string | undefined {
  if (flags['dual-stack'] && flags.ipv6) {
    return '--dual-stack and --ipv6 exclude each other: --dual-stack runs IPv4 and IPv6 pod networks, --ipv6 only IPv6';
  }
  // As real flannel: the udp backend encapsulates IPv4 only.
  if (strings.backend === 'udp' && (flags['dual-stack'] || flags.ipv6)) {
    return `--backend udp carries IPv4 only; use --backend vxlan or host-gw with ${flags['dual-stack'] ? '--dual-stack' : '--ipv6'}`;
  }
  return undefined;
}

const labHost = { name: 'host', description: 'a lab host, e.g. h2 (or its namespace, flab-h2)' };

// flanneld's flags for what doctor reads (each also FLANNELD_<NAME>, as for flanneld); '' means flanneld's default.
const DOCTOR_OPTIONS: Record<string, OptionSpec> = {
  'etcd-endpoints': {
    type: 'string',
    placeholder: 'URLS',
    description: 'etcd endpoints, comma-separated (default http://127.0.0.1:4001,http://127.0.0.1:2379)',
  },
  'etcd-prefix': { type: 'string', placeholder: 'PREFIX', description: 'etcd prefix (default /coreos.com/network)' },
  'etcd-cafile': { type: 'string', placeholder: 'FILE', description: "CA that signed etcd's certificate" },
  'etcd-certfile': { type: 'string', placeholder: 'FILE', description: 'client certificate for etcd' },
  'etcd-keyfile': { type: 'string', placeholder: 'FILE', description: 'client key for etcd' },
  'etcd-username': { type: 'string', placeholder: 'USER', description: 'etcd user' },
  'etcd-password': { type: 'string', placeholder: 'PASSWORD', description: 'etcd password' },
  'kube-subnet-mgr': {
    type: 'boolean',
    description: 'read the leases from the Kubernetes API (Nodes) instead of etcd',
  },
  'kube-api-url': {
    type: 'string',
    placeholder: 'URL',
    description: "Kubernetes API server URL (default: the kubeconfig's, or in-cluster)",
  },
  'kubeconfig-file': {
    type: 'string',
    placeholder: 'FILE',
    description: 'kubeconfig file (default: the in-cluster service account)',
  },
  'kube-annotation-prefix': {
    type: 'string',
    placeholder: 'PREFIX',
    description: 'Node annotation prefix (default flannel.alpha.coreos.com)',
  },
  'net-config-path': {
    type: 'string',
    placeholder: 'FILE',
    description: 'net-conf.json in kube mode (default /etc/kube-flannel/net-conf.json)',
  },
  'subnet-file': {
    type: 'string',
    placeholder: 'FILE',
    description: 'subnet.env flanneld writes (default /run/flannel/subnet.env)',
  },
  'public-ip': {
    type: 'string',
    placeholder: 'IP',
    description: "this node's public IP, when flanneld runs with --public-ip",
  },
  'health-url': {
    type: 'string',
    placeholder: 'URL',
    description: "flanneld's health server, when it runs one (e.g. http://127.0.0.1:8081)",
  },
  probe: {
    type: 'boolean',
    description: "also ping each peer's public IP and flannel address (3 echoes each, at most 32 peers)",
  },
  json: {
    type: 'boolean',
    description: 'print {"ok","findings":[{"id","severity","summary","evidence","fix"}],"checked"}',
  },
};

const { 'health-url': _health, probe: _probe, ...TRACE_FLAGS } = DOCTOR_OPTIONS;
const TRACE_OPTIONS: Record<string, OptionSpec> = {
  ...TRACE_FLAGS,
  probe: {
    type: 'boolean',
    description: 'send 3 pings from src to dst and count them at every hop (with a temporary nft trace)',
  },
  'peer-netns': {
    type: 'string',
    placeholder: 'IP=NETNS:FILE,…',
    description: "nodes readable in a namespace of this host (the node's public IP, its namespace and subnet.env)",
  },
  'probe-netns': {
    type: 'string',
    placeholder: 'NETNS',
    description: "with --probe: ping from this namespace (the src pod's); default: from this host with src as source",
  },
  'node-name': {
    type: 'string',
    placeholder: 'NAME',
    description: 'what to call this node in the hops (default "this node")',
  },
  json: {
    type: 'boolean',
    description: 'print {"hops":[{"where","what","entry","ok","count"?}],"stoppedAt"?,"reason"?,"id"?,"fix"?}',
  },
};
const podArgs = [
  { name: 'src', description: 'the source pod IP (IPv4 or IPv6)' },
  { name: 'dst', description: 'the destination pod IP' },
];

export const FLANNELCTL: CommandSpec = {
  name: 'flannelctl',
  summary:
    "flannel-ts's operator tool: a local lab cluster, atomic installs for the DaemonSet, flanneld's per-peer status.",
  commands: [
    {
      name: 'lab',
      summary: 'a local multi-host flannel cluster in network namespaces (run it as root)',
      commands: [
        {
          name: 'up',
          summary: 'start etcd (or a fake Kubernetes API), one flanneld per host and its pods; ping across them',
          options: {
            hosts: {
              type: 'string',
              placeholder: 'N',
              default: '3',
              check: wholeNumber,
              description: 'number of hosts',
            },
            'pods-per-host': {
              type: 'string',
              placeholder: 'M',
              default: '2',
              check: wholeNumber,
              description: 'pods on each host',
            },
            backend: { type: 'string', choices: LAB_BACKENDS, default: 'vxlan', description: "flanneld's backend" },
            kube: {
              type: 'boolean',
              description: 'a fake Kubernetes API server instead of etcd; flanneld runs with --kube-subnet-mgr',
            },
            nftables: { type: 'boolean', description: 'masquerade and forward rules in nftables instead of iptables' },
            'dual-stack': { type: 'boolean', description: 'an IPv6 pod network beside the IPv4 one (not with udp)' },
            ipv6: { type: 'boolean', description: 'an IPv6-only pod network (not with udp or --dual-stack)' },
          },
          check: labUpProblem,
        },
        { name: 'status', summary: "each host's processes and subnet.env, and the ping matrix again" },
        { name: 'restart', summary: "stop and start one host's flanneld", args: [labHost] },
        {
          name: 'peers',
          summary: "`flannelctl peers` inside that host (host-gw: each peer's route, and why it failed)",
          args: [labHost],
        },
        {
          name: 'doctor',
          summary: "`flannelctl doctor` inside that host, against the lab's etcd or API server",
          options: { json: DOCTOR_OPTIONS.json!, probe: DOCTOR_OPTIONS.probe! },
          args: [labHost],
        },
        {
          name: 'trace',
          summary:
            '`flannelctl trace` from the host of src, reading every lab host on the way; src and dst may be pod names (h1-p1)',
          options: {
            json: TRACE_OPTIONS.json!,
            probe: TRACE_OPTIONS.probe!,
            ipv6: { type: 'boolean', description: "trace the pods' IPv6 addresses (dual stack)" },
          },
          args: [
            { name: 'src', description: 'a pod name (h1-p1, flab-h1-p1) or pod IP' },
            { name: 'dst', description: 'a pod name or pod IP' },
          ],
        },
        { name: 'down', summary: 'remove every namespace, device, process and file the lab made' },
      ],
    },
    {
      name: 'install',
      summary: "copy a file into place atomically (the DaemonSet's init containers)",
      options: {
        mode: {
          type: 'string',
          placeholder: 'MODE',
          default: '0644',
          check: octalMode,
          description: 'permission bits of the installed file',
        },
      },
      args: [
        { name: 'source', description: 'the file to copy' },
        { name: 'destination', description: 'the full file name to install it as; its directory must exist' },
      ],
    },
    {
      name: 'doctor',
      summary:
        'inspect this node read-only and name what keeps pods from reaching each other, with the fix; exits 1 on an error',
      options: DOCTOR_OPTIONS,
    },
    {
      name: 'trace',
      summary:
        "a pod packet's path from src to dst, hop by hop from live state, and where and why it stops; exits 1 when it stops",
      options: TRACE_OPTIONS,
      args: podArgs,
    },
    {
      name: 'peers',
      summary: 'per-peer status of the local flanneld (needs --healthz-port); exits 1 when a peer failed',
      options: {
        url: {
          type: 'string',
          placeholder: 'URL',
          default: DEFAULT_PEERS_URL,
          description: "flanneld's health server",
        },
      },
    },
  ],
};

/** flannelctl's arguments (without node and the script) → help or an invocation; bad usage throws UsageError. */
export function parseFlannelctl(argv: readonly string[]): ParseResult {
  return parseCommandLine(FLANNELCTL, argv);
}
