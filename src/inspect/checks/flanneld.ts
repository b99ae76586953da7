// flanneld itself, through its health server: alive (/healthz) and done setting up (/readyz).
import type { Check } from '../findings.ts';

export const flanneldCheck: Check = {
  ids: ['flanneld-not-running'],
  run(s) {
    const f = s.flanneld;
    if (!f) return [];
    const ok = (answer: string) => answer.startsWith('200');
    if (ok(f.healthz) && ok(f.readyz)) return [];
    const alive = ok(f.healthz);
    return [
      {
        id: 'flanneld-not-running',
        severity: 'error',
        summary: alive
          ? 'flanneld runs but is not ready: its rules or subnet.env are not in place yet'
          : 'flanneld does not answer: nothing programs peers or renews the lease on this node',
        evidence: [`GET ${f.url}/healthz: ${f.healthz}`, `GET ${f.url}/readyz: ${f.readyz}`],
        fix: alive
          ? "read flanneld's log (kubectl -n kube-flannel logs <pod>, or journalctl -u flanneld) for what it waits on"
          : 'start flanneld on this node (or see why its pod restarts: kubectl -n kube-flannel describe pod <pod>)',
      },
    ];
  },
};
