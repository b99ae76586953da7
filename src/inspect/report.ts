// doctor's output: for a person, findings grouped by layer with evidence and fix; for scripts, the JSON contract.
import type { Diagnosis } from './checks.ts';
import type { Finding, FindingId } from './findings.ts';

const LAYERS: ReadonlyArray<[string, readonly FindingId[]]> = [
  [
    'host and underlay',
    ['flanneld-not-running', 'ip-forward-disabled', 'bridge-nf-call', 'underlay-route', 'hostgw-not-adjacent'],
  ],
  ['flannel device', ['vtep-mismatch', 'mtu-mismatch']],
  ['peers', ['peer-unprogrammed', 'peer-mac-mismatch', 'peer-stale', 'overlay-unreachable']],
  ['rules', ['forward-blocked', 'masquerade-missing', 'overlay-port-blocked']],
  ['CNI bridge', ['cni-bridge-mismatch', 'subnet-env-mismatch']],
  ['cluster', ['public-ip-duplicate', 'cluster-unreachable']],
];

export function formatDiagnosis(d: Diagnosis): string {
  if (d.findings.length === 0) return `All is well: ${d.checked.length} checks found nothing wrong.\n`;
  const lines: string[] = [];
  for (const [layer, ids] of LAYERS) {
    const found = d.findings.filter((f) => ids.includes(f.id));
    if (found.length === 0) continue;
    lines.push(`${layer}:`);
    for (const f of found) lines.push(...findingLines(f), '');
  }
  const errors = d.findings.filter((f) => f.severity === 'error').length;
  lines.push(`${errors} error(s), ${d.findings.length - errors} warning(s).`);
  return `${lines.join('\n')}\n`;
}

function findingLines(f: Finding): string[] {
  return [
    `  ${f.severity.toUpperCase()} [${f.id}] ${f.summary}`,
    ...f.evidence.map((e) => `      ${e}`),
    `    fix: ${f.fix}`,
  ];
}

/** `{"ok", "findings": [{"id", "severity", "summary", "evidence", "fix"}], "checked"}`. */
export function diagnosisJson(d: Diagnosis): string {
  return `${JSON.stringify({ ok: d.ok, findings: d.findings, checked: d.checked })}\n`;
}
