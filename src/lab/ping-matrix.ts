// Pod-to-pod pings across the lab, printed as a table.
import { processExec } from '../util/exec.ts';

export interface PingTarget {
  label: string;
  ip: string;
}

export interface PingResult {
  from: string;
  to: string;
  sent: number;
  received: number;
}

/** Parses iputils ping's summary line. */
export function parsePingSummary(out: string): { sent: number; received: number } | undefined {
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(out);
  return m ? { sent: Number(m[1]), received: Number(m[2]) } : undefined;
}

export async function ping(fromNs: string, ip: string, count: number): Promise<{ sent: number; received: number }> {
  const r = await processExec(fromNs, 5000 + count * 1500)('ping', [
    '-n',
    '-q',
    '-c',
    String(count),
    '-i',
    '0.2',
    '-W',
    '1',
    ip,
  ]);
  return parsePingSummary(r.stdout) ?? { sent: count, received: 0 };
}

/** Pings every target from every source, a few sources at a time (bounded work: sources × targets × count). */
export async function pingMatrix(
  sources: { label: string; ns: string }[],
  targets: PingTarget[],
  count = 3,
): Promise<PingResult[]> {
  const jobs = sources.flatMap((s) => targets.filter((t) => t.label !== s.label).map((t) => ({ s, t })));
  const results: PingResult[] = [];
  const width = 6;
  for (let i = 0; i < jobs.length; i += width) {
    const batch = jobs.slice(i, i + width);
    const done = await Promise.all(
      batch.map(async ({ s, t }) => ({ from: s.label, to: t.label, ...(await ping(s.ns, t.ip, count)) })),
    );
    results.push(...done);
  }
  return results;
}

export function lossPercent(r: { sent: number; received: number }): number {
  return r.sent === 0 ? 100 : Math.round((100 * (r.sent - r.received)) / r.sent);
}

export function formatMatrix(sources: string[], targets: PingTarget[], results: PingResult[]): string {
  const cell = (from: string, to: string) => {
    const r = results.find((x) => x.from === from && x.to === to);
    return r ? `${lossPercent(r)}%` : '-';
  };
  const headers = ['from \\ to', ...targets.map((t) => `${t.label} (${t.ip})`)];
  const rows = sources.map((s) => [s, ...targets.map((t) => cell(s, t.label))]);
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cols: string[]) => cols.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
