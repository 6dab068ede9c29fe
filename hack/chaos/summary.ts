// What one chaos run found, and the table and summary line printed after several runs.

export interface RunSummary {
  readonly seed: number;
  readonly ok: boolean;
  readonly kills: number;
  readonly terms: number;
  /** Graceful stops followed by a kill of the next leader, and those killed while nodes waited. */
  readonly handoffKills: number;
  readonly dangerous: number;
  readonly fastStarts: number;
  readonly staleFastStarts: number;
  readonly violations: number;
  readonly seconds: number;
  /** Where the replicas' logs are, when they were kept. */
  readonly logDir: string | undefined;
}

const COLUMNS: readonly [string, (r: RunSummary) => string][] = [
  ['seed', (r) => String(r.seed)],
  ['result', (r) => (r.ok ? 'pass' : 'FAIL')],
  ['kills', (r) => String(r.kills)],
  ['terms', (r) => String(r.terms)],
  ['handoff-kills', (r) => `${r.dangerous}/${r.handoffKills}`],
  ['fast starts', (r) => String(r.fastStarts)],
  ['stale', (r) => String(r.staleFastStarts)],
  ['violations', (r) => String(r.violations)],
  ['seconds', (r) => r.seconds.toFixed(0)],
];

/** One line per run under a header; columns padded to their widest cell. */
export function table(runs: readonly RunSummary[]): string[] {
  const rows = [COLUMNS.map(([title]) => title), ...runs.map((r) => COLUMNS.map(([, cell]) => cell(r)))];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows.map((row) => row.map((cell, i) => cell.padStart(widths[i] ?? 0)).join('  '));
}

export function summaryLine(runs: readonly RunSummary[], seconds: number): string {
  const failed = runs.filter((r) => !r.ok);
  const sum = (pick: (r: RunSummary) => number): number => runs.reduce((n, r) => n + pick(r), 0);
  const failedSeeds = failed.length > 0 ? ` (seeds ${failed.map((r) => r.seed).join(', ')})` : '';
  return (
    `${runs.length} runs: ${runs.length - failed.length} passed, ${failed.length} failed${failedSeeds}; ` +
    `handoff then kill with nodes waiting ${sum((r) => r.dangerous)} times, ` +
    `${sum((r) => r.staleFastStarts)} of ${sum((r) => r.fastStarts)} fast starts from a stale handoff; ${seconds.toFixed(0)}s`
  );
}
