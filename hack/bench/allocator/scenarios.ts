// The allocator benchmark scenarios on the TypeScript side, through the string API the controller uses.
// Each mirrors a function of hack/bench/cidrset-go/main.go: same PRNG, same order, same checksum.

import { Counter, Histogram, Registry } from 'prom-client';
import { ClusterAllocator, type AllocatorObserver } from '../../../src/allocator/index.js';

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

/** Per cluster CIDR: what upstream's cidrset metrics count. */
export interface Tally {
  allocations: number;
  releases: number;
  /** Counts per bucket of upstream's tries buckets 1, 5, 25, 125, 625, then +Inf (not cumulated). */
  readonly triesBuckets: number[];
  triesSum: number;
}

const TRIES_BUCKETS = [1, 5, 25, 125, 625];

/**
 * Upstream updates its cidrset metrics (allocations, releases, tries histogram) on every operation;
 * so does this observer. It counts in plain numbers, the way a prom-client collect() callback
 * would read them on scrape: calling prom-client's inc()/observe() per operation costs several
 * hundred nanoseconds, more than the allocation itself (printed by the benchmark for reference).
 */
export class TallyObserver implements AllocatorObserver {
  readonly byRange = new Map<string, Tally>();
  /** One-entry cache: consecutive events nearly always concern the same range. */
  #lastLabel = '';
  #last: Tally | undefined;

  allocated(clusterCIDR: string, tries: number): void {
    const tally = this.#tally(clusterCIDR);
    tally.allocations++;
    tally.triesSum += tries;
    // Non-cumulative here; cumulated when read. Almost every allocation lands in the first bucket.
    const buckets = tally.triesBuckets;
    let b = 0;
    while (b < TRIES_BUCKETS.length && tries > (TRIES_BUCKETS[b] ?? 0)) b++;
    buckets[b] = (buckets[b] ?? 0) + 1;
  }

  occupied(clusterCIDR: string, subnets: number): void {
    this.#tally(clusterCIDR).allocations += subnets;
  }

  released(clusterCIDR: string, subnets: number): void {
    this.#tally(clusterCIDR).releases += subnets;
  }

  #tally(clusterCIDR: string): Tally {
    if (clusterCIDR === this.#lastLabel && this.#last !== undefined) return this.#last;
    let tally = this.byRange.get(clusterCIDR);
    if (tally === undefined) {
      tally = { allocations: 0, releases: 0, triesBuckets: new Array<number>(TRIES_BUCKETS.length + 1).fill(0), triesSum: 0 };
      this.byRange.set(clusterCIDR, tally);
    }
    this.#lastLabel = clusterCIDR;
    this.#last = tally;
    return tally;
  }
}

/** The same three updates through prom-client's own per-call API, in a registry of its own. */
export function promClientObserver(): AllocatorObserver {
  const registry = new Registry();
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
    buckets: TRIES_BUCKETS,
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

function newAllocator(cluster: string, mask: number, observer: AllocatorObserver | undefined): ClusterAllocator {
  return new ClusterAllocator({ ranges: [{ clusterCIDR: cluster, nodeMask: mask }], observer });
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

/** Allocates every subnet of a fresh allocator, `reps` times; the fastest run counts. */
export function fill(cluster: string, mask: number, reps: number, observer?: AllocatorObserver): ScenarioResult {
  let best = Infinity;
  let held: string[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const allocator = newAllocator(cluster, mask, observer);
    const capacity = allocator.usage()[0]?.capacity ?? 0;
    held = new Array<string>(capacity);
    best = Math.min(
      best,
      timed(() => {
        for (let i = 0; i < capacity; i++) held[i] = first(allocator.allocate());
      }),
    );
  }
  return result(held.length, best, checksum(held));
}

/** Allocates `heldCount` subnets, then times `ops` rounds of release(random held) + allocate. */
export function churn(
  cluster: string,
  mask: number,
  heldCount: number,
  ops: number,
  seed: number,
  reps: number,
  observer?: AllocatorObserver,
): ScenarioResult {
  let best = Infinity;
  let held: string[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const allocator = newAllocator(cluster, mask, observer);
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
  }
  return result(ops, best, checksum(held));
}

/** Occupies every CIDR text in a fresh allocator, as a restarting controller does. */
export function occupy(
  cluster: string,
  mask: number,
  texts: readonly string[],
  reps: number,
  observer?: AllocatorObserver,
): ScenarioResult {
  let best = Infinity;
  let rest: string[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const allocator = newAllocator(cluster, mask, observer);
    best = Math.min(
      best,
      timed(() => {
        for (const text of texts) allocator.occupy(text);
      }),
    );
    // What is left free, in allocation order, shows both sides marked the same subnets.
    rest = [];
    for (let free = allocator.usage()[0]?.free ?? 0; free > 0; free--) rest.push(first(allocator.allocate()));
  }
  return result(texts.length, best, checksum(rest));
}

/** `count` distinct node subnet texts of the cluster in random order (partial Fisher-Yates). */
export function randomSubnets(cluster: string, mask: number, count: number, seed: number): string[] {
  const allocator = newAllocator(cluster, mask, undefined);
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
