// The allocator's observer for upstream's cidrset series: counts in plain numbers per range, for
// prom-client to read at scrape time. It never throws and costs a few nanoseconds per event.

import type { AllocatorObserver } from '../controller/ports.js';

/** kube-controller-manager's buckets for allocation_tries_per_request. */
export const TRIES_BUCKETS: readonly number[] = [1, 5, 25, 125, 625];

/** What one range has counted since the process started; only the observer writes it. */
export interface RangeTally {
  readonly clusterCIDR: string;
  /** One object per range, so prom-client's label cache hits on every scrape. */
  readonly labels: { readonly clusterCIDR: string };
  allocations: number;
  releases: number;
  /**
   * Allocations per bucket of TRIES_BUCKETS, not cumulated: index i holds tries in
   * (bucket i-1, bucket i]. Tries above the last bound are only in triesCount, as in prom-client.
   */
  readonly triesBuckets: Float64Array;
  triesSum: number;
  triesCount: number;
}

/**
 * Per-range tallies of allocations, releases and tries, and for each of the three series the ranges
 * in the order they first counted something there: the order a prom-client metric would create them.
 * Counts a prom-client Counter or Histogram would refuse (negative, not finite) are dropped, and so is
 * a count of 0 subnets, which the allocator never reports: a count above 0 is what creates a series.
 */
export class AllocatorTally implements Required<AllocatorObserver> {
  readonly #byRange = new Map<string, RangeTally>();
  readonly #allocationSeries: RangeTally[] = [];
  readonly #releaseSeries: RangeTally[] = [];
  readonly #triesSeries: RangeTally[] = [];
  /** One-entry cache: consecutive events nearly always concern the same range. */
  #lastLabel = '';
  #last: RangeTally | undefined;

  allocated(clusterCIDR: string, tries: number): void {
    const tally = this.#tally(clusterCIDR);
    if (tally.allocations === 0) this.#allocationSeries.push(tally);
    tally.allocations++;
    // prom-client counts the allocation even when observe() throws on the tries.
    if (!Number.isFinite(tries)) return;
    if (tally.triesCount === 0) this.#triesSeries.push(tally);
    tally.triesCount++;
    tally.triesSum += tries;
    const bounds = TRIES_BUCKETS;
    for (let b = 0; b < bounds.length; b++) {
      if (tries <= (bounds[b] ?? 0)) {
        tally.triesBuckets[b] = (tally.triesBuckets[b] ?? 0) + 1;
        return;
      }
    }
  }

  occupied(clusterCIDR: string, subnets: number): void {
    if (!(subnets > 0 && subnets < Infinity)) return;
    const tally = this.#tally(clusterCIDR);
    if (tally.allocations === 0) this.#allocationSeries.push(tally);
    tally.allocations += subnets;
  }

  released(clusterCIDR: string, subnets: number): void {
    if (!(subnets > 0 && subnets < Infinity)) return;
    const tally = this.#tally(clusterCIDR);
    if (tally.releases === 0) this.#releaseSeries.push(tally);
    tally.releases += subnets;
  }

  /** Ranges that counted an allocation (allocate or occupy), first one first. */
  get allocationSeries(): readonly RangeTally[] {
    return this.#allocationSeries;
  }

  /** Ranges that counted a release, first one first. */
  get releaseSeries(): readonly RangeTally[] {
    return this.#releaseSeries;
  }

  /** Ranges that counted the tries of an allocation, first one first. */
  get triesSeries(): readonly RangeTally[] {
    return this.#triesSeries;
  }

  #tally(clusterCIDR: string): RangeTally {
    if (clusterCIDR === this.#lastLabel && this.#last !== undefined) return this.#last;
    let tally = this.#byRange.get(clusterCIDR);
    if (tally === undefined) {
      tally = {
        clusterCIDR,
        labels: { clusterCIDR },
        allocations: 0,
        releases: 0,
        triesBuckets: new Float64Array(TRIES_BUCKETS.length),
        triesSum: 0,
        triesCount: 0,
      };
      this.#byRange.set(clusterCIDR, tally);
    }
    this.#lastLabel = clusterCIDR;
    this.#last = tally;
    return tally;
  }
}
