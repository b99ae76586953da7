// Every check doctor runs over a node snapshot, by layer, and the verdict.
import type { Check, Finding, FindingId } from './findings.ts';
import type { NodeSnapshot } from './snapshot.ts';
import { clusterCheck } from './checks/cluster.ts';
import { flanneldCheck } from './checks/flanneld.ts';
import { forwardingCheck } from './checks/host.ts';
import { cniBridgeCheck, subnetEnvCheck } from './checks/subnet.ts';
import { hostgwPeersCheck } from './checks/hostgw.ts';
import { forwardCheck, masqueradeCheck, overlayPortCheck } from './checks/rules.ts';
import { udpDeviceCheck } from './checks/udp.ts';
import { overlayProbeCheck, underlayRouteCheck } from './checks/underlay.ts';
import { vxlanDeviceCheck, vxlanPeersCheck } from './checks/vxlan.ts';

export const CHECKS: readonly Check[] = [
  flanneldCheck,
  forwardingCheck,
  underlayRouteCheck,
  vxlanDeviceCheck,
  vxlanPeersCheck,
  hostgwPeersCheck,
  udpDeviceCheck,
  overlayProbeCheck,
  forwardCheck,
  masqueradeCheck,
  overlayPortCheck,
  cniBridgeCheck,
  subnetEnvCheck,
  clusterCheck,
];

export interface Diagnosis {
  ok: boolean;
  findings: Finding[];
  checked: FindingId[];
}

export function diagnose(s: NodeSnapshot, checks: readonly Check[] = CHECKS): Diagnosis {
  const run = checks.filter((c) => c.when?.(s) ?? true);
  const findings = run.flatMap((c) => c.run(s));
  return {
    ok: !findings.some((f) => f.severity === 'error'),
    findings,
    checked: [...new Set(run.flatMap((c) => c.ids))],
  };
}
