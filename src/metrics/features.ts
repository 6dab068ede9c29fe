// The operator features' series: audit findings, nearly full ranges, podCIDRs set by another allocator.

import { Counter, Gauge, type Registry } from 'prom-client';
import { FLAG_POOL, type ForeignWriteObserver } from '../controller/ports.js';

/** Read at scrape time, like every gauge here; an absent source reports nothing. */
export interface FeatureSources {
  /** Findings of the last audit per kind, every kind present; 0s on a standby. */
  auditFindings?(): Readonly<Record<string, number>>;
  /** Each range of each pool of the running term with the highest warning threshold it is past, 0 when below. */
  rangeLevels?(): readonly { readonly clusterCIDR: string; readonly pool?: string; readonly level: number }[];
  /** ClusterCIDRs that cannot be served now. */
  invalidPools?(): number;
}

/** Registers the features' series into registry; returns the hook second-allocator detection calls. */
export function createFeatureMetrics(registry: Registry, sources: FeatureSources): ForeignWriteObserver {
  const registers = [registry];
  new Gauge({
    name: 'podcidr_allocator_audit_findings',
    help: 'Problems the last audit of node podCIDRs found, by kind (see the check command); 0 on a standby.',
    labelNames: ['kind'],
    registers,
    collect() {
      for (const [kind, count] of Object.entries(sources.auditFindings?.() ?? {})) this.set({ kind }, count);
    },
  });
  new Gauge({
    name: 'podcidr_allocator_range_nearly_full',
    help:
      'The highest warning threshold (0.8, 0.95) a cluster range is past, 0 when below; re-armed 5 points below. ' +
      `Per pool: the ClusterCIDR's name, or ${FLAG_POOL} for the flags' ranges.`,
    labelNames: ['clusterCIDR', 'pool'],
    registers,
    collect() {
      this.reset();
      for (const { clusterCIDR, pool, level } of sources.rangeLevels?.() ?? []) {
        this.set({ clusterCIDR, pool: pool ?? FLAG_POOL }, level);
      }
    },
  });
  new Gauge({
    name: 'podcidr_allocator_clustercidrs_invalid',
    help: 'ClusterCIDR objects that cannot be served (bad spec, or ranges that cannot be carved); see their ClusterCIDRInvalid Events.',
    registers,
    collect() {
      this.set(sources.invalidPools?.() ?? 0);
    },
  });
  const writes = new Counter({
    name: 'podcidr_allocator_foreign_podcidr_writes_total',
    help: 'Nodes whose podCIDRs another field manager set while this replica led, by manager.',
    labelNames: ['manager'],
    registers,
  });
  return { onForeignWrite: (manager) => writes.inc({ manager }) };
}
