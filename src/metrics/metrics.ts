// The controller's Prometheus metrics: kube-controller-manager's node IPAM series under their exact names,
// plus ours (podcidr_allocator_*), all in the registry passed in; gauges read their sources on every scrape.

import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import {
  type AllocatorObserver,
  type ConflictKind,
  conflictKinds,
  FLAG_POOL,
  type ForeignWriteObserver,
  type NodeInformerObserver,
  type PatchFailure,
  type RangeUsageInPool,
  type ReconcilerObserver,
  type RequestObserver,
  type WorkQueueObserver,
} from '../controller/ports.js';
import { createFeatureMetrics, type FeatureSources } from './features.js';
import { createLeaderMetrics } from './leader.js';
import { TalliedHistogram } from './tallied-histogram.js';
import { AllocatorTally, type RangeTally } from './tally.js';

/** State read at scrape time, so a gauge can never disagree with what it reports on. */
export interface MetricsSources extends FeatureSources {
  /** The allocator's ranges, once per pool that has them; empty while no allocator runs (a standby replica). */
  usage(): readonly RangeUsageInPool[];
  /** Nodes in the cache that have no spec.podCIDR yet. */
  nodesWithoutPodCIDR(): number;
  /** Conflicts present now, per kind; a missing kind is 0. */
  conflicts(): Partial<Record<ConflictKind, number>>;
  isLeader(): boolean;
}

/** The hooks to hand to each part; every hook of every observer is implemented. */
export interface Metrics {
  /** The flags' pool's hooks: what an allocator of ranges alone takes. */
  readonly allocator: Required<AllocatorObserver>;
  /** One pool's hooks (the same object for the same name): what SharedPoolsOptions.observer takes. */
  allocatorOf(pool: string): Required<AllocatorObserver>;
  /** No `released` hook: the allocator counts releases when the bits clear (after any quarantine). */
  readonly reconciler: ReconcilerObserver;
  readonly queue: Required<WorkQueueObserver>;
  readonly informer: Required<NodeInformerObserver>;
  readonly requests: RequestObserver;
  readonly foreignWrites: ForeignWriteObserver;
  /** One reconcile of one node took this long; the reconciler has no clock hook of its own. */
  observeReconcile(seconds: number): void;
}

export type PatchResult = 'success' | PatchFailure;
type WatchRestartReason = Parameters<Required<NodeInformerObserver>['onWatchRestart']>[0];

// Listed so every series exists at 0 from the first scrape (rate() and `> 0` alerts need that); the
// `satisfies` checks and the Exhaustive types fail to compile when the source unions gain a member.
const patchResults = ['success', 'conflict', 'not-found', 'timeout', 'failed'] as const satisfies readonly PatchResult[];
const restartReasons = ['expired', 'stalled', 'error', 'closed'] as const satisfies readonly WatchRestartReason[];
type Exhaustive<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : never;
const _listsAreExhaustive: [
  Exhaustive<ConflictKind, (typeof conflictKinds)[number]>,
  Exhaustive<PatchResult, (typeof patchResults)[number]>,
  Exhaustive<WatchRestartReason, (typeof restartReasons)[number]>,
] = [true, true, true];

/** Queue waits include rate-limiter backoff, which reaches minutes. */
const queueBuckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];
/** A reconcile is a cache read, maybe a patch: milliseconds, or a request timeout. */
const workBuckets = [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** client-go's rest_client_request_duration_seconds buckets. */
const requestBuckets = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];
/** A full list of 50,000 nodes takes seconds. */
const listBuckets = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * Registers every metric into `registry` (prom-client's process and Node.js defaults and the leader gauge
 * of createLeaderMetrics included) and returns the observers. Call it once per registry: a second call,
 * or a separate createLeaderMetrics, throws "already been registered".
 */
export function createMetrics(registry: Registry, sources: MetricsSources): Metrics {
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  createLeaderMetrics(registry, sources);
  const allocatorOf = allocatorMetrics(registers, sources);
  registerRangeGauges(registers, sources);
  const reconciler = reconcilerMetrics(registers, sources);
  const queue = queueMetrics(registers);
  const informer = informerMetrics(registers);
  const requests = requestMetrics(registers);
  const foreignWrites = createFeatureMetrics(registry, sources);
  const reconcileDuration = new Histogram({
    name: 'podcidr_allocator_reconcile_duration_seconds',
    help: 'Time one reconcile of one node took.',
    buckets: workBuckets,
    registers,
  });
  return {
    allocator: allocatorOf(FLAG_POOL),
    allocatorOf,
    reconciler,
    queue,
    informer,
    requests,
    foreignWrites,
    observeReconcile: (seconds) => observe(reconcileDuration, {}, seconds),
  };
}

/**
 * Durations come from callers' clocks; prom-client throws on a non-finite value, and that throw would
 * land inside an API request or a queue operation. Such a value is dropped instead.
 */
function observe<L extends string>(histogram: Histogram<L>, labels: Partial<Record<L, string>>, seconds: number): void {
  if (Number.isFinite(seconds)) histogram.observe(labels, seconds);
}

/**
 * Upstream's cidrset_* series: same names (typo included), label and semantics. The observers only
 * tally plain numbers; prom-client reads them at scrape time, so an allocation pays no metric call.
 *
 * Upstream has one CidrSet per clusterCIDR; here two pools may carve the same range (each its own
 * bitmap, of its own node size) and a subnet taken in one is occupied in the other. So each
 * clusterCIDR appears once, taken from the first pool listing it (the flags' pool when it has the
 * range), and the counters count that pool's flips alone: an allocation anywhere in the range is
 * counted once, as the node subnets of that pool it takes, and allocations minus releases follows the
 * usage gauge beside them. The tries histogram counts every allocation request of every pool once.
 */
function allocatorMetrics(registers: Registry[], sources: MetricsSources): (pool: string) => Required<AllocatorObserver> {
  const tries = new AllocatorTally();
  const flips = new Map<string, AllocatorTally>();
  const owners = new RangeOwners();
  const allocationsSince = deltaSinceScrape(flips, owners, (t) => t.allocationSeries, (t) => t.allocations);
  const releasesSince = deltaSinceScrape(flips, owners, (t) => t.releaseSeries, (t) => t.releases);
  new Counter({
    name: 'node_ipam_controller_cidrset_cidrs_allocations_total',
    help: 'Counter measuring total number of CIDR allocations.',
    labelNames: ['clusterCIDR'],
    registers,
    collect() {
      // usage() first: reading it can end a quarantine, which counts releases.
      const ranges = owners.update(sources.usage());
      allocationsSince(this);
      zeroPerRange(this, ranges);
    },
  });
  new Counter({
    name: 'node_ipam_controller_cidrset_cidrs_releases_total',
    help: 'Counter measuring total number of CIDR releases.',
    labelNames: ['clusterCIDR'],
    registers,
    collect() {
      // usage() first: reading it can end a quarantine, which counts releases.
      const ranges = owners.update(sources.usage());
      releasesSince(this);
      zeroPerRange(this, ranges);
    },
  });
  new TalliedHistogram({
    name: 'node_ipam_controller_cidrset_allocation_tries_per_request',
    help: 'Histogram measuring CIDR allocation tries per request: taken subnets skipped to find a free one.',
    registers,
    tally: tries,
  });
  perRangeGauge(registers, sources, {
    name: 'node_ipam_controller_cidrset_usage_cidrs',
    help: 'Gauge measuring percentage of allocated CIDRs, as a fraction from 0 to 1.',
    value: (u) => (u.capacity > 0 ? u.used / u.capacity : 0),
  });
  perRangeGauge(registers, sources, {
    name: 'node_ipam_controller_cirdset_max_cidrs',
    help: 'Maximum number of CIDRs that can be allocated. Name misspelt as in kube-controller-manager; ' +
      'node_ipam_controller_cidrset_max_cidrs is the same value.',
    value: (u) => u.capacity,
  });
  perRangeGauge(registers, sources, {
    name: 'node_ipam_controller_cidrset_max_cidrs',
    help: 'Maximum number of CIDRs that can be allocated.',
    value: (u) => u.capacity,
  });
  const hooks = new Map<string, Required<AllocatorObserver>>();
  return (pool) => {
    let pooled = hooks.get(pool);
    if (pooled === undefined) {
      const own = new AllocatorTally();
      flips.set(pool, own);
      // Plain functions, so a part may take one hook alone; the tallies' methods need their `this`.
      // An allocation is one flip of the pool's own bitmap; its tries go to the shared histogram.
      pooled = {
        allocated: (clusterCIDR, n) => {
          own.occupied(clusterCIDR, 1);
          tries.allocated(clusterCIDR, n);
        },
        occupied: (clusterCIDR, subnets) => own.occupied(clusterCIDR, subnets),
        released: (clusterCIDR, subnets) => own.released(clusterCIDR, subnets),
      };
      hooks.set(pool, pooled);
    }
    return pooled;
  };
}

/** The pool whose flips the cidrset counters count, per clusterCIDR. */
class RangeOwners {
  /** clusterCIDR -> first pool listing it at the last scrape that listed it at all. */
  readonly #owners = new Map<string, string>();

  /**
   * Takes the owners from `usage` and returns it with one entry per clusterCIDR. A range no longer
   * listed (a standby, a pool removed) keeps its last owner, so its last flips are not counted twice.
   */
  update(usage: readonly RangeUsageInPool[]): RangeUsageInPool[] {
    const first = firstPerRange(usage);
    for (const u of first) this.#owners.set(u.clusterCIDR, poolOf(u));
    return first;
  }

  /** Whether `pool`'s flips in the range count; a range never listed counts every pool's. */
  counts(pool: string, clusterCIDR: string): boolean {
    return (this.#owners.get(clusterCIDR) ?? pool) === pool;
  }
}

/** Each clusterCIDR once, from the first pool listing it; the order of first listing. */
function firstPerRange(usage: readonly RangeUsageInPool[]): RangeUsageInPool[] {
  const seen = new Set<string>();
  return usage.filter((u) => !seen.has(u.clusterCIDR) && seen.add(u.clusterCIDR));
}

function poolOf(usage: RangeUsageInPool): string {
  return usage.pool ?? FLAG_POOL;
}

/**
 * Adds to a counter what each owning pool's range tallied since the last scrape, so the counter keeps
 * its own total and behaves as one fed by inc(): a reset() restarts it from zero. Series are created in
 * the order the ranges first counted something, as inc() would have created them (after a reset(), in
 * that same first order rather than the order they counted again). What a pool that does not own the
 * range tallied is passed over but marked handed, so a change of owner adds only flips made after it.
 */
function deltaSinceScrape(
  pools: ReadonlyMap<string, AllocatorTally>,
  owners: RangeOwners,
  series: (tally: AllocatorTally) => readonly RangeTally[],
  total: (tally: RangeTally) => number,
): (counter: Counter<'clusterCIDR'>) => void {
  const handed = new Map<RangeTally, number>();
  return (counter) => {
    for (const [pool, tallies] of pools) {
      for (const tally of series(tallies)) {
        const now = total(tally);
        const before = handed.get(tally) ?? 0;
        // Only a change adds: after a reset() a series reappears when it counts again, as with inc().
        if (now === before) continue;
        handed.set(tally, now);
        if (owners.counts(pool, tally.clusterCIDR)) counter.inc(tally.labels, now - before);
      }
    }
  };
}

/** Counters show 0 for every range from the first scrape, so the first allocation is a visible increase. */
function zeroPerRange(counter: Counter<'clusterCIDR'>, ranges: readonly RangeUsageInPool[]): void {
  for (const u of ranges) counter.inc({ clusterCIDR: u.clusterCIDR }, 0);
}

interface PerRangeGauge {
  readonly name: string;
  readonly help: string;
  readonly value: (usage: RangeUsageInPool) => number;
}

/**
 * A gauge labelled by clusterCIDR alone, as upstream's, rebuilt from `usage()` on each scrape (no stale
 * ranges survive); a range pools share is read from the first pool listing it, as the counters are.
 */
function perRangeGauge(registers: Registry[], sources: MetricsSources, spec: PerRangeGauge): void {
  new Gauge({
    name: spec.name,
    help: spec.help,
    labelNames: ['clusterCIDR'],
    registers,
    collect() {
      this.reset();
      for (const u of firstPerRange(sources.usage())) this.set({ clusterCIDR: u.clusterCIDR }, spec.value(u));
    },
  });
}

const rangeGauges: readonly PerRangeGauge[] = [
  { name: 'podcidr_allocator_range_capacity_cidrs', help: 'Node subnets the cluster CIDR holds.', value: (u) => u.capacity },
  {
    name: 'podcidr_allocator_range_used_cidrs',
    help: 'Node subnets marked used: allocated, reserved and quarantined ones.',
    value: (u) => u.used,
  },
  { name: 'podcidr_allocator_range_free_cidrs', help: 'Node subnets free to allocate now.', value: (u) => u.free },
  {
    name: 'podcidr_allocator_range_quarantined_cidrs',
    help: 'Released node subnets not yet reusable (--release-quarantine); counted as used.',
    value: (u) => u.quarantined,
  },
  {
    name: 'podcidr_allocator_range_reserved_cidrs',
    help: 'Node subnets never allocated because they overlap a service or excluded range; counted as used.',
    value: (u) => u.reserved,
  },
];

/** Said in every range gauge's help: the label that tells pools over one range apart. */
const POOL_HELP = ` Per pool: the ClusterCIDR's name, or ${FLAG_POOL} for the flags' ranges.`;

/** Per range of each pool, so two pools over one clusterCIDR are two series. */
function registerRangeGauges(registers: Registry[], sources: MetricsSources): void {
  for (const spec of rangeGauges) {
    new Gauge({
      name: spec.name,
      help: spec.help + POOL_HELP,
      labelNames: ['clusterCIDR', 'family', 'pool'],
      registers,
      collect() {
        this.reset();
        for (const u of sources.usage()) this.set({ clusterCIDR: u.clusterCIDR, family: u.family, pool: poolOf(u) }, spec.value(u));
      },
    });
  }
}

function reconcilerMetrics(registers: Registry[], sources: MetricsSources): ReconcilerObserver {
  new Gauge({
    name: 'podcidr_allocator_nodes_without_podcidr',
    help: 'Nodes that have no spec.podCIDR yet.',
    registers,
    collect() {
      this.set(sources.nodesWithoutPodCIDR());
    },
  });
  new Gauge({
    name: 'podcidr_allocator_conflicts',
    help: 'Node podCIDRs in conflict now, by kind: malformed, out-of-range, duplicate, overlap.',
    labelNames: ['kind'],
    registers,
    collect() {
      const current = sources.conflicts();
      for (const kind of conflictKinds) this.set({ kind }, current[kind] ?? 0);
    },
  });
  const found = new Counter({
    name: 'podcidr_allocator_conflicts_found_total',
    help: 'Conflicting node podCIDRs found, by kind; each node and CIDR is counted once.',
    labelNames: ['kind'],
    registers,
  });
  for (const kind of conflictKinds) found.inc({ kind }, 0);
  const patches = new Counter({
    name: 'podcidr_allocator_patches_total',
    help: 'podCIDRs patches of Nodes, by result: success, conflict, not-found, timeout, failed.',
    labelNames: ['result'],
    registers,
  });
  for (const result of patchResults) patches.inc({ result }, 0);
  const waiting = new Gauge({
    name: 'podcidr_allocator_nodes_waiting_for_cidr',
    help: 'Nodes waiting for a node subnet to free up after their range ran out.',
    registers,
  });
  return {
    conflict: (kind) => found.inc({ kind }),
    allocated: () => patches.inc({ result: 'success' }),
    patchFailed: (failure) => patches.inc({ result: failure }),
    waiting: (nodes) => waiting.set(nodes),
  };
}

function queueMetrics(registers: Registry[]): Required<WorkQueueObserver> {
  const depth = new Gauge({ name: 'podcidr_allocator_workqueue_depth', help: 'Node keys waiting in the work queue.', registers });
  const adds = new Counter({
    name: 'podcidr_allocator_workqueue_adds_total',
    help: 'Node keys added to the work queue (adds of a key already queued are not counted).',
    registers,
  });
  const retries = new Counter({
    name: 'podcidr_allocator_workqueue_retries_total',
    help: 'Node keys re-queued with backoff after a failed reconcile.',
    registers,
  });
  const waited = new Histogram({
    name: 'podcidr_allocator_workqueue_queue_duration_seconds',
    help: 'Time a node key waited in the work queue before a worker took it.',
    buckets: queueBuckets,
    registers,
  });
  const worked = new Histogram({
    name: 'podcidr_allocator_workqueue_work_duration_seconds',
    help: 'Time a worker held a node key, from taking it to done.',
    buckets: workBuckets,
    registers,
  });
  return {
    onAdd: () => adds.inc(),
    onDepth: (n) => depth.set(n),
    onRetry: () => retries.inc(),
    onQueueLatency: (seconds) => observe(waited, {}, seconds),
    onWorkDuration: (seconds) => observe(worked, {}, seconds),
  };
}

function informerMetrics(registers: Registry[]): Required<NodeInformerObserver> {
  const relists = new Counter({
    name: 'podcidr_allocator_informer_relists_total',
    help: 'Full lists of Nodes: the first one, one after every watch that could not resume, and one when a standby starts leading.',
    registers,
  });
  const listDuration = new Histogram({
    name: 'podcidr_allocator_informer_list_duration_seconds',
    help: 'Time a full list of Nodes took, all pages.',
    buckets: listBuckets,
    registers,
  });
  const restarts = new Counter({
    name: 'podcidr_allocator_informer_restarts_total',
    help: 'Node watches restarted, by reason: closed (server timeout, normal), expired (410), stalled, error.',
    labelNames: ['reason'],
    registers,
  });
  for (const reason of restartReasons) restarts.inc({ reason }, 0);
  return {
    onList: (_nodes, seconds) => {
      relists.inc();
      observe(listDuration, {}, seconds);
    },
    onWatchRestart: (reason) => restarts.inc({ reason }),
  };
}

function requestMetrics(registers: Registry[]): RequestObserver {
  const requests = new Counter({
    name: 'podcidr_allocator_api_requests_total',
    help: 'HTTP requests to the API server, each attempt counted, by verb and status code (<error>: no response).',
    labelNames: ['verb', 'code'],
    registers,
  });
  const duration = new Histogram({
    name: 'podcidr_allocator_api_request_duration_seconds',
    help: 'Time from sending a request to the API server to its response headers, by verb.',
    labelNames: ['verb'],
    buckets: requestBuckets,
    registers,
  });
  return (verb, code, seconds) => {
    requests.inc({ verb, code });
    observe(duration, { verb }, seconds);
  };
}
