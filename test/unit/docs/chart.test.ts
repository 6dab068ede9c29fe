// The chart's README values table: rendered from values.yaml's `# --` comments (run `npm run docs:chart`
// when it is stale), covering every value the schema knows, and typed from values.schema.json.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  chartReadmePath,
  readSchema,
  readValues,
  readValuesText,
  renderValuesTable,
  resolve,
  schemaAt,
  valueDocs,
  type Schema,
} from '../../../hack/docs/chart.js';
import { between } from '../../../hack/docs/readme.js';

const schema = readSchema();
const documented = new Set(valueDocs(readValuesText()).map((d) => d.path));

/** Dotted paths of every property of the chart's own objects (those refusing unknown keys). */
function ownPaths(node: Schema, prefix = ''): string[] {
  const s = resolve(node, schema);
  if (s.additionalProperties !== false || s.properties === undefined) return [];
  return Object.entries(s.properties).flatMap(([k, child]) => {
    const path = prefix === '' ? k : `${prefix}.${k}`;
    return [path, ...ownPaths(child, path)];
  });
}

describe('the chart README values table', () => {
  it('is the table rendered from values.yaml', () => {
    expect(between(readFileSync(chartReadmePath, 'utf8'), 'values'), 'chart README.md is stale: run `npm run docs:chart`').toBe(
      renderValuesTable(),
    );
  });

  it('documents every value the schema names, itself or through every key under it', () => {
    const paths = ownPaths(schema).filter((p) => p !== 'global');
    const undocumented = paths.filter((p) => !documented.has(p) && !paths.some((q) => q.startsWith(`${p}.`) && documented.has(q)));
    expect(undocumented).toEqual([]);
  });

  it('names in values.yaml only what the schema allows', () => {
    const allowed = new Set(ownPaths(schema));
    const strict = (path: string): boolean => schemaAt(schema, path)?.additionalProperties === false;
    // Keys of the chart's own objects; free-form ones (resources, affinity...) are Kubernetes' business.
    const unknown = (value: unknown, prefix: string): string[] =>
      Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
        const path = prefix === '' ? k : `${prefix}.${k}`;
        if (!allowed.has(path)) return [path];
        return strict(path) && typeof v === 'object' && v !== null ? unknown(v, path) : [];
      });
    expect(unknown(readValues(), '')).toEqual([]);
  });

  it('reads a description over several comment lines and nests keys by indentation', () => {
    const docs = valueDocs(['# -- first', '# second', 'a: 1', 'b:', '  # -- inner', '  c: 2', '  list:', '    - d: 3', 'e: 4'].join('\n'));
    expect(docs).toEqual([
      { path: 'a', description: 'first second' },
      { path: 'b.c', description: 'inner' },
    ]);
  });

  it('shows types from the schema, nullable flags and enums included', () => {
    const table = renderValuesTable();
    expect(table).toContain('| `clusterCIDR` | null or string or list | `"10.244.0.0/16"` |');
    expect(table).toContain('| `kubeAPIBurst` | integer or null | `null` |');
    expect(table).toMatch(/\| `logLevel` \| `trace`, `debug`, `info`, `warn`, `error`, `fatal` or unset \| `null` \|/);
  });
});
