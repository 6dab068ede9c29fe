// createMetrics: upstream's cidrset series driven by a real ClusterAllocator, our gauges read from their
// sources at scrape time, the queue series from a real WorkQueue, and nothing in the global registry.

import { Registry, register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ClusterAllocator, type RangeSpec } from '../../../src/allocator/index.js';
import type { ConflictKind } from '../../../src/controller/ports.js';
import { WorkQueue } from '../../../src/controller/workqueue.js';
import { describeMetrics } from '../../../src/metrics/describe.js';
import { createMetrics, type Metrics } from '../../../src/metrics/metrics.js';
import { ManualClock } from '../../support/manual-clock.js';
import { parseRange } from '../../../src/allocator/range-spec.js';
import { cidrs } from '../../support/cidrs.js';
import { parseCidr, type Cidr } from '../../../src/cidr/index.js';
import { PoolAllocator, type PoolDefinition } from '../../../src/controller/pool-allocator.js';

interface Harness {
  readonly registry: Registry;
  readonly metrics: Metrics;
  readonly allocator: ClusterAllocator;
  readonly clock: ManualClock;
  readonly state: {
    leader: boolean;
    withoutPodCIDR: number;
    conflicts: Partial<Record<ConflictKind, number>>;
    /** False once the allocator is gone, as on a replica that lost the Lease. */
    running: boolean;
  };
}

interface Options {
  readonly ranges: readonly RangeSpec[];
  readonly reserved?: readonly Cidr[];
  readonly quarantineMs?: number;
}

/** A fresh registry and a real allocator wired to it, as the controller wires them. */
function harness(options: Options = { ranges: [parseRange('10.0.0.0/22', 24)] }): Harness {
  const registry = new Registry();
  const clock = new ManualClock();
  const state = { leader: false, withoutPodCIDR: 0, conflicts: {}, running: true };
  // Filled in below: the allocator needs the observers, the metrics read the allocator.
  const live: { allocator?: ClusterAllocator } = {};
  const metrics = createMetrics(registry, {
    usage: () => (state.running ? (live.allocator?.usage() ?? []) : []),
    nodesWithoutPodCIDR: () => state.withoutPodCIDR,
    conflicts: () => state.conflicts,
    isLeader: () => state.leader,
  });
  const allocator = new ClusterAllocator({ ...options, now: clock.now, observer: metrics.allocator });
  live.allocator = allocator;
  return { registry, metrics, allocator, clock, state };
}

/** The sample lines of one metric as Prometheus serves them, without HELP and TYPE. */
async function samples(registry: Registry, name: string): Promise<string[]> {
  const text = await registry.getSingleMetricAsString(name);
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

const range = 'clusterCIDR="10.0.0.0/22"';
/** An allocator of ranges alone is the flags' pool. */
const flagPool = 'pool="--cluster-cidr"';
const allocations = 'node_ipam_controller_cidrset_cidrs_allocations_total';
const releases = 'node_ipam_controller_cidrset_cidrs_releases_total';

describe("kube-controller-manager's cidrset series", () => {
  it('are registered under the exact upstream names, misspelt capacity gauge included', () => {
    const names = describeMetrics(harness().registry)
      .map((m) => m.name)
      .filter((n) => n.startsWith('node_ipam_controller_'));
    expect(names).toEqual([
      'node_ipam_controller_cidrset_allocation_tries_per_request',
      'node_ipam_controller_cidrset_cidrs_allocations_total',
      'node_ipam_controller_cidrset_cidrs_releases_total',
      'node_ipam_controller_cidrset_max_cidrs',
      'node_ipam_controller_cidrset_usage_cidrs',
      'node_ipam_controller_cirdset_max_cidrs',
    ]);
  });

  it('help strings say what the series measure, not the endpoint copy-paste upstream ships', () => {
    const help = describeMetrics(harness().registry).find(
      (m) => m.name === 'node_ipam_controller_cidrset_allocation_tries_per_request',
    )?.help;
    expect(help).toMatch(/^Histogram measuring CIDR allocation tries per request/);
    expect(help).not.toMatch(/endpoint|Service/i);
  });

  it('show every range at 0 before anything is allocated', async () => {
    const { registry } = harness();
    expect(await samples(registry, allocations)).toEqual([`${allocations}{${range}} 0`]);
    expect(await samples(registry, releases)).toEqual([`${releases}{${range}} 0`]);
  });

  it('count one allocation per allocate', async () => {
    const { registry, allocator } = harness();
    allocator.allocate();
    allocator.allocate();
    expect(await samples(registry, allocations)).toEqual([`${allocations}{${range}} 2`]);
  });

  it('count occupy once per subnet that flips, so a repeated occupy changes nothing', async () => {
    const { registry, allocator } = harness();
    allocator.occupy('10.0.1.0/24');
    allocator.occupy('10.0.1.0/24');
    expect(await samples(registry, allocations)).toEqual([`${allocations}{${range}} 1`]);
    // The /22 covers all four node subnets; three are new.
    allocator.occupy('10.0.0.0/22');
    expect(await samples(registry, allocations)).toEqual([`${allocations}{${range}} 4`]);
    allocator.occupy('10.0.0.0/22');
    expect(await samples(registry, allocations)).toEqual([`${allocations}{${range}} 4`]);
  });

  it('count a release once per subnet that clears, so a repeated release changes nothing', async () => {
    const { registry, allocator } = harness();
    allocator.occupy('10.0.0.0/22');
    allocator.release('10.0.1.0/24');
    allocator.release('10.0.1.0/24');
    expect(await samples(registry, releases)).toEqual([`${releases}{${range}} 1`]);
    // The /22 clears the three node subnets still set.
    allocator.release('10.0.0.0/22');
    expect(await samples(registry, releases)).toEqual([`${releases}{${range}} 4`]);
  });

  it('count a quarantined release when its subnet clears, not when it is released', async () => {
    const { registry, allocator, clock } = harness({
      ranges: [parseRange('10.0.0.0/22', 24)],
      quarantineMs: 60_000,
    });
    allocator.occupy('10.0.2.0/24');
    allocator.release('10.0.2.0/24');
    expect(await samples(registry, releases)).toEqual([`${releases}{${range}} 0`]);
    expect(await samples(registry, 'podcidr_allocator_range_quarantined_cidrs')).toEqual([
      `podcidr_allocator_range_quarantined_cidrs{${range},family="IPv4",${flagPool}} 1`,
    ]);
    clock.jumpTo(60_000);
    expect(await samples(registry, releases)).toEqual([`${releases}{${range}} 1`]);
    expect(await samples(registry, 'podcidr_allocator_range_quarantined_cidrs')).toEqual([
      `podcidr_allocator_range_quarantined_cidrs{${range},family="IPv4",${flagPool}} 0`,
    ]);
  });

  it('count subnets blocked by a service range as allocations, as upstream does', async () => {
    const { registry } = harness({
      ranges: [parseRange('10.0.0.0/22', 24)],
      reserved: cidrs('10.0.3.0/24'),
    });
    expect(await samples(registry, allocations)).toEqual([`${allocations}{${range}} 1`]);
    expect(await samples(registry, 'podcidr_allocator_range_reserved_cidrs')).toEqual([
      `podcidr_allocator_range_reserved_cidrs{${range},family="IPv4",${flagPool}} 1`,
    ]);
  });

  it('observe the taken subnets skipped by each allocation in the buckets 1, 5, 25, 125, 625', async () => {
    const { registry, allocator } = harness({ ranges: [parseRange('10.0.0.0/16', 24)] });
    for (let i = 0; i < 10; i++) allocator.occupy(`10.0.${i + 1}.0/24`);
    allocator.allocate(); // 10.0.0.0/24: nothing skipped
    allocator.allocate(); // skips the ten occupied subnets
    const name = 'node_ipam_controller_cidrset_allocation_tries_per_request';
    const r = 'clusterCIDR="10.0.0.0/16"';
    expect(await samples(registry, name)).toEqual([
      `${name}_bucket{le="1",${r}} 1`,
      `${name}_bucket{le="5",${r}} 1`,
      `${name}_bucket{le="25",${r}} 2`,
      `${name}_bucket{le="125",${r}} 2`,
      `${name}_bucket{le="625",${r}} 2`,
      `${name}_bucket{le="+Inf",${r}} 2`,
      `${name}_sum{${r}} 10`,
      `${name}_count{${r}} 2`,
    ]);
  });

  it('report usage as a fraction and capacity under both spellings, read at scrape time', async () => {
    const { registry, allocator } = harness();
    allocator.allocate();
    expect(await samples(registry, 'node_ipam_controller_cidrset_usage_cidrs')).toEqual([
      `node_ipam_controller_cidrset_usage_cidrs{${range}} 0.25`,
    ]);
    allocator.allocate();
    allocator.allocate();
    expect(await samples(registry, 'node_ipam_controller_cidrset_usage_cidrs')).toEqual([
      `node_ipam_controller_cidrset_usage_cidrs{${range}} 0.75`,
    ]);
    expect(await samples(registry, 'node_ipam_controller_cirdset_max_cidrs')).toEqual([
      `node_ipam_controller_cirdset_max_cidrs{${range}} 4`,
    ]);
    expect(await samples(registry, 'node_ipam_controller_cidrset_max_cidrs')).toEqual([
      `node_ipam_controller_cidrset_max_cidrs{${range}} 4`,
    ]);
  });
});

describe('the range gauges', () => {
  const dualStack: Options = {
    ranges: [
      parseRange('10.0.0.0/22', 24),
      parseRange('fd00:10::/62', 64),
    ],
  };
  const v4 = `${range},family="IPv4",${flagPool}`;
  const v6 = `clusterCIDR="fd00:10::/62",family="IPv6",${flagPool}`;

  it('report capacity, used and free per range and family after allocations and releases', async () => {
    const { registry, allocator } = harness(dualStack);
    allocator.allocate();
    allocator.allocate();
    allocator.occupy('10.0.3.0/24');
    expect(await samples(registry, 'podcidr_allocator_range_capacity_cidrs')).toEqual([
      `podcidr_allocator_range_capacity_cidrs{${v4}} 4`,
      `podcidr_allocator_range_capacity_cidrs{${v6}} 4`,
    ]);
    expect(await samples(registry, 'podcidr_allocator_range_used_cidrs')).toEqual([
      `podcidr_allocator_range_used_cidrs{${v4}} 3`,
      `podcidr_allocator_range_used_cidrs{${v6}} 2`,
    ]);
    allocator.release('10.0.0.0/24');
    allocator.release('fd00:10::/64');
    allocator.release('fd00:10:0:1::/64');
    expect(await samples(registry, 'podcidr_allocator_range_free_cidrs')).toEqual([
      `podcidr_allocator_range_free_cidrs{${v4}} 2`,
      `podcidr_allocator_range_free_cidrs{${v6}} 4`,
    ]);
    expect(await samples(registry, 'podcidr_allocator_range_used_cidrs')).toEqual([
      `podcidr_allocator_range_used_cidrs{${v4}} 2`,
      `podcidr_allocator_range_used_cidrs{${v6}} 0`,
    ]);
  });

  it('drop every per-range series once the allocator is gone, and keep the counters', async () => {
    const { registry, allocator, state } = harness();
    allocator.allocate();
    expect(await samples(registry, 'podcidr_allocator_range_used_cidrs')).toEqual([
      `podcidr_allocator_range_used_cidrs{${range},family="IPv4",${flagPool}} 1`,
    ]);
    expect(await samples(registry, 'node_ipam_controller_cirdset_max_cidrs')).toHaveLength(1);
    state.running = false;
    for (const name of [
      'node_ipam_controller_cidrset_usage_cidrs',
      'node_ipam_controller_cirdset_max_cidrs',
      'podcidr_allocator_range_capacity_cidrs',
      'podcidr_allocator_range_used_cidrs',
    ]) {
      expect(await samples(registry, name), name).toEqual([]);
    }
    expect(await samples(registry, allocations)).toEqual([`${allocations}{${range}} 1`]);
  });
});

describe('pools over one range', () => {
  const labelled = (key: string): PoolDefinition['nodeSelector'] => ({
    nodeSelectorTerms: [{ matchExpressions: [{ key, operator: 'Exists' }] }],
  });
  const shared = parseCidr('10.0.0.0/22');
  /** /23 node subnets over the flags' /22 of /24 ones. */
  const big: PoolDefinition = { name: 'big', ipv4: shared, perNodeHostBits: 9, nodeSelector: labelled('big') };
  /** /24 node subnets over the same /22, for other nodes. */
  const twin: PoolDefinition = { name: 'twin', ipv4: shared, perNodeHostBits: 8, nodeSelector: labelled('twin') };
  const plain = { name: 'plain', labels: {} };
  const bigNode = { name: 'b', labels: { big: '' } };
  const twinNode = { name: 't', labels: { twin: '' } };

  interface PoolHarness {
    readonly registry: Registry;
    readonly allocator: PoolAllocator;
    readonly state: { running: boolean };
  }

  /** A PoolAllocator wired to the metrics as a term wires it: each pool its own observer. */
  function pooled(withFlags: boolean, pools: readonly PoolDefinition[]): PoolHarness {
    const registry = new Registry();
    const state = { running: true };
    const live: { allocator?: PoolAllocator } = {};
    const metrics = createMetrics(registry, {
      usage: () => (state.running ? (live.allocator?.usage() ?? []) : []),
      nodesWithoutPodCIDR: () => 0,
      conflicts: () => ({}),
      isLeader: () => true,
    });
    const flagRanges = withFlags ? [parseRange('10.0.0.0/22', 24)] : [];
    live.allocator = new PoolAllocator({ flagRanges, pools, observer: metrics.allocatorOf });
    return { registry, allocator: live.allocator, state };
  }

  const used = 'podcidr_allocator_range_used_cidrs';

  it('give one podcidr_allocator_range_* series per pool, told apart by the pool label', async () => {
    const { registry, allocator } = pooled(true, [big]);
    expect(allocator.allocate(plain)).toEqual(['10.0.0.0/24']);
    expect(allocator.allocate(bigNode)).toEqual(['10.0.2.0/23']);
    const own = `${range},family="IPv4"`;
    expect(await samples(registry, 'podcidr_allocator_range_capacity_cidrs')).toEqual([
      `podcidr_allocator_range_capacity_cidrs{${own},pool="--cluster-cidr"} 4`,
      `podcidr_allocator_range_capacity_cidrs{${own},pool="big"} 2`,
    ]);
    // The flags' /24 holds half of big's first /23; big's /23 holds two of the flags' /24s.
    expect(await samples(registry, used)).toEqual([`${used}{${own},pool="--cluster-cidr"} 3`, `${used}{${own},pool="big"} 2`]);
  });

  it("give each clusterCIDR one cidrset gauge, read from the first pool listed (the flags' one)", async () => {
    const { registry, allocator } = pooled(true, [big]);
    allocator.allocate(plain);
    expect(await samples(registry, 'node_ipam_controller_cidrset_usage_cidrs')).toEqual([
      `node_ipam_controller_cidrset_usage_cidrs{${range}} 0.25`,
    ]);
    expect(await samples(registry, 'node_ipam_controller_cidrset_max_cidrs')).toEqual([
      `node_ipam_controller_cidrset_max_cidrs{${range}} 4`,
    ]);
    expect(await samples(registry, allocations)).toEqual([`${allocations}{${range}} 1`]);
  });

  it('read the cidrset gauges from the first ClusterCIDR when there are no flags', async () => {
    const { registry, allocator } = pooled(false, [big, twin]);
    allocator.allocate(twinNode);
    expect(await samples(registry, 'node_ipam_controller_cidrset_max_cidrs')).toEqual([
      `node_ipam_controller_cidrset_max_cidrs{${range}} 2`,
    ]);
    expect(await samples(registry, 'node_ipam_controller_cidrset_usage_cidrs')).toEqual([
      `node_ipam_controller_cidrset_usage_cidrs{${range}} 0.5`,
    ]);
  });

  it('count each allocation and release once, not once per pool that marks it', async () => {
    const { registry, allocator } = pooled(true, [twin]);
    const got = [allocator.allocate(plain), allocator.allocate(twinNode)].flat();
    expect(got).toEqual(['10.0.0.0/24', '10.0.1.0/24']);
    expect(await samples(registry, allocations)).toEqual([`${allocations}{${range}} 2`]);
    for (const cidr of got) allocator.release(cidr);
    expect(await samples(registry, releases)).toEqual([`${releases}{${range}} 2`]);
  });

  it('count in node subnets of the first pool, so allocations minus releases is its used gauge', async () => {
    const { registry, allocator } = pooled(true, [big]);
    allocator.allocate(plain);
    const wide = allocator.allocate(bigNode);
    const flagsUsed = async (): Promise<number> => {
      const line = (await samples(registry, used)).find((l) => l.includes('pool="--cluster-cidr"'));
      return Number(line?.split(' ').at(-1));
    };
    // big's /23 is two of the flags' /24s.
    expect(await flagsUsed()).toBe(3);
    expect(await samples(registry, allocations)).toEqual([`${allocations}{${range}} 3`]);
    allocator.release(wide[0] ?? '');
    expect(await samples(registry, releases)).toEqual([`${releases}{${range}} 2`]);
    expect(await flagsUsed()).toBe(3 - 2);
  });

  it('keep counting one pool per range once the ranges are no longer listed', async () => {
    const { registry, allocator, state } = pooled(true, [twin]);
    expect(await samples(registry, allocations)).toEqual([`${allocations}{${range}} 0`]);
    allocator.allocate(plain);
    allocator.allocate(twinNode);
    // A standby lists nothing: the last flips of the term still count once.
    state.running = false;
    expect(await samples(registry, allocations)).toEqual([`${allocations}{${range}} 2`]);
  });

  it('observe the tries of every pool\'s allocation requests once each', async () => {
    const { registry, allocator } = pooled(true, [twin]);
    allocator.allocate(plain);
    allocator.allocate(twinNode);
    const count = (await samples(registry, 'node_ipam_controller_cidrset_allocation_tries_per_request')).find((l) =>
      l.startsWith('node_ipam_controller_cidrset_allocation_tries_per_request_count'),
    );
    expect(count).toBe(`node_ipam_controller_cidrset_allocation_tries_per_request_count{${range}} 2`);
  });
});

describe('the controller gauges', () => {
  it('read nodes without a podCIDR, conflicts and leadership on every scrape', async () => {
    const { registry, state } = harness();
    expect(await samples(registry, 'podcidr_allocator_leader')).toEqual(['podcidr_allocator_leader 0']);
    state.leader = true;
    state.withoutPodCIDR = 3;
    state.conflicts = { duplicate: 2 };
    expect(await samples(registry, 'podcidr_allocator_leader')).toEqual(['podcidr_allocator_leader 1']);
    expect(await samples(registry, 'podcidr_allocator_nodes_without_podcidr')).toEqual([
      'podcidr_allocator_nodes_without_podcidr 3',
    ]);
    expect(await samples(registry, 'podcidr_allocator_conflicts')).toEqual([
      'podcidr_allocator_conflicts{kind="malformed"} 0',
      'podcidr_allocator_conflicts{kind="out-of-range"} 0',
      'podcidr_allocator_conflicts{kind="duplicate"} 2',
      'podcidr_allocator_conflicts{kind="overlap"} 0',
    ]);
    state.conflicts = {};
    expect(await samples(registry, 'podcidr_allocator_conflicts')).toContain('podcidr_allocator_conflicts{kind="duplicate"} 0');
  });
});

describe('the reconciler observer', () => {
  it('counts conflicts found and patches by result, every label present from the start', async () => {
    const { registry, metrics } = harness();
    metrics.reconciler.conflict?.('overlap');
    metrics.reconciler.conflict?.('overlap');
    metrics.reconciler.allocated?.();
    metrics.reconciler.patchFailed?.('timeout');
    expect(await samples(registry, 'podcidr_allocator_conflicts_found_total')).toEqual([
      'podcidr_allocator_conflicts_found_total{kind="malformed"} 0',
      'podcidr_allocator_conflicts_found_total{kind="out-of-range"} 0',
      'podcidr_allocator_conflicts_found_total{kind="duplicate"} 0',
      'podcidr_allocator_conflicts_found_total{kind="overlap"} 2',
    ]);
    expect(await samples(registry, 'podcidr_allocator_patches_total')).toEqual([
      'podcidr_allocator_patches_total{result="success"} 1',
      'podcidr_allocator_patches_total{result="conflict"} 0',
      'podcidr_allocator_patches_total{result="not-found"} 0',
      'podcidr_allocator_patches_total{result="timeout"} 1',
      'podcidr_allocator_patches_total{result="failed"} 0',
    ]);
  });

  it('reports the nodes waiting for space as the reconciler last counted them', async () => {
    const { registry, metrics } = harness();
    metrics.reconciler.waiting?.(5);
    metrics.reconciler.waiting?.(2);
    expect(await samples(registry, 'podcidr_allocator_nodes_waiting_for_cidr')).toEqual([
      'podcidr_allocator_nodes_waiting_for_cidr 2',
    ]);
  });

  it('observes reconcile durations in seconds', async () => {
    const { registry, metrics } = harness();
    metrics.observeReconcile(0.003);
    const lines = await samples(registry, 'podcidr_allocator_reconcile_duration_seconds');
    expect(lines).toContain('podcidr_allocator_reconcile_duration_seconds_bucket{le="0.001"} 0');
    expect(lines).toContain('podcidr_allocator_reconcile_duration_seconds_bucket{le="0.005"} 1');
    expect(lines).toContain('podcidr_allocator_reconcile_duration_seconds_count 1');
  });
});

describe('the work queue observer', () => {
  it('follows a real queue: adds, depth, retries, time queued and time worked', async () => {
    const { registry, metrics } = harness();
    const clock = new ManualClock();
    const queue = new WorkQueue({ clock, observer: metrics.queue });
    queue.add('node-a');
    queue.add('node-b');
    queue.add('node-a'); // already queued: not an add
    expect(await samples(registry, 'podcidr_allocator_workqueue_depth')).toEqual(['podcidr_allocator_workqueue_depth 2']);
    await clock.advance(2_000);
    const key = await queue.get();
    expect(key).toBe('node-a');
    await clock.advance(30);
    queue.addRateLimited('node-a');
    queue.done('node-a');
    expect(await samples(registry, 'podcidr_allocator_workqueue_depth')).toEqual(['podcidr_allocator_workqueue_depth 1']);
    expect(await samples(registry, 'podcidr_allocator_workqueue_adds_total')).toEqual([
      'podcidr_allocator_workqueue_adds_total 2',
    ]);
    expect(await samples(registry, 'podcidr_allocator_workqueue_retries_total')).toEqual([
      'podcidr_allocator_workqueue_retries_total 1',
    ]);
    const queued = await samples(registry, 'podcidr_allocator_workqueue_queue_duration_seconds');
    expect(queued).toContain('podcidr_allocator_workqueue_queue_duration_seconds_bucket{le="1"} 0');
    expect(queued).toContain('podcidr_allocator_workqueue_queue_duration_seconds_bucket{le="5"} 1');
    const worked = await samples(registry, 'podcidr_allocator_workqueue_work_duration_seconds');
    expect(worked).toContain('podcidr_allocator_workqueue_work_duration_seconds_bucket{le="0.025"} 0');
    expect(worked).toContain('podcidr_allocator_workqueue_work_duration_seconds_bucket{le="0.05"} 1');
    queue.shutDown();
  });
});

describe('the informer and request observers', () => {
  it('count lists, their duration and watch restarts by reason', async () => {
    const { registry, metrics } = harness();
    metrics.informer.onList(50_000, 3.2);
    metrics.informer.onWatchRestart('expired');
    metrics.informer.onWatchRestart('closed');
    metrics.informer.onWatchRestart('closed');
    expect(await samples(registry, 'podcidr_allocator_informer_relists_total')).toEqual([
      'podcidr_allocator_informer_relists_total 1',
    ]);
    expect(await samples(registry, 'podcidr_allocator_informer_list_duration_seconds')).toContain(
      'podcidr_allocator_informer_list_duration_seconds_bucket{le="5"} 1',
    );
    expect(await samples(registry, 'podcidr_allocator_informer_restarts_total')).toEqual([
      'podcidr_allocator_informer_restarts_total{reason="expired"} 1',
      'podcidr_allocator_informer_restarts_total{reason="stalled"} 0',
      'podcidr_allocator_informer_restarts_total{reason="error"} 0',
      'podcidr_allocator_informer_restarts_total{reason="closed"} 2',
    ]);
  });

  it('count API requests by verb and code, and time them by verb', async () => {
    const { registry, metrics } = harness();
    metrics.requests('PATCH', '200', 0.02);
    metrics.requests('PATCH', '409', 0.03);
    metrics.requests('GET', '<error>', 12);
    metrics.requests('PATCH', '200', 0.01);
    expect(await samples(registry, 'podcidr_allocator_api_requests_total')).toEqual([
      'podcidr_allocator_api_requests_total{verb="PATCH",code="200"} 2',
      'podcidr_allocator_api_requests_total{verb="PATCH",code="409"} 1',
      'podcidr_allocator_api_requests_total{verb="GET",code="<error>"} 1',
    ]);
    const durations = await samples(registry, 'podcidr_allocator_api_request_duration_seconds');
    expect(durations).toContain('podcidr_allocator_api_request_duration_seconds_bucket{le="0.025",verb="PATCH"} 2');
    expect(durations).toContain('podcidr_allocator_api_request_duration_seconds_bucket{le="0.1",verb="PATCH"} 3');
    expect(durations).toContain('podcidr_allocator_api_request_duration_seconds_bucket{le="8",verb="GET"} 0');
    expect(durations).toContain('podcidr_allocator_api_request_duration_seconds_count{verb="GET"} 1');
  });
});

describe('a broken clock', () => {
  it('drops a non-finite duration instead of throwing into the request or queue that reported it', async () => {
    const { registry, metrics } = harness();
    expect(() => metrics.requests('GET', '200', Number.NaN)).not.toThrow();
    expect(() => metrics.queue.onWorkDuration(Number.POSITIVE_INFINITY)).not.toThrow();
    expect(await samples(registry, 'podcidr_allocator_api_requests_total')).toEqual([
      'podcidr_allocator_api_requests_total{verb="GET",code="200"} 1',
    ]);
    expect(await samples(registry, 'podcidr_allocator_workqueue_work_duration_seconds')).toContain(
      'podcidr_allocator_workqueue_work_duration_seconds_count 0',
    );
  });
});

describe('registration', () => {
  it('fills only the registry passed in, process defaults included', async () => {
    const before = globalRegistry.getMetricsAsArray().length;
    const { registry } = harness();
    const other = harness().registry;
    expect(globalRegistry.getMetricsAsArray()).toHaveLength(before);
    const names = describeMetrics(registry).map((m) => m.name);
    expect(names).toEqual(describeMetrics(other).map((m) => m.name));
    expect(names).toContain('process_cpu_user_seconds_total');
    expect(names).toContain('podcidr_allocator_leader');
    expect(await registry.metrics()).toContain('# TYPE node_ipam_controller_cidrset_usage_cidrs gauge');
  });

  it('refuses a second set of metrics in the same registry', () => {
    const { registry } = harness();
    const sources = { usage: () => [], nodesWithoutPodCIDR: () => 0, conflicts: () => ({}), isLeader: () => false };
    expect(() => createMetrics(registry, sources)).toThrow(/already been registered/);
  });

  it('spells every name of ours with the podcidr_allocator_ prefix and ends counters in _total', () => {
    const ours = describeMetrics(harness().registry).filter((m) => !/^(process|nodejs)_/.test(m.name));
    const stray = ours.filter((m) => !/^(podcidr_allocator|node_ipam_controller)_[a-z_]+$/.test(m.name));
    expect(stray).toEqual([]);
    expect(ours.filter((m) => m.type === 'counter' && !m.name.endsWith('_total'))).toEqual([]);
  });
});
