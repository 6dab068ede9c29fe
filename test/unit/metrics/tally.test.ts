// The tallied cidrset series against prom-client itself: the same events fed to createMetrics' observer
// and to a real Counter/Histogram pair in another registry give the same exposition text and get().

import fc from 'fast-check';
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { AllocatorObserver, RangeUsage } from '../../../src/allocator/index.js';
import { ClusterAllocator } from '../../../src/allocator/index.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { AllocatorTally, TRIES_BUCKETS } from '../../../src/metrics/tally.js';
import { parseRange } from '../../../src/allocator/range-spec.js';
import { cidrs } from '../../support/cidrs.js';

const allocations = 'node_ipam_controller_cidrset_cidrs_allocations_total';
const releases = 'node_ipam_controller_cidrset_cidrs_releases_total';
const tries = 'node_ipam_controller_cidrset_allocation_tries_per_request';
const names = [allocations, releases, tries] as const;

/** Ranges the sources report at scrape time; the allocator behind them is not needed here. */
interface Ranges {
  current: string[];
}

function usageOf(ranges: Ranges): RangeUsage[] {
  return ranges.current.map((clusterCIDR) => ({
    clusterCIDR,
    family: clusterCIDR.includes(':') ? 'IPv6' : 'IPv4',
    nodeMask: 24,
    capacity: 256,
    used: 0,
    free: 256,
    quarantined: 0,
    reserved: 0,
  }));
}

/** What createMetrics registers, built the straightforward way: prom-client called on every event. */
function reference(registry: Registry, usage: () => readonly RangeUsage[]): Required<AllocatorObserver> {
  const registers = [registry];
  const zero = (counter: Counter<'clusterCIDR'>): void => {
    for (const u of usage()) counter.inc({ clusterCIDR: u.clusterCIDR }, 0);
  };
  const allocated = new Counter({
    name: allocations,
    help: 'Counter measuring total number of CIDR allocations.',
    labelNames: ['clusterCIDR'],
    registers,
    collect() {
      zero(this);
    },
  });
  const released = new Counter({
    name: releases,
    help: 'Counter measuring total number of CIDR releases.',
    labelNames: ['clusterCIDR'],
    registers,
    collect() {
      zero(this);
    },
  });
  const histogram = new Histogram({
    name: tries,
    help: 'Histogram measuring CIDR allocation tries per request: taken subnets skipped to find a free one.',
    labelNames: ['clusterCIDR'],
    buckets: [...TRIES_BUCKETS],
    registers,
  });
  // The allocator swallows what an observer throws; prom-client throws on values it refuses.
  const quietly = (update: () => void): void => {
    try {
      update();
    } catch {
      /* as the allocator does */
    }
  };
  return {
    allocated: (clusterCIDR, n) => {
      quietly(() => allocated.inc({ clusterCIDR }));
      quietly(() => histogram.observe({ clusterCIDR }, n));
    },
    occupied: (clusterCIDR, n) => quietly(() => allocated.inc({ clusterCIDR }, n)),
    released: (clusterCIDR, n) => quietly(() => released.inc({ clusterCIDR }, n)),
  };
}

interface Pair {
  readonly ours: Registry;
  readonly theirs: Registry;
  readonly observers: readonly Required<AllocatorObserver>[];
  readonly ranges: Ranges;
}

function pair(): Pair {
  const ranges: Ranges = { current: [] };
  const ours = new Registry();
  const theirs = new Registry();
  const metrics = createMetrics(ours, {
    usage: () => usageOf(ranges),
    nodesWithoutPodCIDR: () => 0,
    conflicts: () => ({}),
    isLeader: () => true,
  });
  return { ours, theirs, observers: [metrics.allocator, reference(theirs, () => usageOf(ranges))], ranges };
}

/** Scrapes both registries the way Prometheus would and compares the three series byte for byte. */
async function expectSameSeries({ ours, theirs }: Pair): Promise<void> {
  for (const name of names) {
    expect(await ours.getSingleMetricAsString(name), name).toBe(await theirs.getSingleMetricAsString(name));
    expect(await ours.getSingleMetric(name)?.get(), name).toStrictEqual(await theirs.getSingleMetric(name)?.get());
  }
}

const rangeNames = ['10.0.0.0/8', 'fd00::/48', '172.16.0.0/12'];

type Step =
  | { readonly kind: 'allocated' | 'occupied' | 'released'; readonly range: string; readonly n: number }
  | { readonly kind: 'scrape' }
  | { readonly kind: 'ranges'; readonly ranges: string[] };

const range = fc.constantFrom(...rangeNames);
// Counts prom-client refuses are in the mix: the tally must drop them the same way.
const triesValue = fc.oneof(
  fc.integer({ min: 0, max: 2_000 }),
  fc.integer({ min: -3, max: 0 }),
  fc.constantFrom(1, 5, 25, 125, 625, 626, Number.NaN, Infinity, -Infinity),
);
const subnetsValue = fc.oneof(fc.integer({ min: 1, max: 1_000 }), fc.constantFrom(-2, Infinity, -Infinity));
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('allocated' as const), range, n: triesValue }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('occupied' as const), range, n: subnetsValue }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('released' as const), range, n: subnetsValue }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'scrape' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('ranges' as const), ranges: fc.subarray(rangeNames) }) },
);

async function run(p: Pair, steps: readonly Step[]): Promise<void> {
  for (const s of steps) {
    if (s.kind === 'scrape') await expectSameSeries(p);
    else if (s.kind === 'ranges') p.ranges.current = s.ranges;
    else for (const observer of p.observers) observer[s.kind](s.range, s.n);
  }
  await expectSameSeries(p);
}

describe('the tallied cidrset series', () => {
  it('print what prom-client prints when every event is an inc() or observe(), for any events and scrapes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 60 }), async (steps) => run(pair(), steps)),
      { numRuns: 300 },
    );
  });

  it('print the same for a real dual-stack allocator filled, churned and emptied', async () => {
    const p = pair();
    const spec = { ranges: [parseRange('10.0.0.0/16', 24), parseRange('fd00::/56', 64)] };
    const [oursObserver, theirsObserver] = p.observers;
    const ours = new ClusterAllocator({ ...spec, reserved: cidrs('10.0.7.0/24'), observer: oursObserver });
    const theirs = new ClusterAllocator({ ...spec, reserved: cidrs('10.0.7.0/24'), observer: theirsObserver });
    p.ranges.current = ours.usage().map((u) => u.clusterCIDR);
    await expectSameSeries(p);
    for (const allocator of [ours, theirs]) {
      allocator.occupy('10.0.16.0/20');
      const held: string[][] = [];
      for (let i = 0; i < 200; i++) held.push(allocator.allocate());
      for (let i = 0; i < 200; i += 3) for (const cidr of held[i] ?? []) allocator.release(cidr);
      for (let i = 0; i < 40; i++) allocator.allocate();
    }
    await expectSameSeries(p);
    for (const allocator of [ours, theirs]) allocator.release('10.0.0.0/16');
    await expectSameSeries(p);
  });

  it('restart from zero on Registry.resetMetrics(), as prom-client metrics do', async () => {
    const p = pair();
    p.ranges.current = ['10.0.0.0/8'];
    for (const o of p.observers) {
      o.allocated('10.0.0.0/8', 3);
      o.allocated('fd00::/48', 700);
      o.released('fd00::/48', 1);
    }
    await expectSameSeries(p);
    p.ours.resetMetrics();
    p.theirs.resetMetrics();
    await expectSameSeries(p);
    for (const o of p.observers) {
      o.allocated('10.0.0.0/8', 0);
      o.occupied('10.0.0.0/8', 4);
    }
    await expectSameSeries(p);
    for (const o of p.observers) o.allocated('fd00::/48', 30);
    await expectSameSeries(p);
  });

  it('count through hooks taken one by one, away from the object that holds them', async () => {
    const p = pair();
    const [observer] = p.observers;
    if (observer === undefined) throw new Error('no observer');
    const { allocated, occupied, released } = observer;
    allocated('10.0.0.0/8', 2);
    occupied('10.0.0.0/8', 3);
    released('10.0.0.0/8', 1);
    expect(await p.ours.getSingleMetricAsString(allocations)).toMatch(/\{clusterCIDR="10.0.0.0\/8"\} 4$/);
    expect(await p.ours.getSingleMetricAsString(releases)).toMatch(/\{clusterCIDR="10.0.0.0\/8"\} 1$/);
  });

  it('drop a NaN count, which would turn a prom-client counter into NaN for good', async () => {
    const p = pair();
    const [observer] = p.observers;
    observer?.occupied('10.0.0.0/8', Number.NaN);
    observer?.released('10.0.0.0/8', Number.NaN);
    observer?.occupied('10.0.0.0/8', 2);
    expect(await p.ours.getSingleMetricAsString(allocations)).toMatch(/\{clusterCIDR="10.0.0.0\/8"\} 2$/);
    expect(await p.ours.getSingleMetricAsString(releases)).not.toMatch(/clusterCIDR/);
  });
});

describe('the allocator tally', () => {
  it('counts tries per bucket without cumulating, bounds included in their own bucket', () => {
    const tally = new AllocatorTally();
    for (const n of [0, 1, 2, 5, 6, 25, 125, 625, 626, 10_000]) tally.allocated('10.0.0.0/8', n);
    const [range] = tally.triesSeries;
    expect(Array.from(range?.triesBuckets ?? [])).toEqual([2, 2, 2, 1, 1]);
    expect(range?.triesCount).toBe(10);
    expect(range?.triesSum).toBe(0 + 1 + 2 + 5 + 6 + 25 + 125 + 625 + 626 + 10_000);
    expect(range?.allocations).toBe(10);
  });

  it('keeps each range apart even when events alternate between ranges', () => {
    const tally = new AllocatorTally();
    for (let i = 0; i < 5; i++) {
      tally.allocated('10.0.0.0/8', 1);
      tally.allocated('fd00::/48', 1);
      tally.released('fd00::/48', 2);
    }
    expect(tally.allocationSeries.map((t) => [t.clusterCIDR, t.allocations])).toEqual([
      ['10.0.0.0/8', 5],
      ['fd00::/48', 5],
    ]);
    expect(tally.releaseSeries.map((t) => [t.clusterCIDR, t.releases])).toEqual([['fd00::/48', 10]]);
  });

  it('lists each series in the order its range first counted there', () => {
    const tally = new AllocatorTally();
    tally.occupied('b', 1);
    tally.allocated('a', 1);
    tally.released('a', 1);
    tally.released('b', 1);
    tally.allocated('b', 1);
    expect(tally.allocationSeries.map((t) => t.clusterCIDR)).toEqual(['b', 'a']);
    expect(tally.releaseSeries.map((t) => t.clusterCIDR)).toEqual(['a', 'b']);
    expect(tally.triesSeries.map((t) => t.clusterCIDR)).toEqual(['a', 'b']);
  });
});
