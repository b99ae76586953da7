// What flanneld reports its metrics to: DaemonMetrics when /metrics is served (--healthz-port), else nothing at all.
// Without a port nobody can read them, so prom-client is not even loaded (a quarter of flanneld's module load time).
import type { SubnetManager } from '../subnet/lease.ts';
import type { DaemonMetrics } from './metrics.ts';

export type MetricsSink = Pick<
  DaemonMetrics,
  'serveNetwork' | 'setLeaseExpiry' | 'subnetWatch' | 'ruleRepair' | 'observeLeases'
>;

/** Takes every report and keeps none. */
export const NO_METRICS: MetricsSink = {
  serveNetwork: () => undefined,
  setLeaseExpiry: () => undefined,
  subnetWatch: () => ({ failed: () => undefined, relisted: () => undefined }),
  ruleRepair: () => () => undefined,
  observeLeases: (sm: SubnetManager) => sm,
};

/** The served metrics (with prom-client's process metrics), loaded only now. */
export async function servedMetrics(): Promise<DaemonMetrics> {
  const { DaemonMetrics } = await import('./metrics.ts');
  return new DaemonMetrics({ processMetrics: true });
}
