// Model-based test: random allocate / occupy / release / clock steps / restarts against a Set model.
// Checks no CIDR is handed out twice, counts match, exhaustion comes exactly at capacity, CIDRs stay
// inside their ranges and outside reserved ones, and quarantined CIDRs are not reissued early.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClusterAllocator, RangeExhaustedError, type Family } from '../../../src/allocator/index.js';
import { ManualClock } from '../../support/manual-clock.js';
import { parseRange } from '../../../src/allocator/range-spec.js';
import { cidrs } from '../../support/cidrs.js';

// Written out by hand so the model does not lean on the code under test.
const V4_A = [0, 8, 16, 24, 32, 40, 48, 56].map((o) => `10.0.0.${o}/29`); // 10.0.0.0/26, /29 nodes
const V4_B = [0, 4, 8, 12].map((o) => `10.1.0.${o}/30`); // 10.1.0.0/28, /30 nodes
const V6 = [0, 1, 2, 3, 4, 5, 6, 7].map((g) => (g === 0 ? 'fd00::/64' : `fd00:0:0:${g}::/64`)); // fd00::/61
const RESERVED_SUBNETS = new Set(['10.0.0.16/29', '10.1.0.8/30', '10.1.0.12/30', 'fd00:0:0:7::/64']);
const FAMILY = new Map<string, Family>([...V4_A, ...V4_B].map((c) => [c, 'IPv4']));
for (const c of V6) FAMILY.set(c, 'IPv6');
const UNIVERSE = [...FAMILY.keys()];

interface Model {
  now: number;
  readonly delay: number;
  /** CIDRs held by nodes (allocated or occupied), reserved ones excepted. */
  readonly held: Set<string>;
  /** CIDR -> release time. */
  readonly quarantine: Map<string, number>;
  /** Pairs handed out together by allocate, for releasing a whole node. */
  readonly nodes: string[][];
}

interface Real {
  allocator: ClusterAllocator;
  readonly clock: ManualClock;
  readonly build: () => ClusterAllocator;
}

function expire(m: Model): void {
  for (const [cidr, at] of m.quarantine) if (at + m.delay <= m.now) m.quarantine.delete(cidr);
}

function freeIn(m: Model, family: Family): number {
  return UNIVERSE.filter(
    (c) => FAMILY.get(c) === family && !RESERVED_SUBNETS.has(c) && !m.held.has(c) && !m.quarantine.has(c),
  ).length;
}

function check(m: Model, r: Real): void {
  expire(m);
  const used = r.allocator.usage().reduce((sum, u) => sum + u.used, 0);
  expect(used).toBe(m.held.size + m.quarantine.size + RESERVED_SUBNETS.size);
  expect(new Set(r.allocator.quarantined().map((e) => e.cidr))).toEqual(new Set(m.quarantine.keys()));
  for (const cidr of m.held) expect(r.allocator.isAllocated(cidr)).toBe(true);
}

class Allocate implements fc.Command<Model, Real> {
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    expire(m);
    const room = freeIn(m, 'IPv4') > 0 && freeIn(m, 'IPv6') > 0;
    if (!room) {
      expect(() => r.allocator.allocate()).toThrow(RangeExhaustedError);
      check(m, r);
      return;
    }
    const cidrs = r.allocator.allocate();
    expect(cidrs.map((c) => FAMILY.get(c))).toEqual(['IPv4', 'IPv6']);
    for (const cidr of cidrs) {
      expect(RESERVED_SUBNETS.has(cidr)).toBe(false);
      expect(m.held.has(cidr)).toBe(false);
      expect(m.quarantine.has(cidr)).toBe(false);
      m.held.add(cidr);
    }
    m.nodes.push(cidrs);
    check(m, r);
  }
  toString = (): string => 'allocate';
}

class ReleaseNode implements fc.Command<Model, Real> {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>): boolean => m.nodes.length > 0;
  run(m: Model, r: Real): void {
    const [node] = m.nodes.splice(this.pick % m.nodes.length, 1);
    for (const cidr of node ?? []) {
      r.allocator.release(cidr);
      if (!m.held.delete(cidr)) continue;
      if (m.delay > 0) m.quarantine.set(cidr, m.now);
    }
    check(m, r);
  }
  toString = (): string => `releaseNode(${this.pick})`;
}

class Occupy implements fc.Command<Model, Real> {
  constructor(readonly cidr: string) {}
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    expire(m);
    r.allocator.occupy(this.cidr);
    if (!RESERVED_SUBNETS.has(this.cidr)) {
      m.held.add(this.cidr);
      m.quarantine.delete(this.cidr);
      m.nodes.push([this.cidr]);
    }
    check(m, r);
  }
  toString = (): string => `occupy(${this.cidr})`;
}

class Release implements fc.Command<Model, Real> {
  constructor(readonly cidr: string) {}
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    expire(m);
    r.allocator.release(this.cidr);
    if (m.held.delete(this.cidr) && m.delay > 0) m.quarantine.set(this.cidr, m.now);
    check(m, r);
  }
  toString = (): string => `release(${this.cidr})`;
}

class Advance implements fc.Command<Model, Real> {
  constructor(readonly ms: number) {}
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    m.now += this.ms;
    r.clock.jump(this.ms);
    check(m, r);
  }
  toString = (): string => `advance(${this.ms})`;
}

/** A new leader: a fresh allocator seeded with the saved quarantine, then the nodes' CIDRs occupied. */
class Restart implements fc.Command<Model, Real> {
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    const saved = r.allocator.quarantined();
    const fresh = r.build();
    expect(fresh.seedQuarantine(saved)).toEqual([]);
    for (const cidr of m.held) fresh.occupy(cidr);
    r.allocator = fresh;
    check(m, r);
  }
  toString = (): string => 'restart';
}

const commands = [
  fc.constant(new Allocate()),
  fc.constant(new Allocate()),
  fc.nat().map((n) => new ReleaseNode(n)),
  fc.constantFrom(...UNIVERSE).map((c) => new Occupy(c)),
  fc.constantFrom(...UNIVERSE).map((c) => new Release(c)),
  fc.integer({ min: 1, max: 40 }).map((ms) => new Advance(ms)),
  fc.constant(new Restart()),
];

describe('ClusterAllocator against a Set model', () => {
  it.each([0, 25])('keeps every invariant under random commands (quarantine %i ms)', (delay) => {
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 120, size: 'max' }), (cmds) => {
        const clock = new ManualClock();
        const build = (): ClusterAllocator =>
          new ClusterAllocator({
            ranges: [
              parseRange('10.0.0.0/26', 29),
              parseRange('fd00::/61', 64),
              parseRange('10.1.0.0/28', 30),
            ],
            reserved: cidrs('10.0.0.16/29', '10.1.0.8/29', 'fd00:0:0:7::/64', '192.168.0.0/16'),
            quarantineMs: delay,
            now: clock.now,
          });
        const model: Model = { now: 0, delay, held: new Set(), quarantine: new Map(), nodes: [] };
        fc.modelRun(() => ({ model, real: { allocator: build(), clock, build } }), cmds);
      }),
      { numRuns: 150 },
    );
  });
});
