// CidrSet against upstream cidrset's behaviour: allocation order, occupy/release of any size,
// idempotent counters (kubernetes#96416), typed errors with upstream's wording, and the 2^24 limit.

import { describe, expect, it } from 'vitest';
import { CidrParseError, parseCidr } from '../../../src/cidr/index.js';
import {
  CidrOutOfRangeError,
  CidrSet,
  InvalidRangeError,
  NO_CIDRS_REMAINING,
  RangeExhaustedError,
} from '../../../src/allocator/index.js';

function allocateMany(set: CidrSet, n: number): string[] {
  return Array.from({ length: n }, () => set.allocateNext());
}

/** True when every subnet `cidr` touches is taken: one run of takenRuns() covers its span. */
function isTaken(set: CidrSet, cidr: string): boolean {
  const span = set.codec.span(parseCidr(cidr));
  if (span === undefined) return false;
  const runs = set.takenRuns();
  for (let k = 0; k < runs.length; k += 2) {
    const begin = runs[k];
    const end = runs[k + 1];
    if (begin !== undefined && end !== undefined && begin <= span.begin && span.end <= end) return true;
  }
  return false;
}

describe('CidrSet allocation order', () => {
  it.each([
    ['10.233.64.0/18', 24, ['10.233.64.0/24', '10.233.65.0/24', '10.233.66.0/24', '10.233.67.0/24']],
    ['10.244.0.0/16', 26, ['10.244.0.0/26', '10.244.0.64/26', '10.244.0.128/26', '10.244.0.192/26', '10.244.1.0/26']],
    ['192.168.0.0/30', 32, ['192.168.0.0/32', '192.168.0.1/32', '192.168.0.2/32', '192.168.0.3/32']],
    ['fd00:10:244::/56', 64, ['fd00:10:244::/64', 'fd00:10:244:1::/64', 'fd00:10:244:2::/64']],
    ['2001:db8::/120', 124, ['2001:db8::/124', '2001:db8::10/124', '2001:db8::20/124']],
  ])('hands out %s with /%i nodes in upstream order', (cluster, mask, expected) => {
    const set = new CidrSet(cluster, mask);
    expect(allocateMany(set, expected.length)).toEqual(expected);
  });

  it('moves the cursor only on allocation, so a freed CIDR comes back only after the cursor wraps', () => {
    const set = new CidrSet('10.233.64.0/22', 24);
    expect(allocateMany(set, 2)).toEqual(['10.233.64.0/24', '10.233.65.0/24']);
    set.release('10.233.64.0/24');
    set.occupy('10.233.67.0/24');
    expect(set.allocateNext()).toBe('10.233.66.0/24');
    // Cursor is at 3 (taken by occupy): it skips to the end, wraps, and finds 0.
    expect(set.allocateNext()).toBe('10.233.64.0/24');
    expect(set.lastTries).toBe(1);
    expect(() => set.allocateNext()).toThrow(RangeExhaustedError);
  });

  it('counts the taken subnets skipped as tries, like upstream', () => {
    const set = new CidrSet('10.0.0.0/24', 28);
    set.occupy('10.0.0.0/26');
    set.allocateNext();
    expect(set.lastTries).toBe(4);
    set.allocateNext();
    expect(set.lastTries).toBe(0);
  });

  it('throws RangeExhaustedError with upstream text when every subnet is taken', () => {
    const set = new CidrSet('10.0.0.0/23', 24);
    allocateMany(set, 2);
    expect(set.free).toBe(0);
    expect(() => set.allocateNext()).toThrow(NO_CIDRS_REMAINING);
    expect(() => set.allocateNext()).toThrow(RangeExhaustedError);
  });

  it('holds exactly one subnet when the node mask equals the cluster prefix', () => {
    const set = new CidrSet('10.0.0.0/24', 24);
    expect(set.capacity).toBe(1);
    expect(set.allocateNext()).toBe('10.0.0.0/24');
    expect(() => set.allocateNext()).toThrow(RangeExhaustedError);
  });
});

describe('CidrSet occupy and release', () => {
  it.each([
    ['a node subnet', '10.233.65.0/24', 1, ['10.233.65.0/24']],
    ['a smaller CIDR (its containing subnet)', '10.233.66.128/25', 1, ['10.233.66.0/24']],
    ['a larger CIDR (every subnet it covers)', '10.233.68.0/22', 4, ['10.233.68.0/24', '10.233.71.0/24']],
    ['the cluster CIDR itself', '10.233.64.0/18', 64, ['10.233.64.0/24', '10.233.127.0/24']],
    ['a CIDR containing the cluster', '10.0.0.0/8', 64, ['10.233.100.0/24']],
  ])('occupies %s', (_what, cidr, flipped, nowTaken) => {
    const set = new CidrSet('10.233.64.0/18', 24);
    expect(set.occupy(cidr)).toBe(flipped);
    expect(set.used).toBe(flipped);
    for (const taken of nowTaken) expect(isTaken(set, taken)).toBe(true);
    expect(isTaken(set, cidr)).toBe(true);
    // Idempotent: counters move only for bits that flip (upstream kubernetes#96416 double-counted).
    expect(set.occupy(cidr)).toBe(0);
    expect(set.used).toBe(flipped);
    expect(set.release(cidr)).toBe(flipped);
    expect(set.release(cidr)).toBe(0);
    expect(set.used).toBe(0);
  });

  it('counts only the subnets that flip when occupied ranges overlap', () => {
    const set = new CidrSet('fd00::/48', 64);
    expect(set.occupy('fd00:0:0:10::/64')).toBe(1);
    expect(set.occupy('fd00:0:0:10::/60')).toBe(15);
    expect(set.used).toBe(16);
    expect(set.free).toBe(65536 - 16);
  });

  it('never releases reserved subnets, even when a released CIDR covers them', () => {
    const set = new CidrSet('10.233.64.0/18', 24);
    expect(set.reserve(parseCidr('10.233.70.0/23'))).toBe(2);
    set.occupy('10.233.64.0/20');
    expect(set.release('10.233.64.0/18')).toBe(14);
    expect(set.release('10.233.70.0/24')).toBe(0);
    expect(isTaken(set, '10.233.70.0/23')).toBe(true);
    expect(set.used).toBe(2);
    expect(set.reserved).toBe(2);
  });

  it.each([
    ['10.233.128.0/24', 'cidr 10.233.128.0/24 is out the range of cluster cidr 10.233.64.0/18'],
    ['fd00::/64', 'cidr fd00::/64 is out the range of cluster cidr 10.233.64.0/18'],
  ])('rejects %s with CidrOutOfRangeError in upstream words', (cidr, message) => {
    const set = new CidrSet('10.233.64.0/18', 24);
    expect(() => set.occupy(cidr)).toThrow(CidrOutOfRangeError);
    expect(() => set.release(cidr)).toThrow(message);
    expect(set.used).toBe(0);
  });

  it('rejects text that is not a CIDR with CidrParseError', () => {
    const set = new CidrSet('10.233.64.0/18', 24);
    expect(() => set.occupy('10.233.64.5/24')).toThrow(CidrParseError);
    expect(() => set.release('node-a')).toThrow(CidrParseError);
  });
});

describe('CidrSet size limits', () => {
  it('holds 2^24 subnets, e.g. IPv6 /64 nodes in a /40 (upstream stops at 2^16)', () => {
    const set = new CidrSet('fd00::/40', 64);
    expect(set.capacity).toBe(2 ** 24);
    expect(allocateMany(set, 2)).toEqual(['fd00::/64', 'fd00:0:0:1::/64']);
    set.occupy('fd00:0:ff:ffff::/64');
    expect(isTaken(set, 'fd00:0:ff:ffff::/64')).toBe(true);
  });

  it.each([
    ['fd00::/39', 64, 'use a cluster prefix of /40 or longer, or a node mask of /63 or shorter'],
    ['10.0.0.0/8', 33, 'node mask must be an integer between 0 and 32'],
    ['10.0.0.0/16', 8, 'the node mask /8 is shorter than the cluster prefix /16'],
  ])('refuses %s with /%i nodes, saying why', (cluster, mask, reason) => {
    expect(() => new CidrSet(cluster, mask)).toThrow(InvalidRangeError);
    expect(() => new CidrSet(cluster, mask)).toThrow(reason);
  });
});
