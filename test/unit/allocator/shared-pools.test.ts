// SharedPools: pools of different node sizes over shared addresses. A model of held address
// intervals checks that no two allocations overlap, that a pool is full exactly when no aligned block
// of its size is free, and that each pool's used count is the subnets something held touches.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CidrOutOfRangeError, RangeExhaustedError, SharedPools, type SpelledCidr } from '../../../src/allocator/index.js';
import { parseRange } from '../../../src/allocator/range-spec.js';
import { formatCidr, overlaps, parseCidr, type Cidr } from '../../../src/cidr/index.js';
import { ManualClock } from '../../support/manual-clock.js';

/** Offsets inside 10.0.0.0/24, written out so the model does not lean on the code under test. */
interface PoolShape {
  readonly name: string;
  readonly start: number;
  readonly prefix: number;
  readonly mask: number;
}

const FIRST: PoolShape = { name: 'a', start: 0, prefix: 24, mask: 26 };
const SHAPES: readonly PoolShape[] = [
  FIRST,
  { name: 'b', start: 0, prefix: 24, mask: 28 },
  { name: 'c', start: 128, prefix: 25, mask: 27 },
  { name: 'd', start: 192, prefix: 26, mask: 29 },
  { name: 'e', start: 64, prefix: 26, mask: 30 },
];

const text = (start: number, prefix: number): string => `10.0.0.${start}/${prefix}`;
const spec = (shape: PoolShape) => parseRange(text(shape.start, shape.prefix), shape.mask);

interface Held {
  readonly start: number;
  readonly end: number;
  readonly spelled: SpelledCidr;
}

function held(cidrText: string): Held {
  const cidr = parseCidr(cidrText);
  const start = Number(cidr.base & 0xffn);
  return { start, end: start + 2 ** (32 - cidr.prefix) - 1, spelled: { text: cidrText, cidr } };
}

const clash = (a: { start: number; end: number }, b: { start: number; end: number }): boolean =>
  a.start <= b.end && b.start <= a.end;

/** Aligned blocks of the pool's size inside its range. */
function blocks(shape: PoolShape): { start: number; end: number }[] {
  const size = 2 ** (32 - shape.mask);
  const out: { start: number; end: number }[] = [];
  for (let s = shape.start; s < shape.start + 2 ** (32 - shape.prefix); s += size) out.push({ start: s, end: s + size - 1 });
  return out;
}

function holdersIn(model: readonly Held[]): (cidr: Cidr) => SpelledCidr[] {
  return (cidr) => model.filter((h) => overlaps(h.spelled.cidr, cidr)).map((h) => h.spelled);
}

type Command =
  | { readonly kind: 'allocate'; readonly pool: number }
  | { readonly kind: 'release'; readonly pick: number }
  | { readonly kind: 'occupy'; readonly pool: number; readonly block: number }
  | { readonly kind: 'add'; readonly pool: number };

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('allocate' as const), pool: fc.nat(SHAPES.length - 1) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat(1000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('occupy' as const), pool: fc.nat(SHAPES.length - 1), block: fc.nat(63) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('add' as const), pool: fc.nat(SHAPES.length - 1) }) },
);

describe('SharedPools against a model of held intervals', () => {
  it('never overlaps, is full exactly when no block is free, and counts what is held', () => {
    fc.assert(
      fc.property(fc.array(command, { maxLength: 120 }), fc.nat(SHAPES.length), (commands, initial) => {
        const pools = new SharedPools();
        const present = new Set<string>();
        const model: Held[] = [];
        const add = (shape: PoolShape): void => {
          pools.addPool(shape.name, [spec(shape)]);
          present.add(shape.name);
          // What the reconciler's rangesAdded does: every held CIDR occupied again.
          for (const h of model) pools.occupy(h.spelled.text);
        };
        for (const shape of SHAPES.slice(0, Math.max(1, initial))) add(shape);
        for (const c of commands) {
          const shape = SHAPES[c.kind === 'release' ? 0 : c.pool] ?? FIRST;
          if (c.kind === 'add') {
            if (!present.has(shape.name)) add(shape);
          } else if (c.kind === 'allocate') {
            if (!present.has(shape.name)) continue;
            const free = blocks(shape).some((b) => !model.some((h) => clash(h, b)));
            if (!free) {
              expect(() => pools.allocate(shape.name)).toThrow(RangeExhaustedError);
              continue;
            }
            const [cidr] = pools.allocate(shape.name);
            const got = held(cidr ?? '');
            expect(blocks(shape)).toContainEqual({ start: got.start, end: got.end });
            expect(model.filter((h) => clash(h, got))).toEqual([]);
            model.push(got);
          } else if (c.kind === 'occupy') {
            const block = blocks(shape)[c.block % blocks(shape).length];
            if (!present.has(shape.name) || !block || model.some((h) => clash(h, block))) continue;
            const got = held(text(block.start, shape.mask));
            pools.occupy(got.spelled.text);
            model.push(got);
          } else if (model.length > 0) {
            const [gone] = model.splice(c.pick % model.length, 1);
            if (gone) pools.releaseUnheld(gone.spelled, holdersIn(model));
          }
        }
        for (const shape of SHAPES) {
          if (!present.has(shape.name)) continue;
          const touched = blocks(shape).filter((b) => model.some((h) => clash(h, b))).length;
          expect(pools.usageOf(shape.name)[0]?.used, shape.name).toBe(touched);
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe('SharedPools', () => {
  it('gives each size its own subnet out of one range, none overlapping', () => {
    const pools = new SharedPools();
    pools.addPool('big', [parseRange('10.244.0.0/16', 22)]);
    pools.addPool('small', [parseRange('10.244.0.0/16', 26)]);
    expect(pools.allocate('big')).toEqual(['10.244.0.0/22']);
    // The first /26 after the /22 that big holds.
    expect(pools.allocate('small')).toEqual(['10.244.4.0/26']);
    // big's next /22 skips the one small's /26 lies in.
    expect(pools.allocate('big')).toEqual(['10.244.8.0/22']);
  });

  it('frees a coarse subnet only when nothing inside it is held', () => {
    const pools = new SharedPools();
    pools.addPool('big', [parseRange('10.0.0.0/24', 25)]);
    pools.addPool('small', [parseRange('10.0.0.0/24', 26)]);
    const first = pools.allocate('small');
    const second = pools.allocate('small');
    expect([first, second]).toEqual([['10.0.0.0/26'], ['10.0.0.64/26']]);
    const left = [{ text: '10.0.0.64/26', cidr: parseCidr('10.0.0.64/26') }];
    pools.releaseUnheld({ text: '10.0.0.0/26', cidr: parseCidr('10.0.0.0/26') }, (c) => left.filter((h) => overlaps(h.cidr, c)));
    expect(pools.usageOf('big')[0]?.used).toBe(1);
    expect(pools.usageOf('small')[0]?.used).toBe(1);
    pools.releaseUnheld({ text: '10.0.0.64/26', cidr: parseCidr('10.0.0.64/26') }, () => []);
    expect(pools.usageOf('big')[0]?.used).toBe(0);
  });

  it('marks a dual-stack pick in every pool covering either family', () => {
    const pools = new SharedPools();
    pools.addPool('dual', [parseRange('10.0.0.0/16', 24), parseRange('fd00::/104', 120)]);
    pools.addPool('v6', [parseRange('fd00::/104', 112)]);
    expect(pools.allocate('dual')).toEqual(['10.0.0.0/24', 'fd00::/120']);
    expect(pools.allocate('v6')).toEqual(['fd00::1:0/112']);
  });

  it('quarantines a release in every pool, in each pool\'s own size', () => {
    const clock = new ManualClock(1_000);
    const pools = new SharedPools({ quarantineMs: 60_000, now: () => clock.now() });
    pools.addPool('big', [parseRange('10.0.0.0/24', 25)]);
    pools.addPool('small', [parseRange('10.0.0.0/24', 26)]);
    const [cidr] = pools.allocate('small');
    pools.releaseUnheld({ text: cidr ?? '', cidr: parseCidr(cidr ?? '') }, () => []);
    expect(pools.allocate('big')).toEqual(['10.0.0.128/25']);
    expect(pools.quarantined().map((e) => e.cidr).sort()).toEqual(['10.0.0.0/25', '10.0.0.0/26']);
    // A /26 beside the quarantined one: big's /25 around both is in use again, not waiting.
    expect(pools.allocate('small')).toEqual(['10.0.0.64/26']);
    expect(pools.quarantined().map((e) => e.cidr)).toEqual(['10.0.0.0/26']);
    clock.jump(60_000);
    expect(pools.allocate('small')).toEqual(['10.0.0.0/26']);
  });

  it('seeds a pool added later with the quarantine the others hold, in its size', () => {
    const clock = new ManualClock(1_000);
    const pools = new SharedPools({ quarantineMs: 60_000, now: () => clock.now() });
    pools.addPool('small', [parseRange('10.0.0.0/24', 26)]);
    const [cidr] = pools.allocate('small');
    pools.releaseUnheld({ text: cidr ?? '', cidr: parseCidr(cidr ?? '') }, () => []);
    pools.addPool('big', [parseRange('10.0.0.0/24', 25)]);
    pools.seedQuarantine('big', pools.quarantined());
    expect(pools.allocate('big')).toEqual(['10.0.0.128/25']);
    expect(pools.nextQuarantineExpiry()).toBe(61_000);
  });

  it('refuses a CIDR outside every pool, naming the ranges of its family', () => {
    const pools = new SharedPools();
    pools.addPool('a', [parseRange('10.0.0.0/24', 26)]);
    expect(() => pools.occupy('192.168.0.0/26')).toThrow(CidrOutOfRangeError);
    expect(() => pools.occupy('192.168.0.0/26')).toThrow(/10\.0\.0\.0\/24/);
  });

  it('keeps what a removed pool held marked where other pools share its addresses', () => {
    const pools = new SharedPools();
    pools.addPool('a', [parseRange('10.0.0.0/24', 26)]);
    pools.addPool('b', [parseRange('10.0.0.0/24', 25)]);
    pools.allocate('a');
    expect(pools.removePool('a')).toBe(true);
    expect(pools.allocate('b')).toEqual(['10.0.0.128/25']);
    expect(pools.ranges().map((r) => formatCidr(r.clusterCIDR))).toEqual(['10.0.0.0/24']);
  });
});
