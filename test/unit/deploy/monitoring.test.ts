// Static checks of components/monitoring: every alert and panel queries a metric the controller exports,
// with labels it carries, and the dashboard is a loadable Grafana document.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { describeMetrics } from '../../../src/metrics/describe.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { findObject, loadKustomization, loadResources, manifestsDir } from './manifests.js';

const componentDir = join(manifestsDir, 'components', 'monitoring');

/**
 * The metrics the controller exports and their labels, read from the registry createMetrics fills, so an
 * alert or panel can never query a series that does not exist. Prometheus adds `pod`, `namespace`,
 * `instance` and, for histograms, `le`.
 */
const exported: Readonly<Record<string, readonly string[]>> = (() => {
  const registry = new Registry();
  createMetrics(registry, { usage: () => [], nodesWithoutPodCIDR: () => 0, conflicts: () => ({}), isLeader: () => false });
  return Object.fromEntries(describeMetrics(registry).map((m) => [m.name, m.labels]));
})();
const scrapeLabels = ['pod', 'namespace', 'instance', 'le'];

interface Rule {
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  spec: { groups: { name: string; rules: Rule[] }[] };
}
interface Panel {
  id: number;
  title: string;
  type: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string; legendFormat?: string }[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string }[] };
}

/** Our metric names in a PromQL expression; histogram series map back to their family. */
function metricsIn(expr: string): string[] {
  const names = expr.match(/\b(?:node_ipam_controller|podcidr_allocator)_[a-z_]+\b/g) ?? [];
  return names.map((n) => n.replace(/_(bucket|sum|count)$/, ''));
}

/** Labels named in `by (...)` / `without (...)` clauses. */
function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) =>
    (m[1] ?? '').split(',').map((l) => l.trim()).filter((l) => l !== ''),
  );
}

/** Problems with one expression: unknown metrics, labels none of its metrics carry, unbalanced brackets. */
function exprProblems(expr: string): string[] {
  const problems: string[] = [];
  const metrics = metricsIn(expr);
  if (metrics.length === 0) problems.push(`${expr}: queries none of our metrics`);
  for (const m of metrics) if (exported[m] === undefined) problems.push(`${expr}: ${m} is not exported`);
  const carried = new Set([...scrapeLabels, ...metrics.flatMap((m) => exported[m] ?? [])]);
  for (const label of groupingLabels(expr)) if (!carried.has(label)) problems.push(`${expr}: no metric has label ${label}`);
  let depth = 0;
  for (const ch of expr) {
    depth += ch === '(' ? 1 : ch === ')' ? -1 : 0;
    if (depth < 0) break;
  }
  if (depth !== 0) problems.push(`${expr}: unbalanced parentheses`);
  return problems;
}

/** The expression queries a series labelled by pool: two pools over one range are two series there. */
function queriesPerPool(expr: string): boolean {
  return metricsIn(expr).some((m) => exported[m]?.includes('pool'));
}

describe('the exported labels', () => {
  it('carry pool on every per-range series of ours, and only clusterCIDR on upstream ones', () => {
    const perRange = Object.entries(exported).filter(([name]) => name.startsWith('podcidr_allocator_range_'));
    expect(perRange.length).toBeGreaterThan(0);
    for (const [name, labels] of perRange) expect(labels, name).toContain('pool');
    const upstream = Object.entries(exported).filter(([name]) => name.startsWith('node_ipam_controller_'));
    for (const [name, labels] of upstream) expect(labels, name).toEqual(['clusterCIDR']);
  });
});

const resources = loadResources(componentDir);
const rules = findObject(resources, 'PrometheusRule', 'podcidr-allocator') as unknown as RuleFile;
const alerts = rules.spec.groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(readFileSync(join(componentDir, 'dashboard.json'), 'utf8')) as Dashboard;

describe('the expression checker', () => {
  it('rejects an unknown metric, a label the metric lacks and an open bracket', () => {
    expect(exprProblems('max by (node) (podcidr_allocator_range_usage')).toEqual([
      'max by (node) (podcidr_allocator_range_usage: podcidr_allocator_range_usage is not exported',
      'max by (node) (podcidr_allocator_range_usage: no metric has label node',
      'max by (node) (podcidr_allocator_range_usage: unbalanced parentheses',
    ]);
  });
});

describe('the PrometheusRule', () => {
  it('queries only exported metrics, by labels they carry', () => {
    expect(alerts.flatMap((r) => exprProblems(r.expr))).toEqual([]);
  });

  it('alerts at 80 % and at 95 % of a range, per pool and cluster CIDR, on the range gauges', () => {
    const usage = alerts.filter((r) => r.expr.includes('podcidr_allocator_range_used_cidrs'));
    const thresholds = usage.map((r) => Number(/>=\s*([\d.]+)\s*$/.exec(r.expr)?.[1]));
    expect(thresholds.sort()).toEqual([0.8, 0.95]);
    for (const rule of usage) {
      expect(groupingLabels(rule.expr), rule.alert).toEqual(expect.arrayContaining(['pool', 'clusterCIDR']));
      expect(rule.annotations?.summary, rule.alert).toContain('{{ $labels.pool }}');
    }
  });

  it('groups every alert on a per-pool series by pool, so each pool alerts apart', () => {
    const perPool = alerts.filter((r) => queriesPerPool(r.expr));
    expect(perPool.length).toBeGreaterThan(0);
    expect(perPool.filter((r) => !groupingLabels(r.expr).includes('pool')).map((r) => r.alert)).toEqual([]);
  });

  it('alerts on nodes without a podCIDR after 10 minutes, on conflicts, and on a missing leader', () => {
    const byMetric = (m: string): Rule | undefined => alerts.find((r) => metricsIn(r.expr).includes(m));
    expect(byMetric('podcidr_allocator_nodes_without_podcidr')?.for).toBe('10m');
    expect(byMetric('podcidr_allocator_conflicts')?.expr).toMatch(/>\s*0$/);
    expect(byMetric('podcidr_allocator_leader')?.expr).toContain('absent(podcidr_allocator_leader)');
  });

  it('gives every alert a unique name, a severity and a summary', () => {
    const names = alerts.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const rule of alerts) {
      expect(rule.alert, rule.expr).toMatch(/^[A-Z][A-Za-z]+$/);
      expect(['warning', 'critical']).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary).toBeTruthy();
    }
  });
});

describe('the ServiceMonitor', () => {
  it('scrapes the Service port named metrics', () => {
    const monitor = findObject(resources, 'ServiceMonitor', 'podcidr-allocator') as unknown as {
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] };
    };
    expect(monitor.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'podcidr-allocator' });
    expect(monitor.spec.endpoints.map((e) => e.port)).toEqual(['metrics']);
  });
});

describe('the Grafana dashboard', () => {
  it('is shipped in a ConfigMap that the Grafana sidecar picks up', () => {
    const generator = loadKustomization(componentDir).configMapGenerator?.find((g) => g.name === 'podcidr-allocator-dashboard');
    expect(generator?.options?.labels?.grafana_dashboard).toBe('1');
    expect(generator?.files).toEqual(['podcidr-allocator.json=dashboard.json']);
  });

  it('queries only exported metrics, by labels they carry', () => {
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    expect(exprs.flatMap(exprProblems)).toEqual([]);
  });

  it('has a panel for usage, allocations and releases, nodes without podCIDR, conflicts, leader and queue depth', () => {
    const queried = new Set(dashboard.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricsIn(t.expr))));
    for (const metric of [
      'podcidr_allocator_range_used_cidrs',
      'node_ipam_controller_cidrset_cidrs_allocations_total',
      'node_ipam_controller_cidrset_cidrs_releases_total',
      'podcidr_allocator_nodes_without_podcidr',
      'podcidr_allocator_conflicts',
      'podcidr_allocator_leader',
      'podcidr_allocator_workqueue_depth',
    ]) {
      expect(queried, metric).toContain(metric);
    }
  });

  it('groups every query of a per-pool series by pool and shows the pool in its legend', () => {
    const targets = dashboard.panels.flatMap((p) => p.targets ?? []).filter((t) => queriesPerPool(t.expr));
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) {
      expect(groupingLabels(target.expr), target.expr).toContain('pool');
      expect(target.legendFormat, target.expr).toContain('{{pool}}');
    }
  });

  it('reads from a data source variable and has unique panel ids and query ids', () => {
    expect(dashboard.uid).toBe('podcidr-allocator');
    expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource' }));
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) {
      const refIds = (panel.targets ?? []).map((t) => t.refId);
      expect(new Set(refIds).size, panel.title).toBe(refIds.length);
      expect(refIds.length, panel.title).toBeGreaterThan(0);
    }
  });

  it('lays its panels out without overlap inside the 24-column grid', () => {
    const cells = new Set<string>();
    const clashes: string[] = [];
    for (const { title, gridPos: g } of dashboard.panels) {
      if (g.x < 0 || g.x + g.w > 24) clashes.push(`${title} leaves the grid`);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          const cell = `${x},${y}`;
          if (cells.has(cell)) clashes.push(`${title} overlaps at ${cell}`);
          cells.add(cell);
        }
      }
    }
    expect(clashes).toEqual([]);
  });
});
