// Renders the `run` flags (src/cli/flags.ts) and the metrics into README.md: `npm run docs:flags`.
// The tables are generated, never edited by hand; test/unit/docs fails when the README is stale.

import { pathToFileURL } from 'node:url';
import { envVarName, flagSpec, runFlagNames, type FlagSpec } from '../../src/cli/flags.js';
import { renderMetricsTable } from './metrics.js';
import { cell, updateReadme } from './readme.js';

/** One row per flag, in the order of runFlags (grouped as in `--help`). */
export function renderFlagsTable(): string {
  const rows = runFlagNames.map((name) => {
    const spec = flagSpec(name);
    return `| \`--${name}\`${kindHint(spec)} | \`${envVarName(name)}\` | ${defaultText(spec)} | ${cell(spec.describe)} |`;
  });
  return ['| flag | env var | default | description |', '|---|---|---|---|', ...rows].join('\n');
}

function kindHint(spec: FlagSpec): string {
  if (spec.kind === 'boolean') return '';
  return spec.repeatable === true ? ` *${spec.kind}, repeatable*` : ` *${spec.kind}*`;
}

function defaultText(spec: FlagSpec): string {
  if (spec.defaultDescription !== undefined) return cell(spec.defaultDescription);
  return spec.default === undefined ? '' : `\`${spec.default}\``;
}

export function renderTables(): Record<string, string> {
  return { flags: renderFlagsTable(), metrics: renderMetricsTable() };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const changed = updateReadme(renderTables());
  console.log(changed.length === 0 ? 'README.md: tables up to date' : `README.md: updated ${changed.join(', ')}`);
}
