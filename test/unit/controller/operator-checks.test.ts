// Unit tests of the pure parts beside allocation: range-change rules, fill thresholds with hysteresis,
// second-allocator detection and the stored form of the quarantine.

import { describe, expect, it } from 'vitest';
import type { RangeUsage } from '../../../src/allocator/types.js';
import type { RangeUsageInPool } from '../../../src/controller/ports.js';
import { RangeFillWatch, describeCrossing, servesPools } from '../../../src/controller/early-warning.js';
import {
  CLOCK_SKEW_MARGIN_MS,
  MAX_ENTRIES,
  decodeQuarantine,
  encodeQuarantine,
} from '../../../src/controller/quarantine-store.js';
import { planRangeChange } from '../../../src/controller/range-config.js';
import { ForeignWriteDetector } from '../../../src/controller/second-allocator.js';
import type { NodeInfo } from '../../../src/controller/ports.js';
import { parseRange } from '../../../src/allocator/range-spec.js';

const v4 = [parseRange('10.0.0.0/16', 24)];
const dual = [
  parseRange('10.0.0.0/16', 24),
  parseRange('fd00::/48', 64),
];

describe('planRangeChange', () => {
  it.each([
    ['no key at all', undefined],
    ['an empty value', ' '],
    ['the ranges in force', '10.0.0.0/16'],
    ['the ranges in force spelled differently', ' 10.0.0.0/16 ,'],
  ])('changes nothing for %s', (_name, text) => {
    expect(planRangeChange(v4, text)).toEqual({ kind: 'unchanged' });
  });

  it('appends new ranges with the node mask of their family', () => {
    expect(planRangeChange(dual, '10.0.0.0/16,fd00::/48,10.1.0.0/16,fd01:0::/48')).toEqual({
      kind: 'append',
      added: [
        parseRange('10.1.0.0/16', 24),
        parseRange('fd01::/48', 64),
      ],
    });
  });

  it.each([
    ['a dropped range', '10.1.0.0/16', 'drops 10.0.0.0/16|entry 1'],
    ['an edited range', '10.0.0.0/17,10.1.0.0/16', 'entry 1 is 10.0.0.0/17'],
    ['a reordered list', 'fd00::/48,10.0.0.0/16', 'entry 1 is fd00::/48'],
    ['a shrunk list', '10.0.0.0/16', 'drops fd00::/48'],
    ['text that is no CIDR', '10.0.0.0/16,fd00::/48,banana', '"banana" is not a CIDR'],
    ['host bits set', '10.0.0.0/16,fd00::/48,10.1.0.1/16', 'is not a CIDR'],
    ['a range listed twice', '10.0.0.0/16,fd00::/48,10.1.0.0/16,10.1.0.0/16', 'listed twice'],
  ])('refuses %s', (_name, text, reason) => {
    const change = planRangeChange(dual, text);
    expect(change.kind).toBe('refused');
    expect(change.kind === 'refused' ? change.reason : '').toMatch(new RegExp(reason));
  });

  it('refuses a family the cluster does not serve', () => {
    const change = planRangeChange(v4, '10.0.0.0/16,fd00::/48');
    expect(change).toEqual({ kind: 'refused', reason: 'fd00::/48 is IPv6, a family this cluster does not serve' });
  });
});

function usage(clusterCIDR: string, used: number, capacity = 100): RangeUsage {
  return { clusterCIDR, family: 'IPv4', nodeMask: 24, capacity, used, free: capacity - used, quarantined: 0, reserved: 0 };
}

describe('RangeFillWatch', () => {
  it('reports each threshold once as usage climbs past it', () => {
    const watch = new RangeFillWatch();
    expect(watch.observe([usage('a', 79)])).toEqual([]);
    expect(watch.observe([usage('a', 80)]).map((c) => c.threshold)).toEqual([0.8]);
    expect(watch.observe([usage('a', 90)])).toEqual([]);
    expect(watch.observe([usage('a', 96)]).map((c) => c.threshold)).toEqual([0.95]);
    expect(watch.observe([usage('a', 100)])).toEqual([]);
    expect(watch.levelOf({ clusterCIDR: 'a' })).toBe(0.95);
  });

  it('reports both thresholds at once when usage jumps past both', () => {
    const watch = new RangeFillWatch();
    expect(watch.observe([usage('a', 97)]).map((c) => c.threshold)).toEqual([0.8, 0.95]);
  });

  it('re-arms only after usage falls a margin below the threshold', () => {
    const watch = new RangeFillWatch();
    watch.observe([usage('a', 81)]);
    expect(watch.observe([usage('a', 78)])).toEqual([]);
    expect(watch.observe([usage('a', 81)])).toEqual([]);
    expect(watch.observe([usage('a', 74)])).toEqual([]);
    expect(watch.levelOf({ clusterCIDR: 'a' })).toBe(0);
    expect(watch.observe([usage('a', 80)]).map((c) => c.threshold)).toEqual([0.8]);
  });

  it('watches two pools over one range apart, each crossing once', () => {
    const watch = new RangeFillWatch();
    const small = { ...usage('a', 50), pool: 'small' };
    const big = { ...usage('a', 85), pool: 'big' };
    expect(watch.observe([small, big]).map((c) => [c.pool, c.threshold])).toEqual([['big', 0.8]]);
    expect(watch.observe([{ ...small, used: 81 }, big]).map((c) => [c.pool, c.threshold])).toEqual([['small', 0.8]]);
    expect(watch.levelOf(big)).toBe(0.8);
    expect(watch.levelOf({ clusterCIDR: 'a', pool: 'other' })).toBe(0);
  });

  it('names the pool in its note when ClusterCIDRs are served, and what adds room there', () => {
    const crossing = { clusterCIDR: '10.0.0.0/16', threshold: 0.8, fraction: 0.8, used: 80, capacity: 100 };
    const usageOf = (pool: string): RangeUsageInPool[] => [{ ...usage('10.0.0.0/16', 80), pool }];
    expect(servesPools(usageOf('--cluster-cidr'))).toBe(false);
    expect(servesPools(usageOf('big'))).toBe(true);
    expect(describeCrossing(crossing)).toMatch(/^cluster CIDR 10\.0\.0\.0\/16 is 80 % used .*podcidr-allocator-config/);
    expect(describeCrossing({ ...crossing, pool: 'big' }, true)).toMatch(
      /^cluster CIDR 10\.0\.0\.0\/16 of ClusterCIDR big is 80 % used .*; add a ClusterCIDR for these nodes/,
    );
    expect(describeCrossing({ ...crossing, pool: '--cluster-cidr' }, true)).toMatch(
      /^cluster CIDR 10\.0\.0\.0\/16 of the --cluster-cidr pool is 80 % used .*podcidr-allocator-config/,
    );
  });

  it('watches ranges separately and ignores empty ones', () => {
    const watch = new RangeFillWatch();
    const crossed = watch.observe([usage('a', 85), usage('b', 10), usage('c', 0, 0)]);
    expect(crossed.map((c) => c.clusterCIDR)).toEqual(['a']);
  });
});

function node(name: string, podCIDRs: string[], podCIDRManager?: string, uid = `${name}-uid`): NodeInfo {
  return { name, uid, resourceVersion: '1', podCIDRs, ...(podCIDRManager ? { podCIDRManager } : {}) };
}

describe('ForeignWriteDetector', () => {
  it('adopts what nodes carry at the start of a term, whoever wrote it', () => {
    const detector = new ForeignWriteDetector('podcidr-allocator');
    const old = node('a', ['10.0.0.0/24'], 'kube-controller-manager');
    detector.startTerm();
    expect(detector.observe(old, { ...old, resourceVersion: '2' })).toBeUndefined();
  });

  it('reports podCIDRs another manager set on a node known without them', () => {
    const detector = new ForeignWriteDetector('podcidr-allocator');
    detector.startTerm();
    const set = node('a', ['10.0.0.0/24'], 'kube-controller-manager');
    expect(detector.observe(node('a', []), set)?.manager).toBe('kube-controller-manager');
    expect(detector.observe(set, { ...set, resourceVersion: '3' })).toBeUndefined();
  });

  it('reports a new node created with foreign podCIDRs, but not one we patched', () => {
    const detector = new ForeignWriteDetector('podcidr-allocator');
    detector.startTerm();
    expect(detector.observe(undefined, node('a', ['10.0.0.0/24'], 'kubectl-create'))?.manager).toBe('kubectl-create');
    expect(detector.observe(node('b', []), node('b', ['10.0.1.0/24'], 'podcidr-allocator'))).toBeUndefined();
  });

  it('says nothing when the manager is unknown or no term runs', () => {
    const detector = new ForeignWriteDetector('podcidr-allocator');
    expect(detector.observe(undefined, node('a', ['10.0.0.0/24'], 'kube-controller-manager'))).toBeUndefined();
    detector.startTerm();
    expect(detector.observe(node('b', []), node('b', ['10.0.1.0/24']))).toBeUndefined();
    detector.endTerm();
    expect(detector.observe(undefined, node('c', ['10.0.2.0/24'], 'other'))).toBeUndefined();
  });

  it('treats a re-created node as new', () => {
    const detector = new ForeignWriteDetector('podcidr-allocator');
    detector.startTerm();
    const before = node('a', ['10.0.0.0/24'], 'other', 'uid-1');
    expect(detector.observe(before, node('a', ['10.0.5.0/24'], 'other', 'uid-2'))?.manager).toBe('other');
  });
});

describe('stored quarantine', () => {
  it('round-trips entries, adding the clock-skew margin on read', () => {
    const text = encodeQuarantine(
      [
        { cidr: '10.0.2.0/24', releasedAt: 2_000 },
        { cidr: '10.0.1.0/24', releasedAt: 1_000 },
      ],
      1_500,
      60_000,
    );
    expect(decodeQuarantine(text)).toEqual([
      { cidr: '10.0.1.0/24', releasedAt: 1_000 + CLOCK_SKEW_MARGIN_MS },
      { cidr: '10.0.2.0/24', releasedAt: 2_000 + CLOCK_SKEW_MARGIN_MS },
    ]);
  });

  it('leaves out entries whose quarantine is over', () => {
    const text = encodeQuarantine([{ cidr: '10.0.1.0/24', releasedAt: 0 }, { cidr: '10.0.2.0/24', releasedAt: 50_000 }], 60_000, 60_000);
    expect(decodeQuarantine(text, 0).map((e) => e.cidr)).toEqual(['10.0.2.0/24']);
  });

  it('keeps the newest entries when there are too many', () => {
    const entries = Array.from({ length: MAX_ENTRIES + 10 }, (_, i) => ({ cidr: `10.${i >> 8}.${i & 255}.0/24`, releasedAt: i }));
    const decoded = decodeQuarantine(encodeQuarantine(entries, 0, 1e9), 0);
    expect(decoded).toHaveLength(MAX_ENTRIES);
    expect(decoded[0]?.releasedAt).toBe(10);
  });

  it.each([
    ['no state', undefined],
    ['not JSON', '{'],
    ['no entries', '{"version":1}'],
    ['bad entries', '{"version":1,"entries":[["x",1],["10.0.0.0/24","1"],[1,2],"z",["10.0.0.1/24",5]]}'],
  ])('reads %s as an empty quarantine', (_name, text) => {
    expect(decodeQuarantine(text)).toEqual([]);
  });
});
