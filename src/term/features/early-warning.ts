// Early warning while leading: a cluster range past 80 % or 95 % used gets a log line and an Event on
// the range ConfigMap, and its level is a gauge, before CIDRNotAvailable is the first sign.

import type { Logger } from 'pino';
import { RangeFillWatch, describeCrossing, servesPools } from '../../controller/early-warning.js';
import { type Clock, repeat } from '../../time.js';
import { CurrentTerm, type TermFeature, type TermHandle } from './feature.js';
import type { RangeEvents } from './range-events.js';

export interface EarlyWarningOptions {
  readonly events: RangeEvents;
  readonly log: Logger;
  readonly clock: Clock;
  /** How often usage is compared with the thresholds. */
  readonly checkMs: number;
}

export interface RangeLevel {
  readonly clusterCIDR: string;
  /** The range's pool; undefined where only one set of ranges exists. */
  readonly pool?: string;
  /** The highest threshold the range is past, 0 when below. */
  readonly level: number;
}

export class EarlyWarning implements TermFeature {
  readonly #o: EarlyWarningOptions;
  readonly #term = new CurrentTerm();
  #fill = new RangeFillWatch();

  constructor(options: EarlyWarningOptions) {
    this.#o = options;
  }

  termStarted(term: TermHandle, signal: AbortSignal): void {
    this.#term.holdUntil(term, signal);
    this.#fill = new RangeFillWatch();
    repeat(this.#o.clock, this.#o.checkMs, signal, () => this.checkUsage());
  }

  /** Compares usage with the thresholds (the timer calls it; tests may too). */
  checkUsage(): void {
    const term = this.#term.get();
    if (term === undefined) return;
    const usage = term.allocator.usage();
    const namePool = servesPools(usage);
    for (const crossing of this.#fill.observe(usage)) {
      const note = describeCrossing(crossing, namePool);
      const { clusterCIDR, pool, threshold, used } = crossing;
      this.#o.log.warn({ clusterCIDR, pool, threshold, used }, note);
      this.#o.events.emit('Warning', 'PodCIDRRangeNearlyFull', note);
    }
  }

  /** Each range of each pool of the running term with its level; none on a standby. */
  levels(): RangeLevel[] {
    const usage = this.#term.get()?.allocator.usage() ?? [];
    return usage.map(({ clusterCIDR, pool }) => ({ clusterCIDR, pool, level: this.#fill.levelOf({ clusterCIDR, pool }) }));
  }
}
