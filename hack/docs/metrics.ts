// The README's metric table, rendered from the registry that createMetrics fills.
// Only the controller's own series are listed; prom-client's process_* and nodejs_* defaults vary by platform.

import { Registry } from 'prom-client';
import { describeMetrics } from '../../src/metrics/describe.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { cell } from './readme.js';

const ours = /^(?:node_ipam_controller|podcidr_allocator)_/;

/** A registry as the controller builds it, with sources that report nothing. */
function controllerRegistry(): Registry {
  const registry = new Registry();
  createMetrics(registry, {
    usage: () => [],
    nodesWithoutPodCIDR: () => 0,
    conflicts: () => ({}),
    isLeader: () => false,
  });
  return registry;
}

export function renderMetricsTable(registry: Registry = controllerRegistry()): string {
  const rows = describeMetrics(registry)
    .filter((m) => ours.test(m.name))
    .map((m) => {
      const labels = m.labels.map((l) => `\`${l}\``).join(', ');
      const type = m.buckets === undefined ? m.type : `${m.type} (${m.buckets.join(', ')})`;
      return `| \`${m.name}\` | ${type} | ${labels} | ${cell(m.help)} |`;
    });
  return ['| metric | type (buckets) | labels | help |', '|---|---|---|---|', ...rows].join('\n');
}
