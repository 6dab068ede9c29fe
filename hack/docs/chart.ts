// Renders the Helm chart's values table into charts/podcidr-allocator/README.md: `npm run docs:chart`.
// A row per `# --` comment of values.yaml, its default from the parsed file and its type from
// values.schema.json; test/unit/docs/chart.test.ts fails when the README is stale.

import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { cell, updateReadme } from './readme.js';

export const chartDir = fileURLToPath(new URL('../../charts/podcidr-allocator/', import.meta.url));
export const chartReadmePath = `${chartDir}README.md`;

/** The parts of a JSON schema the table reads. */
export interface Schema {
  readonly type?: string | readonly string[];
  readonly enum?: readonly unknown[];
  readonly oneOf?: readonly Schema[];
  readonly $ref?: string;
  readonly items?: Schema;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly additionalProperties?: boolean | Schema;
  readonly definitions?: Readonly<Record<string, Schema>>;
}

export interface ValueDoc {
  /** Dotted, e.g. `leaderElection.enabled`. */
  readonly path: string;
  readonly description: string;
}

export function readValuesText(): string {
  return readFileSync(`${chartDir}values.yaml`, 'utf8');
}

export function readValues(): Record<string, unknown> {
  return k8s.loadYaml(readValuesText());
}

export function readSchema(): Schema {
  return JSON.parse(readFileSync(`${chartDir}values.schema.json`, 'utf8')) as Schema;
}

/**
 * The documented keys, in file order. A `# -- text` comment, and the `#` lines right after it, describe
 * the next key; the key's path comes from the indentation of the keys above it. Keys inside lists are
 * never documented (they are part of a default), so `- ` lines are skipped.
 */
export function valueDocs(text: string): ValueDoc[] {
  const docs: ValueDoc[] = [];
  const stack: { indent: number; key: string }[] = [];
  let pending: string[] | undefined;
  for (const line of text.split('\n')) {
    const opening = /^\s*# -- (.*)$/.exec(line);
    if (opening?.[1] !== undefined) {
      pending = [opening[1]];
      continue;
    }
    const more = /^\s*#\s?(.*)$/.exec(line);
    if (more?.[1] !== undefined) {
      pending?.push(more[1]);
      continue;
    }
    const entry = /^(\s*)([A-Za-z0-9_]+):(\s|$)/.exec(line);
    if (entry?.[1] === undefined || entry[2] === undefined) {
      if (line.trim() === '') pending = undefined;
      continue;
    }
    const indent = entry[1].length;
    while ((stack.at(-1)?.indent ?? -1) >= indent) stack.pop();
    stack.push({ indent, key: entry[2] });
    if (pending !== undefined) docs.push({ path: stack.map((s) => s.key).join('.'), description: pending.join(' ') });
    pending = undefined;
  }
  return docs;
}

/** The value at a dotted path; undefined when a step is missing. */
export function valueAt(values: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined), values);
}

export function resolve(schema: Schema, root: Schema): Schema {
  if (schema.$ref === undefined) return schema;
  const name = schema.$ref.replace('#/definitions/', '');
  const target = root.definitions?.[name];
  if (target === undefined) throw new Error(`values.schema.json: no definition ${schema.$ref}`);
  return resolve(target, root);
}

/** The schema of a dotted path; undefined when the schema does not describe it. */
export function schemaAt(root: Schema, path: string): Schema | undefined {
  let node: Schema | undefined = root;
  for (const k of path.split('.')) node = node === undefined ? undefined : resolve(node, root).properties?.[k];
  return node === undefined ? undefined : resolve(node, root);
}

/** `string or null`, `list`, `"info" \| "debug"`: what the schema lets a value be. */
export function typeText(schema: Schema, root: Schema): string {
  const s = resolve(schema, root);
  if (s.enum !== undefined) {
    const named = s.enum.filter((v) => v !== null && v !== '').map((v) => `\`${String(v)}\``);
    return [named.join(', '), ...(s.enum.some((v) => v === null || v === '') ? ['unset'] : [])].join(' or ');
  }
  const kinds = s.oneOf?.map((branch) => typeText(branch, root)) ?? [s.type ?? 'any'].flat().map((t) => (t === 'array' ? 'list' : t));
  return [...new Set(kinds)].join(' or ');
}

export function renderValuesTable(text = readValuesText(), schema = readSchema()): string {
  const values: unknown = k8s.loadYaml(text);
  const rows = valueDocs(text).map(({ path, description }) => {
    const node = schemaAt(schema, path);
    if (node === undefined) throw new Error(`values.schema.json does not describe ${path}`);
    const value = valueAt(values, path);
    return `| \`${path}\` | ${cell(typeText(node, schema))} | \`${cell(JSON.stringify(value) ?? 'undefined')}\` | ${cell(description)} |`;
  });
  return ['| value | type | default | description |', '|---|---|---|---|', ...rows].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const changed = updateReadme({ values: renderValuesTable() }, chartReadmePath);
  console.log(changed.length === 0 ? 'chart README.md: values table up to date' : 'chart README.md: updated the values table');
}
