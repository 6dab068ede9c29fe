// What a registry exports, read from the registry itself: name, type, labels and help of each metric.
// The README's metric table and the monitoring manifests' checks use it, so neither can drift from the code.

import type { Registry } from 'prom-client';

export interface MetricDescription {
  readonly name: string;
  readonly type: string;
  /** Label names as registered; histograms also carry `le`, which is not listed. */
  readonly labels: readonly string[];
  readonly help: string;
  /** Histograms only: the bucket upper bounds, +Inf left out. */
  readonly buckets?: readonly number[];
}

/** Every metric registered in `registry`, sorted by name. */
export function describeMetrics(registry: Registry): MetricDescription[] {
  return registry
    .getMetricsAsArray()
    .map((metric) => {
      const type = String(metric.type);
      const buckets = numbersIn(metric, 'upperBounds').filter((b) => b !== Infinity);
      return {
        name: metric.name,
        type,
        labels: stringsIn(metric, 'labelNames'),
        help: metric.help,
        ...(type === 'histogram' ? { buckets } : {}),
      };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// prom-client keeps `labelNames` and `upperBounds` on its metrics but leaves them out of MetricObject.
function fieldOf(metric: object, key: string): unknown[] {
  const value: unknown = Object.getOwnPropertyDescriptor(metric, key)?.value;
  return Array.isArray(value) ? value : [];
}

function stringsIn(metric: object, key: string): string[] {
  return fieldOf(metric, key).filter((v): v is string => typeof v === 'string');
}

function numbersIn(metric: object, key: string): number[] {
  return fieldOf(metric, key).filter((v): v is number => typeof v === 'number');
}
