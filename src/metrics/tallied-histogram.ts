// upstream's allocation_tries_per_request as a prom-client Histogram whose samples are read from an
// AllocatorTally at scrape time; its get() and text equal those of a Histogram fed the same observations.

import { Histogram, type Registry } from 'prom-client';
import { TRIES_BUCKETS, type AllocatorTally, type RangeTally } from './tally.js';

export interface TalliedHistogramConfig {
  readonly name: string;
  readonly help: string;
  readonly registers: Registry[];
  readonly tally: AllocatorTally;
}

/** One sample as Histogram's getForPromString() hands it to Registry: per-series labels kept apart. */
interface Sample {
  readonly labels: { le?: number | string };
  readonly sharedLabels: RangeTally['labels'];
  readonly value: number;
  readonly metricName: string;
  readonly exemplar: null | undefined;
}

interface Counts {
  readonly buckets: Float64Array;
  readonly sum: number;
  readonly count: number;
}

/**
 * prom-client's Histogram cannot be handed bucket counts, and observe() per allocation costs more than
 * the allocation. This subclass replaces getForPromString(), which Registry formats and Histogram's own
 * get() splays, with one built from the tally. Its observe() and other writers are never called: the
 * tally is its only source. reset() (Registry.resetMetrics) restarts every series from zero, as it does
 * for a Histogram.
 */
export class TalliedHistogram extends Histogram<'clusterCIDR'> {
  readonly #name: string;
  readonly #help: string;
  readonly #tally: AllocatorTally;
  /** What each range had counted at the last reset(), to subtract; empty until one. */
  #baseline = new Map<RangeTally, Counts>();

  constructor(config: TalliedHistogramConfig) {
    super({
      name: config.name,
      help: config.help,
      labelNames: ['clusterCIDR'],
      buckets: [...TRIES_BUCKETS],
      registers: config.registers,
    });
    this.#name = config.name;
    this.#help = config.help;
    this.#tally = config.tally;
  }

  override reset(): void {
    super.reset();
    // Metric's constructor calls reset() before this class's fields exist; nothing is counted then.
    if (!(#baseline in this)) return;
    this.#baseline = new Map(this.#tally.triesSeries.map((t) => [t, countsOf(t)]));
  }

  /** The shape Histogram's getForPromString() returns; prom-client calls it by name. */
  getForPromString(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    values: Sample[];
    aggregator: 'sum';
  }> {
    const values: Sample[] = [];
    for (const tally of this.#tally.triesSeries) {
      const counts = since(countsOf(tally), this.#baseline.get(tally));
      // A Histogram has no series for a label set it has not observed (since its last reset).
      if (counts.count > 0) values.push(...this.#samples(tally.labels, counts));
    }
    return Promise.resolve({ name: this.#name, help: this.#help, type: 'histogram', values, aggregator: 'sum' });
  }

  #samples(sharedLabels: RangeTally['labels'], counts: Counts): Sample[] {
    const bucket = `${this.#name}_bucket`;
    const samples: Sample[] = [];
    let cumulated = 0;
    TRIES_BUCKETS.forEach((le, i) => {
      cumulated += counts.buckets[i] ?? 0;
      samples.push({ labels: { le }, sharedLabels, value: cumulated, metricName: bucket, exemplar: null });
    });
    samples.push(
      { labels: { le: '+Inf' }, sharedLabels, value: counts.count, metricName: bucket, exemplar: null },
      { labels: {}, sharedLabels, value: counts.sum, metricName: `${this.#name}_sum`, exemplar: undefined },
      { labels: {}, sharedLabels, value: counts.count, metricName: `${this.#name}_count`, exemplar: undefined },
    );
    return samples;
  }
}

function countsOf(tally: RangeTally): Counts {
  return { buckets: tally.triesBuckets.slice(), sum: tally.triesSum, count: tally.triesCount };
}

function since(now: Counts, before: Counts | undefined): Counts {
  if (before === undefined) return now;
  return {
    buckets: now.buckets.map((n, i) => n - (before.buckets[i] ?? 0)),
    sum: now.sum - before.sum,
    count: now.count - before.count,
  };
}
