// What doctor reports: one finding per problem, named by an id that scripts may rely on.

/** The ids are a contract (flannelctl doctor --json): add new ones, never rename one. */
export type FindingId =
  | 'subnet-env-mismatch'
  | 'cni-bridge-mismatch'
  | 'ip-forward-disabled'
  | 'bridge-nf-call'
  | 'vtep-mismatch'
  | 'mtu-mismatch'
  | 'peer-unprogrammed'
  | 'peer-mac-mismatch'
  | 'peer-stale'
  | 'public-ip-duplicate'
  | 'cluster-unreachable'
  | 'flanneld-not-running'
  | 'underlay-route'
  | 'hostgw-not-adjacent'
  | 'overlay-unreachable'
  | 'forward-blocked'
  | 'masquerade-missing'
  | 'overlay-port-blocked';

export interface Finding {
  id: FindingId;
  severity: 'error' | 'warning';
  /** What is wrong, in plain words. */
  summary: string;
  /** The exact kernel line, lease or file content it was read from. */
  evidence: string[];
  /** A command or a flag that mends it. */
  fix: string;
}

export interface Check {
  /** The ids this check can report (doctor lists them under "checked"). */
  ids: FindingId[];
  /** Whether the snapshot holds what this check reads (e.g. --probe's pings); absent means always. */
  when?(s: import('./snapshot.ts').NodeSnapshot): boolean;
  run(s: import('./snapshot.ts').NodeSnapshot): Finding[];
}
