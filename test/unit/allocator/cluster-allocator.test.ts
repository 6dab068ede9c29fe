// ClusterAllocator: dual-stack all-or-nothing, ranges in order, reserved ranges, the release
// quarantine on a fake clock, and what the observer hears.

import { describe, expect, it } from 'vitest';
import {
  CidrOutOfRangeError,
  CidrParseError,
  ClusterAllocator,
  InvalidRangeError,
  RangeExhaustedError,
  type AllocatorObserver,
  type ClusterAllocatorOptions,
} from '../../../src/allocator/index.js';
import { ManualClock } from '../../support/manual-clock.js';
import { formatCidr, overlaps, parseCidr, type Cidr } from '../../../src/cidr/index.js';
import { parseRange } from '../../../src/allocator/range-spec.js';
import { cidrs } from '../../support/cidrs.js';

function recorder(): { events: string[]; observer: AllocatorObserver } {
  const events: string[] = [];
  return {
    events,
    observer: {
      allocated: (cidr, tries) => events.push(`allocated ${cidr} tries=${tries}`),
      occupied: (cidr, n) => events.push(`occupied ${cidr} ${n}`),
      released: (cidr, n) => events.push(`released ${cidr} ${n}`),
    },
  };
}

function allocator(options: Partial<ClusterAllocatorOptions> & Pick<ClusterAllocatorOptions, 'ranges'>) {
  return new ClusterAllocator(options);
}

describe('ClusterAllocator families and order', () => {
  it.each([
    [
      [parseRange('10.244.0.0/16', 24), parseRange('fd00:10:244::/56', 64)],
      ['IPv4', 'IPv6'],
      [['10.244.0.0/24', 'fd00:10:244::/64'], ['10.244.1.0/24', 'fd00:10:244:1::/64']],
    ],
    [
      [parseRange('fd00:10:244::/56', 64), parseRange('10.244.0.0/16', 24)],
      ['IPv6', 'IPv4'],
      [['fd00:10:244::/64', '10.244.0.0/24'], ['fd00:10:244:1::/64', '10.244.1.0/24']],
    ],
    [[parseRange('10.233.64.0/18', 24)], ['IPv4'], [['10.233.64.0/24'], ['10.233.65.0/24']]],
  ])('orders podCIDRs like the configured ranges', (ranges, families, expected) => {
    const a = allocator({ ranges });
    expect(a.families).toEqual(families);
    expect([a.allocate(), a.allocate()]).toEqual(expected);
  });

  it('fills the first range of a family before the next, and uses appended ranges', () => {
    const a = allocator({ ranges: [parseRange('10.0.0.0/23', 24)] });
    expect([a.allocate(), a.allocate()]).toEqual([['10.0.0.0/24'], ['10.0.1.0/24']]);
    expect(() => a.allocate()).toThrow(RangeExhaustedError);
    a.appendRange(parseRange('10.1.0.0/24', 26));
    expect(a.allocate()).toEqual(['10.1.0.0/26']);
    a.release('10.0.1.0/24');
    expect(a.allocate()).toEqual(['10.0.1.0/24']);
    expect(a.ranges().map((r) => formatCidr(r.clusterCIDR))).toEqual(['10.0.0.0/23', '10.1.0.0/24']);
  });

  it.each([
    ['10.0.1.0/24', 26, 'overlaps the range 10.0.0.0/23'],
    ['fd00::/48', 64, 'a new family cannot be added at runtime'],
    // A range is parsed before it can be appended, so this one never reaches the allocator.
    ['10.9.0.0/8', 24, 'host bits set'],
  ])('refuses to append %s with /%i subnets', (cidr, mask, reason) => {
    const a = allocator({ ranges: [parseRange('10.0.0.0/23', 24)] });
    expect(() => a.appendRange(parseRange(cidr, mask))).toThrow(reason);
    expect(a.ranges()).toHaveLength(1);
  });

  it('refuses overlapping ranges and an empty range list at construction', () => {
    expect(
      () =>
        new ClusterAllocator({
          ranges: [
            parseRange('10.0.0.0/16', 24),
            parseRange('10.0.128.0/17', 24),
          ],
        }),
    ).toThrow(InvalidRangeError);
    expect(() => new ClusterAllocator({ ranges: [] })).toThrow(RangeError);
  });
});

describe('ClusterAllocator dual-stack allocation is all or nothing', () => {
  it('gives back the IPv4 part when IPv6 is exhausted, without quarantine, and restores the cursor', () => {
    const clock = new ManualClock(1_000);
    const { events, observer } = recorder();
    const a = allocator({
      ranges: [
        parseRange('10.244.0.0/16', 24),
        parseRange('fd00::/63', 64),
      ],
      quarantineMs: 60_000,
      now: clock.now,
      observer,
    });
    a.allocate();
    a.allocate();
    events.length = 0;
    expect(() => a.allocate()).toThrow(RangeExhaustedError);
    expect(events).toEqual([]);
    expect(a.quarantined()).toEqual([]);
    const ipv4 = a.usage()[0];
    expect(ipv4?.used).toBe(2);
    expect(a.isAllocated('10.244.2.0/24')).toBe(false);
    a.occupy('fd00:0:0:1::/64');
    a.release('fd00::/64');
    clock.jump(60_000);
    expect(a.allocate()).toEqual(['10.244.2.0/24', 'fd00::/64']);
  });

  it('reports the exhausted family, its ranges and when quarantine frees space', () => {
    const clock = new ManualClock(1_000);
    const a = allocator({
      ranges: [parseRange('fd00::/63', 64)],
      quarantineMs: 5_000,
      now: clock.now,
    });
    a.allocate();
    a.allocate();
    a.release('fd00::/64');
    let thrown: unknown;
    try {
      a.allocate();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RangeExhaustedError);
    const error = thrown as RangeExhaustedError;
    expect(error.family).toBe('IPv6');
    expect(error.clusterCIDRs).toEqual(['fd00::/63']);
    expect(error.quarantined).toBe(1);
    expect(error.retryAt).toBe(6_000);
    expect(error.message).toContain('there are no remaining CIDRs left to allocate in the accepted range');
  });
});

describe('ClusterAllocator reserved ranges', () => {
  it('never hands out reserved subnets and never frees them on release', () => {
    const a = allocator({
      ranges: [parseRange('10.96.0.0/22', 24)],
      reserved: cidrs('10.96.0.0/24', '10.96.2.128/25', '192.168.0.0/16'),
    });
    expect(a.usage()[0]).toMatchObject({ capacity: 4, used: 2, free: 2, reserved: 2 });
    expect([a.allocate(), a.allocate()]).toEqual([['10.96.1.0/24'], ['10.96.3.0/24']]);
    a.release('10.96.0.0/22');
    expect(a.usage()[0]).toMatchObject({ used: 2, free: 2, reserved: 2 });
    expect(a.isAllocated('10.96.0.0/24')).toBe(true);
    expect([a.allocate(), a.allocate()]).toEqual([['10.96.1.0/24'], ['10.96.3.0/24']]);
    expect(() => a.allocate()).toThrow(RangeExhaustedError);
  });

  it('applies reserved ranges to ranges appended later', () => {
    const a = allocator({ ranges: [parseRange('10.0.0.0/24', 24)], reserved: cidrs('10.1.0.0/25') });
    a.appendRange(parseRange('10.1.0.0/24', 25));
    expect(a.usage()[1]).toMatchObject({ capacity: 2, reserved: 1, used: 1 });
  });
});

describe('ClusterAllocator release quarantine', () => {
  function quarantined(ms: number, clock: ManualClock) {
    return allocator({ ranges: [parseRange('10.0.0.0/30', 31)], quarantineMs: ms, now: clock.now });
  }

  it('keeps a released CIDR away from allocation until the delay has passed', () => {
    const clock = new ManualClock(1_000);
    const a = quarantined(30_000, clock);
    expect(a.allocate()).toEqual(['10.0.0.0/31']);
    expect(a.allocate()).toEqual(['10.0.0.2/31']);
    a.release('10.0.0.0/31');
    a.release('10.0.0.0/31');
    expect(a.quarantined()).toEqual([{ cidr: '10.0.0.0/31', releasedAt: 1_000 }]);
    expect(a.nextQuarantineExpiry()).toBe(31_000);
    expect(a.isAllocated('10.0.0.0/31')).toBe(false);
    expect(a.usage()[0]).toMatchObject({ used: 2, free: 0, quarantined: 1 });
    clock.jumpTo(30_999);
    expect(() => a.allocate()).toThrow(RangeExhaustedError);
    clock.jumpTo(31_000);
    expect(a.allocate()).toEqual(['10.0.0.0/31']);
    expect(a.quarantined()).toEqual([]);
    expect(a.nextQuarantineExpiry()).toBeUndefined();
  });

  it('frees at once with a zero delay, like upstream', () => {
    const clock = new ManualClock(1_000);
    const a = quarantined(0, clock);
    a.allocate();
    a.release('10.0.0.0/31');
    expect(a.quarantined()).toEqual([]);
    expect(a.usage()[0]?.used).toBe(0);
  });

  it('takes a quarantined CIDR out of quarantine when a node turns up holding it', () => {
    const clock = new ManualClock(1_000);
    const a = quarantined(30_000, clock);
    a.allocate();
    a.release('10.0.0.0/31');
    a.occupy('10.0.0.0/31');
    expect(a.quarantined()).toEqual([]);
    expect(a.isAllocated('10.0.0.0/31')).toBe(true);
    clock.jump(60_000);
    expect(a.isAllocated('10.0.0.0/31')).toBe(true);
    expect(a.allocate()).toEqual(['10.0.0.2/31']);
    expect(() => a.allocate()).toThrow(RangeExhaustedError);
  });

  it('quarantines every subnet of a larger released CIDR, and a larger occupy ends it', () => {
    const clock = new ManualClock(1_000);
    const a = quarantined(30_000, clock);
    a.occupy('10.0.0.0/30');
    a.release('10.0.0.0/30');
    expect(a.quarantined().map((e) => e.cidr)).toEqual(['10.0.0.0/31', '10.0.0.2/31']);
    a.occupy('10.0.0.0/30');
    expect(a.quarantined()).toEqual([]);
    expect(a.usage()[0]).toMatchObject({ used: 2, quarantined: 0 });
  });

  it('restores saved entries, skipping expired, in-use and foreign ones', () => {
    const clock = new ManualClock(1_000);
    clock.jumpTo(100_000);
    const a = allocator({
      ranges: [parseRange('10.0.0.0/29', 31)],
      quarantineMs: 30_000,
      now: clock.now,
    });
    a.occupy('10.0.0.6/31');
    const rejected = a.seedQuarantine([
      { cidr: '10.0.0.0/31', releasedAt: 90_000 },
      { cidr: '10.0.0.2/31', releasedAt: 60_000 },
      { cidr: '10.0.0.6/31', releasedAt: 95_000 },
      { cidr: '10.9.0.0/31', releasedAt: 95_000 },
      { cidr: '10.0.0.0/30', releasedAt: 95_000 },
      { cidr: 'nonsense', releasedAt: 95_000 },
    ]);
    expect(rejected.map((e) => e.cidr)).toEqual(['10.9.0.0/31', '10.0.0.0/30', 'nonsense']);
    expect(a.quarantined()).toEqual([{ cidr: '10.0.0.0/31', releasedAt: 90_000 }]);
    expect(a.nextQuarantineExpiry()).toBe(120_000);
    expect([a.allocate(), a.allocate()]).toEqual([['10.0.0.2/31'], ['10.0.0.4/31']]);
    expect(() => a.allocate()).toThrow(RangeExhaustedError);
    clock.jumpTo(120_000);
    expect(a.allocate()).toEqual(['10.0.0.0/31']);
  });

  it('expires entries in time order even when the clock steps backwards between releases', () => {
    const clock = new ManualClock(1_000);
    const a = allocator({ ranges: [parseRange('10.0.0.0/29', 31)], quarantineMs: 10, now: clock.now });
    a.occupy('10.0.0.0/29');
    clock.jumpTo(500);
    a.release('10.0.0.2/31');
    clock.jumpTo(300);
    a.release('10.0.0.4/31');
    expect(a.nextQuarantineExpiry()).toBe(310);
    clock.jumpTo(310);
    expect(a.quarantined()).toEqual([{ cidr: '10.0.0.2/31', releasedAt: 500 }]);
    expect(a.allocate()).toEqual(['10.0.0.4/31']);
  });

  it('ignores saved entries when there is no quarantine, even ones stamped in the future', () => {
    const clock = new ManualClock(1_000);
    const a = allocator({ ranges: [parseRange('10.0.0.0/30', 31)], now: clock.now });
    expect(a.seedQuarantine([{ cidr: '10.0.0.0/31', releasedAt: clock.now() + 60_000 }])).toEqual([]);
    expect(a.quarantined()).toEqual([]);
    expect(a.allocate()).toEqual(['10.0.0.0/31']);
    a.release('10.0.0.0/31');
    expect(a.allocate()).toEqual(['10.0.0.2/31']);
    clock.jump(120_000);
    expect(a.isAllocated('10.0.0.0/31')).toBe(false);
    expect(a.isAllocated('10.0.0.2/31')).toBe(true);
  });

  it('reports the next expiry of a live entry, not of one a node took back', () => {
    const clock = new ManualClock(1_000);
    const a = quarantined(30_000, clock);
    a.occupy('10.0.0.0/30');
    a.release('10.0.0.0/31');
    clock.jump(10_000);
    a.release('10.0.0.2/31');
    a.occupy('10.0.0.0/31');
    expect(a.nextQuarantineExpiry()).toBe(41_000);
  });

  it('refuses a negative delay', () => {
    expect(() => quarantined(-1, new ManualClock(1_000))).toThrow(RangeError);
  });
});

/** 16 addresses in /30s, one reserved, a 10 ms quarantine, every observer call recorded. */
function observedSixteen() {
  const clock = new ManualClock(1_000);
  const { events, observer } = recorder();
  const a = allocator({
    ranges: [parseRange('10.0.0.0/28', 30)],
    reserved: cidrs('10.0.0.4/30'),
    quarantineMs: 10,
    now: clock.now,
    observer,
  });
  return { clock, events, a };
}

describe('ClusterAllocator occupy, release and the observer', () => {
  it('occupies a free node subnet with occupyFree, and refuses anything else without a change', () => {
    const { events, a } = observedSixteen();
    a.occupy('10.0.0.8/30');
    a.release('10.0.0.8/30');
    events.length = 0;
    const refused = ['10.0.0.4/30', '10.0.0.0/29', '10.0.0.1/30', '010.0.0.0/30', 'fd00::/64', '10.0.1.0/30', 'junk'];
    expect(refused.map((cidr) => a.occupyFree(cidr))).toEqual(refused.map(() => false));
    expect(a.usage()[0]).toMatchObject({ used: 2, quarantined: 1 });
    expect(a.occupyFree('10.0.0.0/30')).toBe(true);
    expect(a.occupyFree('10.0.0.0/30')).toBe(false);
    // A node turning up with a quarantined CIDR takes it, as with occupy.
    expect(a.occupyFree('10.0.0.8/30')).toBe(true);
    expect(a.quarantined()).toEqual([]);
    expect(events).toEqual(['occupied 10.0.0.0/28 1']);
    expect(a.usage()[0]).toMatchObject({ used: 3, free: 1, quarantined: 0 });
  });

  it('tells the observer about every bit that flips, and only those', () => {
    const { clock, events, a } = observedSixteen();
    a.allocate();
    a.allocate();
    a.occupy('10.0.0.8/29');
    a.occupy('10.0.0.8/30');
    a.release('10.0.0.0/30');
    clock.jump(10);
    a.usage();
    expect(events).toEqual([
      'occupied 10.0.0.0/28 1',
      'allocated 10.0.0.0/28 tries=0',
      'allocated 10.0.0.0/28 tries=1',
      'occupied 10.0.0.0/28 1',
      'released 10.0.0.0/28 1',
    ]);
  });

  it('keeps working when an observer throws', () => {
    const a = allocator({
      ranges: [parseRange('10.0.0.0/24', 25)],
      observer: {
        allocated: () => {
          throw new Error('metrics broke');
        },
      },
    });
    expect(a.allocate()).toEqual(['10.0.0.0/25']);
    expect(a.isAllocated('10.0.0.0/25')).toBe(true);
  });

  it.each([
    ['10.1.0.0/24', CidrOutOfRangeError, 'cidr 10.1.0.0/24 is out the range of cluster cidr 10.0.0.0/16'],
    ['fd00::/64', CidrOutOfRangeError, 'out the range of cluster cidr (none configured for this family)'],
    ['10.0.0.1/24', CidrParseError, 'host bits set (did you mean 10.0.0.0/24?)'],
    ['node-a', CidrParseError, 'missing prefix length'],
  ])('rejects %s on occupy and release', (cidr, type, message) => {
    const a = allocator({ ranges: [parseRange('10.0.0.0/16', 24)] });
    expect(() => a.occupy(cidr)).toThrow(type);
    expect(() => a.release(cidr)).toThrow(message);
  });

  it('answers isAllocated for node subnets, smaller and larger CIDRs', () => {
    const a = allocator({ ranges: [parseRange('10.0.0.0/16', 24)] });
    a.occupy('10.0.4.0/23');
    expect(a.isAllocated('10.0.4.0/24')).toBe(true);
    expect(a.isAllocated('10.0.5.7/32')).toBe(true);
    expect(a.isAllocated('10.0.4.0/23')).toBe(true);
    expect(a.isAllocated('10.0.4.0/22')).toBe(false);
    expect(a.isAllocated('10.1.0.0/24')).toBe(false);
  });

  it('handles CIDRs of a second range of the same family', () => {
    const a = allocator({
      ranges: [
        parseRange('10.0.0.0/24', 24),
        parseRange('10.1.0.0/24', 26),
      ],
    });
    a.occupy('10.1.0.64/26');
    expect(a.usage().map((u) => u.used)).toEqual([0, 1]);
    a.occupy('10.0.0.0/15');
    expect(a.usage().map((u) => u.used)).toEqual([1, 4]);
    a.release('10.0.0.0/15');
    expect(a.usage().map((u) => u.used)).toEqual([0, 0]);
  });
});

describe('ClusterAllocator taken subnets', () => {
  const ranges = [
    parseRange('10.0.0.0/16', 24),
    parseRange('fd00::/112', 120),
  ];

  it('hands what one allocator holds taken to another: in use, reserved and quarantined alike', () => {
    const clock = new ManualClock(1_000);
    const first = allocator({ ranges, reserved: cidrs('10.0.255.0/24'), quarantineMs: 60_000, now: clock.now });
    first.allocate();
    first.allocate();
    first.occupy('10.0.8.0/23');
    first.release('10.0.0.0/24');
    const taken = first.taken();
    expect(taken).toEqual([
      { clusterCIDR: '10.0.0.0/16', nodeMask: 24, runs: [0, 1, 8, 9, 255, 255] },
      { clusterCIDR: 'fd00::/112', nodeMask: 120, runs: [0, 1] },
    ]);
    const { events, observer } = recorder();
    const second = allocator({ ranges, observer });
    expect(taken.map((t) => second.markTaken(t))).toEqual([true, true]);
    expect(second.taken()).toEqual(taken);
    expect(second.quarantined()).toEqual([]);
    expect(events).toEqual(['occupied 10.0.0.0/16 5', 'occupied fd00::/112 2']);
    expect(second.allocate()).toEqual(['10.0.2.0/24', 'fd00::200/120']);
  });

  it.each([
    ['another mask', { clusterCIDR: '10.0.0.0/16', nodeMask: 25, runs: [0, 0] }],
    ['an unknown range', { clusterCIDR: '10.1.0.0/16', nodeMask: 24, runs: [0, 0] }],
    ['an odd run list', { clusterCIDR: '10.0.0.0/16', nodeMask: 24, runs: [0] }],
    ['a run past the range', { clusterCIDR: '10.0.0.0/16', nodeMask: 24, runs: [250, 256] }],
    ['runs out of order', { clusterCIDR: '10.0.0.0/16', nodeMask: 24, runs: [5, 6, 2, 3] }],
    ['a reversed run', { clusterCIDR: '10.0.0.0/16', nodeMask: 24, runs: [6, 5] }],
    ['a fraction', { clusterCIDR: '10.0.0.0/16', nodeMask: 24, runs: [0.5, 2] }],
  ])('refuses %s and changes nothing', (_, taken) => {
    const a = allocator({ ranges });
    expect(a.markTaken(taken)).toBe(false);
    expect(a.taken().map((t) => t.runs)).toEqual([[], []]);
  });

  it('ends a quarantine on the subnets it marks taken', () => {
    const clock = new ManualClock(1_000);
    const a = allocator({ ranges, quarantineMs: 60_000, now: clock.now });
    a.occupy('10.0.3.0/24');
    a.release('10.0.3.0/24');
    expect(a.markTaken({ clusterCIDR: '10.0.0.0/16', nodeMask: 24, runs: [2, 4] })).toBe(true);
    expect(a.quarantined()).toEqual([]);
    clock.jump(120_000);
    expect(a.isAllocated('10.0.3.0/24')).toBe(true);
  });
});

describe('ClusterAllocator releaseUnheld', () => {
  const spelled = (text: string) => ({ text, cidr: parseCidr(text) });
  /** Holders as the reconciler's index gives them: every CIDR sharing an address with the query. */
  const holdersOf = (texts: readonly string[]) => (cidr: Cidr) => texts.map(spelled).filter((h) => overlaps(h.cidr, cidr));
  const v4 = () => allocator({ ranges: [parseRange('10.0.0.0/16', 24)] });

  it('releases a node subnet no holder shares, and keeps one a smaller holder shares', () => {
    const a = v4();
    a.occupy('10.0.1.0/24');
    a.occupy('10.0.2.0/25');
    expect(a.releaseUnheld(spelled('10.0.1.0/24'), holdersOf([]))).toBe(1);
    expect(a.isAllocated('10.0.1.0/24')).toBe(false);
    expect(a.releaseUnheld(spelled('10.0.2.128/25'), holdersOf(['10.0.2.0/25']))).toBe(0);
    expect(a.isAllocated('10.0.2.0/24')).toBe(true);
  });

  it('walks a larger CIDR node subnet by node subnet, keeping those a holder shares', () => {
    const a = v4();
    a.occupy('10.0.4.0/22');
    expect(a.releaseUnheld(spelled('10.0.4.0/22'), holdersOf(['10.0.5.0/24', '10.0.7.128/25']))).toBe(2);
    expect(['10.0.4.0/24', '10.0.5.0/24', '10.0.6.0/24', '10.0.7.0/24'].map((c) => a.isAllocated(c))).toEqual([false, true, false, true]);
  });

  it('releases a CIDR of more than 4096 node subnets whole and occupies its holders again, counting all', () => {
    const a = allocator({ ranges: [parseRange('10.0.0.0/8', 24)] });
    a.occupy('10.0.0.0/11');
    expect(a.releaseUnheld(spelled('10.0.0.0/11'), holdersOf(['10.3.0.0/24']))).toBe(8192);
    expect(a.usage()[0]).toMatchObject({ used: 1 });
    expect(a.isAllocated('10.3.0.0/24')).toBe(true);
  });
});
