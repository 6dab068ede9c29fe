// Early warning: notices when a cluster range crosses 80 % and 95 % used, before CIDRNotAvailable.
// Each threshold fires once per crossing and re-arms only after usage falls a margin below it.

import type { RangeUsage } from '../allocator/types.js';

export const NEARLY_FULL_THRESHOLDS: readonly number[] = [0.8, 0.95];
/** Usage must drop this far below a threshold to re-arm it, so a range at 80 % ± 1 node does not flap. */
export const REARM_MARGIN = 0.05;

export interface Crossing {
  readonly clusterCIDR: string;
  readonly threshold: number;
  /** used / capacity when crossed; used counts reserved and quarantined subnets, like the usage gauge. */
  readonly fraction: number;
  readonly used: number;
  readonly capacity: number;
}

export class RangeFillWatch {
  readonly #thresholds: readonly number[];
  readonly #margin: number;
  /** clusterCIDR -> thresholds crossed and not re-armed yet. */
  readonly #crossed = new Map<string, Set<number>>();

  constructor(thresholds: readonly number[] = NEARLY_FULL_THRESHOLDS, margin = REARM_MARGIN) {
    this.#thresholds = [...thresholds].sort((a, b) => a - b);
    this.#margin = margin;
  }

  /** The thresholds newly crossed since the last call, lowest first; re-arms those left behind. */
  observe(usage: readonly RangeUsage[]): Crossing[] {
    const crossings: Crossing[] = [];
    for (const u of usage) {
      if (u.capacity <= 0) continue;
      const fraction = u.used / u.capacity;
      let crossed = this.#crossed.get(u.clusterCIDR);
      for (const threshold of this.#thresholds) {
        if (crossed?.has(threshold) === true) {
          if (fraction < threshold - this.#margin) crossed.delete(threshold);
          continue;
        }
        if (fraction < threshold) continue;
        if (crossed === undefined) this.#crossed.set(u.clusterCIDR, (crossed = new Set()));
        crossed.add(threshold);
        crossings.push({ clusterCIDR: u.clusterCIDR, threshold, fraction, used: u.used, capacity: u.capacity });
      }
    }
    return crossings;
  }

  /** The highest threshold each range is past (and not re-armed), 0 when none; for the gauge. */
  levels(): Map<string, number> {
    const levels = new Map<string, number>();
    for (const [cidr, crossed] of this.#crossed) levels.set(cidr, Math.max(0, ...crossed));
    return levels;
  }
}

export function describeCrossing(c: Crossing): string {
  const percent = (x: number): string => `${Math.round(x * 1000) / 10} %`;
  return (
    `cluster CIDR ${c.clusterCIDR} is ${percent(c.fraction)} used (${c.used} of ${c.capacity} node subnets), ` +
    `past ${percent(c.threshold)}; append a range to podcidr-allocator-config or remove stale Nodes before it runs out`
  );
}
