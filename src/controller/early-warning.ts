// Early warning: notices when a cluster range crosses 80 % and 95 % used, before CIDRNotAvailable.
// Each threshold fires once per crossing and re-arms only after usage falls a margin below it.
// Ranges are watched per pool: two pools over one clusterCIDR fill at their own pace and warn apart.

import { FLAG_POOL, type RangeUsageInPool } from './ports.js';

export const NEARLY_FULL_THRESHOLDS: readonly number[] = [0.8, 0.95];
/** Usage must drop this far below a threshold to re-arm it, so a range at 80 % ± 1 node does not flap. */
export const REARM_MARGIN = 0.05;

export interface Crossing {
  readonly clusterCIDR: string;
  /** The range's pool; undefined where only one set of ranges exists. */
  readonly pool?: string;
  readonly threshold: number;
  /** used / capacity when crossed; used counts reserved and quarantined subnets, like the usage gauge. */
  readonly fraction: number;
  readonly used: number;
  readonly capacity: number;
}

/** One range of one pool. */
export type RangeOfPool = Pick<RangeUsageInPool, 'clusterCIDR' | 'pool'>;

export class RangeFillWatch {
  readonly #thresholds: readonly number[];
  readonly #margin: number;
  /** rangeKey -> thresholds crossed and not re-armed yet. */
  readonly #crossed = new Map<string, Set<number>>();

  constructor(thresholds: readonly number[] = NEARLY_FULL_THRESHOLDS, margin = REARM_MARGIN) {
    this.#thresholds = [...thresholds].sort((a, b) => a - b);
    this.#margin = margin;
  }

  /** The thresholds newly crossed since the last call, lowest first; re-arms those left behind. */
  observe(usage: readonly RangeUsageInPool[]): Crossing[] {
    const crossings: Crossing[] = [];
    for (const u of usage) {
      if (u.capacity <= 0) continue;
      const fraction = u.used / u.capacity;
      const key = rangeKey(u);
      let crossed = this.#crossed.get(key);
      for (const threshold of this.#thresholds) {
        if (crossed?.has(threshold) === true) {
          if (fraction < threshold - this.#margin) crossed.delete(threshold);
          continue;
        }
        if (fraction < threshold) continue;
        if (crossed === undefined) this.#crossed.set(key, (crossed = new Set()));
        crossed.add(threshold);
        crossings.push({ clusterCIDR: u.clusterCIDR, pool: u.pool, threshold, fraction, used: u.used, capacity: u.capacity });
      }
    }
    return crossings;
  }

  /** The highest threshold the range is past (and not re-armed), 0 when none; for the gauge. */
  levelOf(range: RangeOfPool): number {
    return Math.max(0, ...(this.#crossed.get(rangeKey(range)) ?? []));
  }
}

function rangeKey(range: RangeOfPool): string {
  return `${range.pool ?? FLAG_POOL}\u0000${range.clusterCIDR}`;
}

/** True when some range belongs to a ClusterCIDR: the notes then name every range's pool. */
export function servesPools(usage: readonly RangeUsageInPool[]): boolean {
  return usage.some((u) => u.pool !== undefined && u.pool !== FLAG_POOL);
}

/**
 * The note of an Event and a log line. With pools it names the range's pool, since two pools over one
 * range warn apart, and says what adds room there: a ClusterCIDR pool grows by another ClusterCIDR.
 */
export function describeCrossing(c: Crossing, namePool = false): string {
  const percent = (x: number): string => `${Math.round(x * 1000) / 10} %`;
  const ofPool = c.pool === undefined || c.pool === FLAG_POOL ? 'of the --cluster-cidr pool ' : `of ClusterCIDR ${c.pool} `;
  const named = namePool ? ofPool : '';
  const remedy =
    namePool && c.pool !== undefined && c.pool !== FLAG_POOL
      ? 'add a ClusterCIDR for these nodes or remove stale Nodes'
      : 'append a range to podcidr-allocator-config or remove stale Nodes';
  return (
    `cluster CIDR ${c.clusterCIDR} ${named}is ${percent(c.fraction)} used (${c.used} of ${c.capacity} node subnets), ` +
    `past ${percent(c.threshold)}; ${remedy} before it runs out`
  );
}
