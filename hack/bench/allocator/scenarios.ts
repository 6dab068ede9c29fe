// The allocator benchmark scenarios on the TypeScript side, through the string API the controller uses and
// with the metrics it ships. Each mirrors hack/bench/cidrset-go/main.go: same PRNG, order and checksum.

import { Counter, Histogram, Registry } from 'prom-client';
import { ClusterAllocator, parseRange, type AllocatorObserver, type RangeSpec } from '../../../src/allocator/index.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { TRIES_BUCKETS } from '../../../src/metrics/tally.js';

export interface ScenarioResult {
  readonly ops: number;
  readonly bestNs: number;
  readonly opsPerSecond: number;
  readonly checksum: string;
}

/** xorshift32: the same sequence as the Go side's rng for the same seed. */
export class XorShift32 {
  #x: number;
  constructor(seed: number) {
    this.#x = seed >>> 0;
  }
  next(): number {
    let x = this.#x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#x = x >>> 0;
    return this.#x;
  }
}

/** FNV-1a (32 bit) over the texts joined by newlines, as the Go side computes it. */
export function checksum(texts: readonly string[]): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < texts.length; i++) {
    if (i > 0) h = Math.imul(h ^ 10, 0x01000193) >>> 0;
    const text = texts[i] ?? '';
    for (let k = 0; k < text.length; k++) h = Math.imul(h ^ text.charCodeAt(k), 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * How the scenarios observe the allocator. `production`: the observer the controller ships,
 * createMetrics(...).allocator in a registry of its own, built before the allocator as the wiring does,
 * so the figures include upstream's cidrset metrics as they are counted in production. `prom-client`:
 * the same three series updated through prom-client's inc()/observe() on every event, for comparison.
 * `none`: no metrics (only to list test subnets).
 */
export type Metering = 'production' | 'prom-client' | 'none';

/** An allocator of one range and the registry its metrics are in (none without metrics). */
export interface Metered {
  readonly allocator: ClusterAllocator;
  readonly registry: Registry | undefined;
}

export function newAllocator(cluster: string, mask: number, metering: Metering, also?: RangeSpec): Metered {
  const ranges = [parseRange(cluster, mask), ...(also === undefined ? [] : [also])];
  if (metering === 'none') return { allocator: new ClusterAllocator({ ranges }), registry: undefined };
  const registry = new Registry();
  if (metering === 'prom-client') {
    return { allocator: new ClusterAllocator({ ranges, observer: promClientObserver(registry) }), registry };
  }
  // The metrics read the allocator at scrape time; the allocator needs the metrics' observer.
  const live: { allocator?: ClusterAllocator } = {};
  const metrics = createMetrics(registry, {
    usage: () => live.allocator?.usage() ?? [],
    nodesWithoutPodCIDR: () => 0,
    conflicts: () => ({}),
    isLeader: () => true,
  });
  live.allocator = new ClusterAllocator({ ranges, observer: metrics.allocator });
  return { allocator: live.allocator, registry };
}

/** The same three series through prom-client's own per-call API. */
function promClientObserver(registry: Registry): AllocatorObserver {
  const labelNames = ['clusterCIDR'] as const;
  const allocations = new Counter({
    name: 'node_ipam_controller_cidrset_cidrs_allocations_total',
    help: 'Counter measuring total number of CIDR allocations.',
    labelNames,
    registers: [registry],
  });
  const releases = new Counter({
    name: 'node_ipam_controller_cidrset_cidrs_releases_total',
    help: 'Counter measuring total number of CIDR releases.',
    labelNames,
    registers: [registry],
  });
  const tries = new Histogram({
    name: 'node_ipam_controller_cidrset_allocation_tries_per_request',
    help: 'Histogram measuring CIDR allocation tries per request.',
    labelNames,
    buckets: [...TRIES_BUCKETS],
    registers: [registry],
  });
  return {
    allocated: (clusterCIDR, n) => {
      allocations.inc({ clusterCIDR });
      tries.observe({ clusterCIDR }, n);
    },
    occupied: (clusterCIDR, n) => allocations.inc({ clusterCIDR }, n),
    released: (clusterCIDR, n) => releases.inc({ clusterCIDR }, n),
  };
}

function first(cidrs: string[]): string {
  const cidr = cidrs[0];
  if (cidr === undefined) throw new Error('allocate returned no CIDR');
  return cidr;
}

function timed(run: () => void): number {
  const start = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - start);
}

function result(ops: number, bestNs: number, sum: string): ScenarioResult {
  return { ops, bestNs, opsPerSecond: ops / (bestNs / 1e9), checksum: sum };
}

/** What the cidrset series must show after a run: the metrics timed are live, not a no-op. */
interface Expected {
  readonly allocations: number;
  readonly releases: number;
  /** allocate() calls: the tries histogram's count. */
  readonly allocateCalls: number;
}

/** Scrapes the registry (outside the timing) and throws unless it counted what the run did. */
async function expectCounted({ registry }: Metered, expected: Expected): Promise<void> {
  if (registry === undefined) return;
  const total = async (name: string, sample: string): Promise<number> => {
    const text = await registry.getSingleMetricAsString(name);
    const lines = text.split('\n').filter((line) => line.startsWith(`${sample}{`));
    return lines.reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  };
  const allocations = 'node_ipam_controller_cidrset_cidrs_allocations_total';
  const releases = 'node_ipam_controller_cidrset_cidrs_releases_total';
  const tries = 'node_ipam_controller_cidrset_allocation_tries_per_request';
  const seen: Expected = {
    allocations: await total(allocations, allocations),
    releases: await total(releases, releases),
    allocateCalls: await total(tries, `${tries}_count`),
  };
  if (JSON.stringify(seen) !== JSON.stringify(expected)) {
    throw new Error(`the metrics counted ${JSON.stringify(seen)}, the run did ${JSON.stringify(expected)}`);
  }
}

/** Allocates every subnet of a fresh allocator, `reps` times; the fastest run counts. */
export async function fill(cluster: string, mask: number, reps: number, metering: Metering): Promise<ScenarioResult> {
  let best = Infinity;
  let held: string[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const metered = newAllocator(cluster, mask, metering);
    const { allocator } = metered;
    const capacity = allocator.usage()[0]?.capacity ?? 0;
    held = new Array<string>(capacity);
    best = Math.min(
      best,
      timed(() => {
        for (let i = 0; i < capacity; i++) held[i] = first(allocator.allocate());
      }),
    );
    await expectCounted(metered, { allocations: capacity, releases: 0, allocateCalls: capacity });
  }
  return result(held.length, best, checksum(held));
}

/** Allocates `heldCount` subnets, then times `ops` rounds of release(random held) + allocate. */
export async function churn(
  cluster: string,
  mask: number,
  heldCount: number,
  ops: number,
  seed: number,
  reps: number,
  metering: Metering,
): Promise<ScenarioResult> {
  let best = Infinity;
  let held: string[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const metered = newAllocator(cluster, mask, metering);
    const { allocator } = metered;
    held = new Array<string>(heldCount);
    for (let i = 0; i < heldCount; i++) held[i] = first(allocator.allocate());
    const rng = new XorShift32(seed);
    best = Math.min(
      best,
      timed(() => {
        for (let i = 0; i < ops; i++) {
          const j = rng.next() % heldCount;
          allocator.release(held[j] ?? '');
          held[j] = first(allocator.allocate());
        }
      }),
    );
    const allocateCalls = heldCount + ops;
    await expectCounted(metered, { allocations: allocateCalls, releases: ops, allocateCalls });
  }
  return result(ops, best, checksum(held));
}

/**
 * Like churn, on a dual-stack allocator (the first range and `second`): each round releases one
 * held pair and allocates a pair. The checksum covers both families.
 */
export async function churnDualStack(
  cluster: string,
  mask: number,
  second: RangeSpec,
  heldCount: number,
  ops: number,
  seed: number,
  reps: number,
  metering: Metering,
): Promise<ScenarioResult> {
  let best = Infinity;
  let held: string[][] = [];
  for (let rep = 0; rep < reps; rep++) {
    const metered = newAllocator(cluster, mask, metering, second);
    const { allocator } = metered;
    held = new Array<string[]>(heldCount);
    for (let i = 0; i < heldCount; i++) held[i] = allocator.allocate();
    const rng = new XorShift32(seed);
    best = Math.min(
      best,
      timed(() => {
        for (let i = 0; i < ops; i++) {
          const j = rng.next() % heldCount;
          for (const cidr of held[j] ?? []) allocator.release(cidr);
          held[j] = allocator.allocate();
        }
      }),
    );
    const allocateCalls = 2 * (heldCount + ops);
    await expectCounted(metered, { allocations: allocateCalls, releases: 2 * ops, allocateCalls });
  }
  return result(ops, best, checksum(held.flat()));
}

/** Occupies every CIDR text in a fresh allocator, as a restarting controller does. */
export async function occupy(
  cluster: string,
  mask: number,
  texts: readonly string[],
  reps: number,
  metering: Metering,
): Promise<ScenarioResult> {
  let best = Infinity;
  let rest: string[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const metered = newAllocator(cluster, mask, metering);
    const { allocator } = metered;
    best = Math.min(
      best,
      timed(() => {
        for (const text of texts) allocator.occupy(text);
      }),
    );
    // What is left free, in allocation order, shows both sides marked the same subnets.
    rest = [];
    for (let free = allocator.usage()[0]?.free ?? 0; free > 0; free--) rest.push(first(allocator.allocate()));
    const allocateCalls = rest.length;
    await expectCounted(metered, { allocations: texts.length + allocateCalls, releases: 0, allocateCalls });
  }
  return result(texts.length, best, checksum(rest));
}

/** `count` distinct node subnet texts of the cluster in random order (partial Fisher-Yates). */
export function randomSubnets(cluster: string, mask: number, count: number, seed: number): string[] {
  const { allocator } = newAllocator(cluster, mask, 'none');
  const capacity = allocator.usage()[0]?.capacity ?? 0;
  const all: string[] = [];
  for (let i = 0; i < capacity; i++) all.push(first(allocator.allocate()));
  const rng = new XorShift32(seed);
  for (let i = 0; i < count; i++) {
    const j = i + (rng.next() % (capacity - i));
    const a = all[i] ?? '';
    all[i] = all[j] ?? '';
    all[j] = a;
  }
  return all.slice(0, count);
}
