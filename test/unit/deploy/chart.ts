// Renders charts/podcidr-allocator with the pinned helm and manifests/ with kubectl's kustomize, and reads
// both as plain objects, so that a test can hold the chart to the kustomize tree field by field.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe } from 'vitest';
import { chartDir } from '../../../hack/docs/chart.js';
import { defaultBinDir, defaultHelmPath } from '../../../hack/lib/control-plane.js';

export { chartDir };

const run = promisify(execFile);

/** A rendered object as plain JSON: no typed model in between to drop a field it does not know. */
export interface RawObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface ChartTools {
  readonly helm: string;
  readonly kubectl: string;
}

function findTools(): ChartTools | { readonly missing: string } {
  const tools = { helm: defaultHelmPath(), kubectl: join(defaultBinDir(), 'kubectl') };
  const missing = Object.values(tools).filter((path) => !existsSync(path));
  return missing.length === 0 ? tools : { missing: `${missing.join(' and ')} not built` };
}

const found = findTools();

if ('missing' in found) {
  // CI builds both with hack/build-control-plane.sh; there the chart must be tested, never skipped.
  if (process.env.REQUIRE_CONTROL_PLANE === '1') {
    throw new Error(`REQUIRE_CONTROL_PLANE=1 but ${found.missing}: run hack/build-control-plane.sh`);
  }
  console.warn(`\n!!! SKIPPING the chart tests: ${found.missing}. Run hack/build-control-plane.sh, or set REQUIRE_CONTROL_PLANE=1 to fail instead.\n`);
}

/** describe() when helm and kubectl are built; otherwise skipped, after one loud line. */
export const describeWithChartTools: typeof describe.skip = 'missing' in found ? describe.skip : describe;

export function chartTools(): ChartTools {
  if ('missing' in found) throw new Error(found.missing);
  return found;
}

async function tool(path: string, args: string[], input?: string): Promise<string> {
  const child = run(path, args, { maxBuffer: 32 * 1024 * 1024, env: { ...process.env, KUBECONFIG: '/dev/null' } });
  child.child.stdin?.end(input ?? '');
  try {
    return (await child).stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`${path.split('/').at(-1)} ${args.join(' ')} failed:\n${stderr}`, { cause: error });
  }
}

export interface RenderOptions {
  readonly release?: string;
  readonly namespace?: string;
}

/** `helm template` with `values` as the one values file; rejects with helm's message when it refuses. */
export async function helmTemplateText(values: object = {}, options: RenderOptions = {}): Promise<string> {
  const args = ['template', options.release ?? 'podcidr-allocator', chartDir, '-n', options.namespace ?? 'kube-system', '-f', '-'];
  return tool(chartTools().helm, args, JSON.stringify(values));
}

/**
 * The NOTES.txt `helm install` would print. helm prints notes only from an install, which needs an API
 * server even with --dry-run, so a copy of the chart renders NOTES.txt through `tpl` into a ConfigMap.
 */
export async function helmNotes(values: object = {}, options: RenderOptions = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'podcidr-notes-'));
  try {
    const chart = join(dir, 'chart');
    await cp(chartDir, chart, { recursive: true });
    await cp(join(chart, 'templates', 'NOTES.txt'), join(chart, 'notes-under-test.txt'));
    const template = [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: {name: notes-under-test}',
      'data:',
      '  notes: {{ tpl (.Files.Get "notes-under-test.txt") . | toJson }}',
    ].join('\n');
    await writeFile(join(chart, 'templates', 'notes-under-test.yaml'), template);
    const args = ['template', options.release ?? 'podcidr-allocator', chart, '-n', options.namespace ?? 'kube-system', '-f', '-'];
    const [configMap] = await rawObjects(await tool(chartTools().helm, [...args, '--show-only', 'templates/notes-under-test.yaml'], JSON.stringify(values)));
    const notes = (configMap as { data?: { notes?: unknown } } | undefined)?.data?.notes;
    if (typeof notes !== 'string') throw new Error('the notes did not render');
    return notes;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function helmTemplate(values: object = {}, options: RenderOptions = {}): Promise<RawObject[]> {
  return rawObjects(await helmTemplateText(values, options));
}

export async function helm(args: string[]): Promise<string> {
  return tool(chartTools().helm, args);
}

/** `kubectl kustomize dir`. */
export async function kustomize(dir: string): Promise<RawObject[]> {
  return rawObjects(await tool(chartTools().kubectl, ['kustomize', dir]));
}

/**
 * kustomize of a kustomization written to a temporary directory, e.g. the base with an image set.
 * `kustomization` gets the directory, because kustomize takes only relative paths to other roots.
 */
export async function kustomizeText(kustomization: (dir: string) => string): Promise<RawObject[]> {
  const dir = await mkdtemp(join(tmpdir(), 'podcidr-chart-'));
  try {
    await writeFile(join(dir, 'kustomization.yaml'), kustomization(dir));
    return await kustomize(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * YAML documents as plain objects, read by kubectl offline (`label --local` removing a label nobody
 * has): it keeps unknown fields, unlike the client's loadAllYaml, which maps known kinds onto typed
 * models. It adds `metadata.labels: {}` where there are none, to both sides of any comparison alike.
 */
export async function rawObjects(yaml: string): Promise<RawObject[]> {
  if (yaml.trim() === '') return [];
  const out = await tool(chartTools().kubectl, ['label', '--local', '-f', '-', '-o', 'json', 'podcidr-allocator.test/none-'], yaml);
  // One pretty-printed JSON document per object: a brace in column 0 only opens or closes one.
  return out
    .split(/(?<=^\})\n(?=\{$)/m)
    .filter((doc) => doc.trim() !== '')
    .map((doc) => JSON.parse(doc) as RawObject);
}

export function key(o: RawObject): string {
  return `${o.kind}/${o.metadata.name}`;
}

export function byKey(objects: readonly RawObject[]): Map<string, RawObject> {
  return new Map(objects.map((o) => [key(o), o]));
}

export function findRaw(objects: readonly RawObject[], kind: string, name: string): RawObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind}/${name} among ${objects.map(key).join(', ')}`);
  return found;
}

/** Labels that only say who rendered an object (Helm or kustomize) and for which release. */
export const standardLabels = [
  'helm.sh/chart',
  'app.kubernetes.io/instance',
  'app.kubernetes.io/version',
  'app.kubernetes.io/managed-by',
  'app.kubernetes.io/part-of',
] as const;

const labelMaps = new Set(['labels', 'matchLabels', 'selector']);

/**
 * A copy without the standard labels, wherever a label map holds them: metadata, pod template,
 * selectors (a Service's `spec.selector` is a plain map), affinity terms. Nothing else changes.
 */
export function withoutStandardLabels<T>(value: T): T {
  return strip(structuredClone(value)) as T;
}

function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (typeof value !== 'object' || value === null) return value;
  const copy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (labelMaps.has(k) && typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const rest = Object.fromEntries(Object.entries(strip(v) as Record<string, unknown>).filter(([l]) => !(standardLabels as readonly string[]).includes(l)));
      copy[k] = rest;
    } else {
      copy[k] = strip(v);
    }
  }
  return copy;
}

/** The container args of the controller's Deployment. */
export function deploymentArgs(objects: readonly RawObject[], name = 'podcidr-allocator'): string[] {
  const spec = findRaw(objects, 'Deployment', name).spec as {
    template: { spec: { containers: { name: string; args?: string[] }[] } };
  };
  const container = spec.template.spec.containers.find((c) => c.name === 'podcidr-allocator');
  if (container === undefined) throw new Error('no podcidr-allocator container');
  return container.args ?? [];
}
