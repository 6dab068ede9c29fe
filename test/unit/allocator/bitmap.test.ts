// The summary-level bitmap against a plain boolean array: every operation, counts and searches.
// Sizes straddle word and summary-level boundaries, where off-by-one mistakes hide.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Bitmap } from '../../../src/allocator/bitmap.js';

function modelNextClear(model: boolean[], from: number): number {
  for (let i = from; i < model.length; i++) if (!model[i]) return i;
  return -1;
}

const sizes = [1, 31, 32, 33, 1024, 1025, 32 * 32 * 32 + 5];

describe('Bitmap', () => {
  it.each(sizes)('matches a boolean array under random operations (size %i)', (size) => {
    const index = fc.nat({ max: size - 1 });
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), i: index }),
      fc.record({ kind: fc.constant('clear' as const), i: index }),
      fc.record({ kind: fc.constant('setRange' as const), a: index, b: index }),
      fc.record({ kind: fc.constant('clearRange' as const), a: index, b: index, keepEvery: fc.integer({ min: 0, max: 3 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.array(index, { maxLength: 10 }), (ops, probes) => {
        const bitmap = new Bitmap(size);
        const model = new Array<boolean>(size).fill(false);
        for (const o of ops) {
          if (o.kind === 'set') {
            expect(bitmap.set(o.i)).toBe(!model[o.i]);
            model[o.i] = true;
          } else if (o.kind === 'clear') {
            expect(bitmap.clear(o.i)).toBe(model[o.i] === true);
            model[o.i] = false;
          } else {
            const begin = Math.min(o.a, o.b);
            const end = Math.max(o.a, o.b);
            if (o.kind === 'setRange') {
              let flips = 0;
              for (let i = begin; i <= end; i++) {
                if (!model[i]) flips++;
                model[i] = true;
              }
              expect(bitmap.setRange(begin, end)).toBe(flips);
            } else {
              const keep = new Bitmap(size);
              if (o.keepEvery > 0) for (let i = 0; i < size; i += o.keepEvery + 1) keep.set(i);
              let flips = 0;
              for (let i = begin; i <= end; i++) {
                if (!model[i] || keep.has(i)) continue;
                model[i] = false;
                flips++;
              }
              expect(bitmap.clearRange(begin, end, keep)).toBe(flips);
            }
          }
          expect(bitmap.count).toBe(model.filter(Boolean).length);
        }
        for (const p of probes) {
          expect(bitmap.has(p)).toBe(model[p]);
          expect(bitmap.nextClear(p)).toBe(modelNextClear(model, p));
          const wrapped = modelNextClear(model, p);
          expect(bitmap.nextClearWrapping(p)).toBe(wrapped >= 0 ? wrapped : modelNextClear(model, 0));
          expect(bitmap.countRange(0, p)).toBe(model.slice(0, p + 1).filter(Boolean).length);
        }
      }),
      { numRuns: 60 },
    );
  });

  it.each(sizes)('lists runs of set bits that rebuild the same map (size %i)', (size) => {
    const index = fc.nat({ max: size - 1 });
    const span = fc.tuple(index, index).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const);
    fc.assert(
      fc.property(fc.array(span, { maxLength: 12 }), fc.array(index, { maxLength: 12 }), (spans, cleared) => {
        const bitmap = new Bitmap(size);
        for (const [begin, end] of spans) bitmap.setRange(begin, end);
        for (const i of cleared) bitmap.clear(i);
        const runs = bitmap.runs();
        const rebuilt = new Bitmap(size);
        for (let k = 0; k < runs.length; k += 2) {
          const begin = runs[k] ?? -1;
          const end = runs[k + 1] ?? -1;
          // Maximal runs: a gap before each, and nothing taken right after.
          expect(begin === 0 || !bitmap.has(begin - 1)).toBe(true);
          expect(end === size - 1 || !bitmap.has(end + 1)).toBe(true);
          rebuilt.setRange(begin, end);
        }
        expect(rebuilt.count).toBe(bitmap.count);
        for (let i = 0; i < size; i++) if (bitmap.has(i) !== rebuilt.has(i)) expect.fail(`bit ${i} differs`);
      }),
      { numRuns: 40 },
    );
  });

  it('lists no runs for an empty map and one run for a full one, padding left out', () => {
    const bitmap = new Bitmap(33);
    expect(bitmap.runs()).toEqual([]);
    bitmap.setRange(0, 32);
    expect(bitmap.runs()).toEqual([0, 32]);
    bitmap.clear(31);
    expect(bitmap.runs()).toEqual([0, 30, 32, 32]);
  });

  it('finds the single clear bit of a full 2^24-bit map, on either side of the cursor', () => {
    const size = 2 ** 24;
    const bitmap = new Bitmap(size);
    expect(bitmap.setRange(0, size - 1)).toBe(size);
    expect(bitmap.nextClearWrapping(0)).toBe(-1);
    bitmap.clear(12_345_678);
    expect(bitmap.count).toBe(size - 1);
    expect(bitmap.nextClearWrapping(0)).toBe(12_345_678);
    expect(bitmap.nextClearWrapping(12_345_679)).toBe(12_345_678);
    expect(bitmap.nextClear(12_345_679)).toBe(-1);
    bitmap.set(12_345_678);
    expect(bitmap.nextClearWrapping(7)).toBe(-1);
  });

  it('rejects ranges outside the map and nonsense sizes', () => {
    const bitmap = new Bitmap(40);
    expect(() => bitmap.setRange(0, 40)).toThrow(RangeError);
    expect(() => bitmap.clearRange(5, 4)).toThrow(RangeError);
    expect(() => new Bitmap(0)).toThrow(RangeError);
    expect(bitmap.nextClear(40)).toBe(-1);
  });
});
