// The results table: one row per contestant and case, with ratios against upstream and raw.
// Ratios compare runs of the same case only (same N, same limits).

import type { CaseResult } from './run-case.js';

const f = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');

export function formatTable(results: readonly CaseResult[]): string {
  const header = ['nodes', 'limits', 'contestant', 'allocated', 'alloc s', 'nodes/s', 'create s', 'peak RSS MB', 'CPU s',
    'cold start s', 'restart s', 'restart RSS MB', 'time/upstream', 'CPU/upstream', 'cold/upstream', 'rate/raw'];
  const rows = results.map((r) => {
    const peer = (name: string): CaseResult | undefined =>
      results.find((p) => p.contestant === name && p.nodes === r.nodes && p.limits === r.limits);
    const up = peer('upstream');
    const raw = peer('raw');
    return [
      String(r.nodes), r.limits, r.contestant, `${r.allocated}/${r.nodes}`, f(r.allocateSeconds), f(r.nodesPerSecond, 0),
      f(r.createSeconds), f(r.peakRssMb, 0), f(r.cpuSeconds, 1), f(r.coldStartSeconds), r.startupAllocated ? f(r.startupSeconds) : 'timeout',
      f(r.startupPeakRssMb, 0),
      up ? f(r.allocateSeconds / up.allocateSeconds) : '-',
      up ? f(r.cpuSeconds / up.cpuSeconds) : '-',
      up ? f(r.coldStartSeconds / up.coldStartSeconds) : '-',
      raw ? f(r.nodesPerSecond / raw.nodesPerSecond) : '-',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padStart(widths[i] ?? 0)).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}
