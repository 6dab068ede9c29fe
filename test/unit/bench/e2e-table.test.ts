import { describe, expect, it } from 'vitest';
import type { CaseResult } from '../../../hack/bench/e2e/run-case.js';
import { formatTable } from '../../../hack/bench/e2e/table.js';

function result(contestant: string, over: Partial<CaseResult>): CaseResult {
  return {
    contestant, limits: 'equal', nodes: 1000, allocated: 1000, coldStartSeconds: 1, createSeconds: 10, allocateSeconds: 10,
    nodesPerSecond: 100, peakRssMb: 100, cpuSeconds: 4, startupSeconds: 1, startupPeakRssMb: 90, startupAllocated: true, ...over,
  };
}

/** The table's cells for one contestant, keyed by the header's column names. */
function row(table: string, contestant: string): Map<string, string> {
  const [header = [], ...rows] = table.split('\n').map((l) => l.trim().split(/\s{2,}/));
  const cells = rows.find((r) => r[2] === contestant) ?? [];
  return new Map(header.map((h, i) => [h, cells[i] ?? '']));
}

describe('the bench:e2e table', () => {
  it('gives CPU and cold start as ratios to upstream in the same case', () => {
    const table = formatTable([
      result('upstream', { cpuSeconds: 4, coldStartSeconds: 0.4 }),
      result('ours', { cpuSeconds: 3, coldStartSeconds: 0.5 }),
    ]);

    expect(row(table, 'ours').get('CPU/upstream')).toBe('0.75');
    expect(row(table, 'ours').get('cold/upstream')).toBe('1.25');
    expect(row(table, 'upstream').get('CPU/upstream')).toBe('1.00');
  });

  it('compares only runs of the same node count and limits', () => {
    const table = formatTable([
      result('upstream', { limits: 'lifted', cpuSeconds: 1 }),
      result('ours', { limits: 'equal', cpuSeconds: 3 }),
    ]);

    expect(row(table, 'ours').get('CPU/upstream')).toBe('-');
    expect(row(table, 'ours').get('cold/upstream')).toBe('-');
  });
});
