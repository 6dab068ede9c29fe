// Unit tests of the operator features and the continuous audit over in-memory ConfigMaps, Events and a real
// ClusterAllocator: appended ranges, refused changes, early warnings, foreign writes, the quarantine's round trip.

import { MemoryClusterCIDRs } from './memory-cluster-cidrs.js';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ClusterAllocator } from '../../../src/allocator/cluster-allocator.js';
import type { RangeSpec } from '../../../src/allocator/types.js';
import { ContinuousAudit } from '../../../src/controller/audit.js';
import type { EventRegarding, EventType, NodeInfo, NodeLister, ObjectEventSink } from '../../../src/controller/ports.js';
import { QUARANTINE_STATE_NAME, QuarantinePersister } from '../../../src/controller/quarantine-store.js';
import { createFeatureMetrics } from '../../../src/metrics/features.js';
import { type Features, type TermHandle, createFeatures, prepareTerm, startAll } from '../../../src/term/features/index.js';
import { ManualClock } from '../../support/manual-clock.js';
import { MemoryConfigMaps } from '../controller/memory-config-maps.js';
import { RecordingEvents, memoryLogger } from '../controller/reconciler-fakes.js';
import { parseRange } from '../../../src/allocator/range-spec.js';
import { cidrs } from '../../support/cidrs.js';
import { formatCidr, parseCidr } from '../../../src/cidr/index.js';
import { PoolAllocator, type PoolDefinition } from '../../../src/controller/pool-allocator.js';

class RecordingObjectEvents implements ObjectEventSink {
  readonly events: { name: string; type: EventType; reason: string; note: string }[] = [];
  readonly regarding: EventRegarding[] = [];
  emit(regarding: EventRegarding, type: EventType, reason: string, note: string): void {
    this.events.push({ name: regarding.name, type, reason, note });
    this.regarding.push(regarding);
  }
}

class Lister implements NodeLister {
  readonly nodes = new Map<string, NodeInfo>();
  put(name: string, podCIDRs: string[], podCIDRManager?: string): NodeInfo {
    const node: NodeInfo = { name, uid: `${name}-uid`, resourceVersion: '1', podCIDRs, ...(podCIDRManager ? { podCIDRManager } : {}) };
    this.nodes.set(name, node);
    return node;
  }
  get(name: string): NodeInfo | undefined {
    return this.nodes.get(name);
  }
  list(): NodeInfo[] {
    return [...this.nodes.values()];
  }
}

const flagRanges: RangeSpec[] = [parseRange('10.0.0.0/22', 24)];

function setup(quarantineMs = 0, clock = new ManualClock()) {
  const configMaps = new MemoryConfigMaps();
  const objectEvents = new RecordingObjectEvents();
  const nodeEvents = new RecordingEvents();
  const lister = new Lister();
  const registry = new Registry();
  const { logger, lines } = memoryLogger();
  // Gauges read the features at scrape time; the features count into the metrics' observer.
  const foreignWrites = createFeatureMetrics(registry, {
    auditFindings: () => features.audit.counts(),
    rangeLevels: () => features.earlyWarning.levels(),
    invalidPools: () => features.pools.invalid(),
  });
  const clusterCIDRs = new MemoryClusterCIDRs();
  const features: Features = createFeatures({
    configMaps,
    clusterCIDRs,
    objectEvents,
    nodeEvents,
    lister,
    foreignWrites,
    clock,
    log: logger,
    ranges: flagRanges,
    reserved: [],
    quarantineMs,
    auditIntervalMs: 0,
    fieldManager: 'podcidr-allocator',
    usageCheckMs: 60_000,
    quarantineFlushMs: 60_000,
  });
  // The first list of pools (none) is what a term waits for.
  void features.pools.watch(new AbortController().signal);
  return {
    configMaps,
    clusterCIDRs,
    objectEvents,
    nodeEvents,
    lister,
    registry,
    features,
    lines,
    prepareTerm: (signal: AbortSignal) => prepareTerm(features, signal),
    termStarted: (handle: TermHandle, signal: AbortSignal) => startAll(features.all, handle, signal),
  };
}

const labelled = (key: string): PoolDefinition['nodeSelector'] => ({
  nodeSelectorTerms: [{ matchExpressions: [{ key, operator: 'Exists' }] }],
});

function term(allocator: ClusterAllocator | PoolAllocator): TermHandle & { appended: RangeSpec[] } {
  const appended: RangeSpec[] = [];
  return {
    allocator,
    appended,
    appendRanges(ranges) {
      for (const r of ranges) {
        if (allocator instanceof PoolAllocator) allocator.appendFlagRange(r);
        else allocator.appendRange(r);
      }
      appended.push(...ranges);
    },
    inProgress: () => false,
    pools: { add: () => false, deleting: () => {}, remove: () => {}, holds: () => false, usageOf: () => [] },
  };
}

describe('Operator features: ranges from podcidr-allocator-config', () => {
  it('starts a term with the ranges the ConfigMap appends', async () => {
    const s = setup();
    s.configMaps.set('podcidr-allocator-config', { clusterCIDRs: '10.0.0.0/22,10.1.0.0/22' });
    await s.prepareTerm(new AbortController().signal);
    expect(s.features.ranges.ranges().map((r) => formatCidr(r.clusterCIDR))).toEqual(['10.0.0.0/22', '10.1.0.0/22']);
    expect(s.objectEvents.events.map((e) => e.reason)).toEqual(['PodCIDRRangesAppended']);
  });

  it('appends to a running term and refuses a change that edits a range, keeping the ranges in force', async () => {
    const s = setup();
    const allocator = new ClusterAllocator({ ranges: flagRanges });
    const handle = term(allocator);
    const stop = new AbortController();
    await s.prepareTerm(stop.signal);
    s.termStarted(handle, stop.signal);
    s.configMaps.set('podcidr-allocator-config', { clusterCIDRs: '10.0.0.0/22,10.1.0.0/23' });
    await s.prepareTerm(stop.signal);
    expect(handle.appended).toEqual([parseRange('10.1.0.0/23', 24)]);
    expect(allocator.ranges()).toHaveLength(2);

    s.configMaps.set('podcidr-allocator-config', { clusterCIDRs: '10.0.0.0/22,10.1.0.0/22' });
    await s.prepareTerm(stop.signal);
    expect(allocator.ranges()).toHaveLength(2);
    expect(s.features.ranges.ranges().map((r) => formatCidr(r.clusterCIDR))).toEqual(['10.0.0.0/22', '10.1.0.0/23']);
    const refused = s.objectEvents.events.filter((e) => e.reason === 'PodCIDRRangeChangeRefused');
    expect(refused).toHaveLength(1);
    expect(refused[0]?.note).toContain('entry 2 is 10.1.0.0/22 where 10.1.0.0/23 is in force');
    expect(s.lines.some((l) => l.msg.includes('refused the change to podcidr-allocator-config'))).toBe(true);
    stop.abort();
  });

  it('lets a standby follow the ranges without Events, and a new leader records a refusal that stands', async () => {
    const s = setup();
    s.configMaps.set('podcidr-allocator-config', { clusterCIDRs: '10.0.0.0/22,10.1.0.0/22' });
    await s.features.ranges.watch(new AbortController().signal);
    expect(s.features.ranges.ranges()).toHaveLength(2);
    s.configMaps.set('podcidr-allocator-config', { clusterCIDRs: '10.1.0.0/22' });
    await s.features.ranges.watch(new AbortController().signal);
    expect(s.objectEvents.events).toEqual([]);
    const term1 = new AbortController();
    await s.prepareTerm(term1.signal);
    expect(s.objectEvents.events.map((e) => e.reason)).toEqual(['PodCIDRRangeChangeRefused']);
    term1.abort();
    s.configMaps.set('podcidr-allocator-config', { clusterCIDRs: '10.0.0.0/22,10.1.0.0/22,10.2.0.0/22' });
    await s.features.ranges.watch(new AbortController().signal);
    expect(s.features.ranges.ranges()).toHaveLength(3);
    expect(s.objectEvents.events).toHaveLength(1);
  });

  it('refuses an appended range that overlaps one in force', async () => {
    const s = setup();
    s.configMaps.set('podcidr-allocator-config', { clusterCIDRs: '10.0.0.0/22,10.0.2.0/23' });
    await s.prepareTerm(new AbortController().signal);
    expect(s.features.ranges.ranges()).toEqual(flagRanges);
    expect(s.objectEvents.events[0]?.note).toMatch(/overlaps the range 10\.0\.0\.0\/22/);
  });
});

describe('Operator features: ClusterCIDR pools', () => {
  it('reports a ClusterCIDR it cannot serve: logged by a standby, an Event from the leader, counted', async () => {
    const s = setup();
    s.clusterCIDRs.put({ name: 'tiny', spec: { perNodeHostBits: 2, ipv4: '10.9.0.0/16' } });
    expect(s.features.pools.invalid()).toBe(1);
    expect(s.objectEvents.events).toEqual([]);
    expect(s.lines.filter((l) => l.msg === 'ClusterCIDR cannot be served; leaving it out')).toHaveLength(1);

    const signal = new AbortController().signal;
    await s.prepareTerm(signal);
    s.termStarted(term(new ClusterAllocator({ ranges: flagRanges })), signal);
    expect(s.objectEvents.events.map((e) => [e.name, e.type, e.reason])).toEqual([['tiny', 'Warning', 'ClusterCIDRInvalid']]);
    expect(s.objectEvents.events[0]?.note).toMatch(/perNodeHostBits/);
    expect(s.objectEvents.regarding[0]).toMatchObject({ kind: 'ClusterCIDR', apiVersion: 'networking.x-k8s.io/v1', clusterScoped: true });
    expect(await s.registry.metrics()).toMatch(/^podcidr_allocator_clustercidrs_invalid 1$/m);
    // Logged once, however often the object is seen.
    expect(s.lines.filter((l) => l.msg === 'ClusterCIDR cannot be served; leaving it out')).toHaveLength(1);

    s.clusterCIDRs.delete('tiny');
    expect(s.features.pools.invalid()).toBe(0);
    expect(await s.registry.metrics()).toMatch(/^podcidr_allocator_clustercidrs_invalid 0$/m);
  });
});

describe('Operator features: early warning', () => {
  it('warns once on the ConfigMap per threshold crossed and exports the level', async () => {
    const s = setup();
    const allocator = new ClusterAllocator({ ranges: [parseRange('10.0.0.0/20', 24)] });
    const stop = new AbortController();
    await s.prepareTerm(stop.signal);
    s.termStarted(term(allocator), stop.signal);
    for (let i = 0; i < 12; i++) allocator.allocate();
    s.features.earlyWarning.checkUsage();
    expect(s.objectEvents.events).toEqual([]);
    allocator.allocate();
    s.features.earlyWarning.checkUsage();
    s.features.earlyWarning.checkUsage();
    expect(s.objectEvents.events.map((e) => [e.name, e.reason])).toEqual([['podcidr-allocator-config', 'PodCIDRRangeNearlyFull']]);
    expect(s.objectEvents.events[0]?.note).toContain('10.0.0.0/20 is 81.3 % used (13 of 16 node subnets), past 80 %');
    for (let i = 0; i < 3; i++) allocator.allocate();
    s.features.earlyWarning.checkUsage();
    expect(s.objectEvents.events).toHaveLength(2);
    const metrics = await s.registry.getSingleMetricAsString('podcidr_allocator_range_nearly_full');
    expect(metrics).toContain('podcidr_allocator_range_nearly_full{clusterCIDR="10.0.0.0/20",pool="--cluster-cidr"} 0.95');
    stop.abort();
  });

  it('warns per pool, naming it, when two pools share one range', async () => {
    const s = setup();
    // Both pools carve the flags' 10.0.0.0/22: /24s for every node, /23s for nodes labelled big.
    const big = { name: 'big', ipv4: parseCidr('10.0.0.0/22'), perNodeHostBits: 9, nodeSelector: labelled('big') };
    const allocator = new PoolAllocator({ flagRanges, pools: [big] });
    const stop = new AbortController();
    await s.prepareTerm(stop.signal);
    s.termStarted(term(allocator), stop.signal);
    allocator.allocate({ name: 'a', labels: {} });
    allocator.allocate({ name: 'b', labels: { big: '' } });
    // The flags' pool is 3 of 4 /24s used (75 %), big 2 of 2 /23s (100 %).
    s.features.earlyWarning.checkUsage();
    expect(s.objectEvents.events.map((e) => e.note)).toEqual([
      expect.stringMatching(/^cluster CIDR 10\.0\.0\.0\/22 of ClusterCIDR big is 100 % used .*past 80 %/),
      expect.stringMatching(/^cluster CIDR 10\.0\.0\.0\/22 of ClusterCIDR big is 100 % used .*past 95 %/),
    ]);
    expect(s.lines.filter((l) => l.msg.includes('ClusterCIDR big')).map((l) => l.pool)).toEqual(['big', 'big']);
    allocator.allocate({ name: 'c', labels: {} });
    s.features.earlyWarning.checkUsage();
    expect(s.objectEvents.events.slice(2).map((e) => e.note)).toEqual([
      expect.stringMatching(/^cluster CIDR 10\.0\.0\.0\/22 of the --cluster-cidr pool is 100 % used .*past 80 %/),
      expect.stringMatching(/^cluster CIDR 10\.0\.0\.0\/22 of the --cluster-cidr pool is 100 % used .*past 95 %/),
    ]);
    const metrics = await s.registry.getSingleMetricAsString('podcidr_allocator_range_nearly_full');
    expect(metrics.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      'podcidr_allocator_range_nearly_full{clusterCIDR="10.0.0.0/22",pool="--cluster-cidr"} 0.95',
      'podcidr_allocator_range_nearly_full{clusterCIDR="10.0.0.0/22",pool="big"} 0.95',
    ]);
    stop.abort();
  });
});

describe('Operator features: second allocator', () => {
  it('reports podCIDRs set by another manager after the term started, on the node and in a counter', async () => {
    const s = setup();
    s.lister.put('old', ['10.0.0.0/24'], 'kube-controller-manager');
    s.lister.put('fresh', []);
    const stop = new AbortController();
    s.termStarted(term(new ClusterAllocator({ ranges: flagRanges })), stop.signal);
    const change = (name: string, podCIDRs: string[]): void => {
      const before = s.lister.get(name);
      s.features.secondAllocator.nodeChanged(before, s.lister.put(name, podCIDRs, 'kube-controller-manager'));
    };
    change('old', ['10.0.0.0/24']);
    change('fresh', ['10.0.1.0/24']);
    expect(s.nodeEvents.events.map((e) => [e.node, e.reason])).toEqual([['fresh', 'PodCIDRSetByOtherAllocator']]);
    const metrics = await s.registry.getSingleMetricAsString('podcidr_allocator_foreign_podcidr_writes_total');
    expect(metrics).toContain('podcidr_allocator_foreign_podcidr_writes_total{manager="kube-controller-manager"} 1');
    stop.abort();
    change('later', ['10.0.2.0/24']);
    expect(s.nodeEvents.events).toHaveLength(1);
  });
});

describe('Operator features: durable quarantine', () => {
  it('hands the quarantine of one term to the next through the state ConfigMap', async () => {
    const clock = new ManualClock(1_000_000);
    const s = setup(60_000);
    const first = new ClusterAllocator({ ranges: flagRanges, quarantineMs: 60_000, now: clock.now });
    const [cidr = ''] = first.allocate();
    first.release(cidr);
    const persister = new QuarantinePersister({ store: s.configMaps, quarantined: () => first.quarantined(), quarantineMs: 60_000, log: memoryLogger().logger, now: clock.now });
    expect(await persister.flush()).toBe(true);
    expect(await persister.flush()).toBe(false);
    expect(s.configMaps.maps.get(QUARANTINE_STATE_NAME)?.data['quarantine.json']).toContain(cidr);

    clock.jump(30_000);
    const seeded = await s.prepareTerm(new AbortController().signal);
    const second = new ClusterAllocator({ ranges: flagRanges, quarantineMs: 60_000, now: clock.now });
    second.seedQuarantine(seeded);
    const handed = new Set<string>();
    for (let i = 0; i < 3; i++) handed.add(second.allocate()[0] ?? '');
    expect(handed.has(cidr)).toBe(false);
    expect(() => second.allocate()).toThrow();
    // Released at t, read with a 10 s margin: free again 70 s after the release, not 60 s.
    clock.jump(35_000);
    expect(() => second.allocate()).toThrow();
    clock.jump(6_000);
    expect(second.allocate()).toEqual([cidr]);
  });

  it('writes back stored entries a term could not load, until they expire', async () => {
    const clock = new ManualClock(1_000_000);
    const s = setup(60_000);
    s.configMaps.set(QUARANTINE_STATE_NAME, { 'quarantine.json': JSON.stringify({ version: 1, entries: [['10.0.3.0/24', clock.now() - 1000]] }) });
    const live = [{ cidr: '10.0.1.0/24', releasedAt: clock.now() }];
    const persister = new QuarantinePersister({ store: s.configMaps, quarantined: () => live, quarantineMs: 60_000, log: memoryLogger().logger, now: clock.now });
    expect(await persister.flush()).toBe(true);
    const stored = (): string => s.configMaps.maps.get(QUARANTINE_STATE_NAME)?.data['quarantine.json'] ?? '';
    expect(stored()).toContain('10.0.3.0/24');
    expect(stored()).toContain('10.0.1.0/24');
    clock.jump(59_500);
    expect(await persister.flush()).toBe(true);
    expect(stored()).not.toContain('10.0.3.0/24');
  });

  it('retries a write that lost a race from a fresh read', async () => {
    const s = setup(60_000);
    s.configMaps.set(QUARANTINE_STATE_NAME, {});
    const entries = [{ cidr: '10.0.1.0/24', releasedAt: Date.now() }];
    const persister = new QuarantinePersister({ store: s.configMaps, quarantined: () => entries, quarantineMs: 60_000, log: memoryLogger().logger });
    await persister.load();
    s.configMaps.set(QUARANTINE_STATE_NAME, { other: 'writer' });
    expect(await persister.flush()).toBe(false);
    expect(await persister.flush()).toBe(true);
  });
});

describe('ContinuousAudit', () => {
  it('counts findings, raises one Event per new finding and reports a node without podCIDRs only at the second run', () => {
    const events = new RecordingEvents();
    const audit = new ContinuousAudit({ events, log: memoryLogger().logger, fieldManager: 'podcidr-allocator' });
    const lister = new Lister();
    lister.put('a', ['10.0.0.0/24']);
    lister.put('b', ['10.0.0.0/24']);
    lister.put('c', ['192.168.0.0/24']);
    lister.put('d', []);
    const first = audit.run(lister.list(), flagRanges, cidrs('10.0.3.0/24'));
    expect(first.findings.map((p) => `${p.kind}:${p.node}`)).toEqual(['duplicate:b', 'out-of-range:c']);
    expect(events.reasons()).toEqual(['PodCIDRConflict', 'PodCIDROutOfRange']);
    const second = audit.run(lister.list(), flagRanges, cidrs('10.0.3.0/24'));
    expect(second.fresh.map((p) => `${p.kind}:${p.node}`)).toEqual(['missing:d']);
    expect(events.reasons()).toEqual(['PodCIDRConflict', 'PodCIDROutOfRange', 'PodCIDRMissing']);
    expect(audit.counts()).toMatchObject({ duplicate: 1, 'out-of-range': 1, missing: 1, overlap: 0 });
    expect(audit.conflicts()).toEqual({ malformed: 0, 'out-of-range': 1, duplicate: 1, overlap: 0 });
    lister.nodes.delete('b');
    lister.put('e', ['10.0.3.0/24']);
    audit.run(lister.list(), flagRanges, cidrs('10.0.3.0/24'));
    expect(audit.counts()).toMatchObject({ duplicate: 0, reserved: 1 });
  });

  it('does not report a node without podCIDRs while it still waits in the work queue', () => {
    const events = new RecordingEvents();
    const audit = new ContinuousAudit({ events, log: memoryLogger().logger, fieldManager: 'podcidr-allocator' });
    const lister = new Lister();
    lister.put('queued', []);
    lister.put('stuck', []);
    const queued = (node: NodeInfo): boolean => node.name === 'queued';
    audit.run(lister.list(), flagRanges, [], queued);
    const second = audit.run(lister.list(), flagRanges, [], queued);
    expect(second.findings.map((p) => `${p.kind}:${p.node}`)).toEqual(['missing:stuck']);
    expect(events.reasons()).toEqual(['PodCIDRMissing']);
    // Out of the queue and still without podCIDRs (e.g. waiting out a backoff): now it is a finding.
    const third = audit.run(lister.list(), flagRanges, [], () => false);
    expect(third.fresh.map((p) => `${p.kind}:${p.node}`)).toEqual(['missing:queued']);
  });
});

describe('Operator features: continuous audit with pools', () => {
  it("audits against the term's ClusterCIDR pools too, so their nodes are not out of range", async () => {
    const s = setup();
    const edge = { name: 'edge', ipv4: parseCidr('10.1.0.0/24'), perNodeHostBits: 6 };
    const allocator = new PoolAllocator({ flagRanges, pools: [edge] });
    s.lister.put('a', ['10.1.0.0/26']);
    s.lister.put('b', ['10.9.0.0/24']);
    const stop = new AbortController();
    await s.prepareTerm(stop.signal);
    s.termStarted(term(allocator), stop.signal);
    expect(s.features.audit.conflicts()).toEqual({ 'out-of-range': 1 });
    s.features.audit.auditNow();
    expect(s.features.audit.counts()['out-of-range']).toBe(1);
    expect(s.nodeEvents.events.map((e) => [e.node, e.reason])).toEqual([['b', 'PodCIDROutOfRange']]);
    stop.abort();
  });
});

describe('Operator features: timers', () => {
  it('run on the injected clock while the term runs and stop with it', async () => {
    const clock = new ManualClock();
    const s = setup(60_000, clock);
    const allocator = new ClusterAllocator({ ranges: [parseRange('10.0.0.0/20', 24)] });
    const stop = new AbortController();
    await s.prepareTerm(stop.signal);
    s.termStarted(term(allocator), stop.signal);
    for (let i = 0; i < 13; i++) allocator.allocate();
    await clock.advance(59_999);
    expect(s.objectEvents.events).toEqual([]);
    await clock.advance(1);
    expect(s.objectEvents.events.map((e) => e.reason)).toEqual(['PodCIDRRangeNearlyFull']);
    stop.abort();
    expect(clock.pending()).toBe(0);
  });
});
