import { describe, expect, it } from 'vitest';
import { isAtOrPast, ResourceVersionMark } from '../../../src/controller/resource-version-mark.js';

describe('ResourceVersionMark', () => {
  it.each([
    { target: '700', seen: ['699'], reached: false },
    { target: '700', seen: ['700'], reached: true },
    { target: '700', seen: ['1000'], reached: true },
    { target: '700', seen: ['9999', '1'], reached: true },
    // Compared as integers, not as text: "99" < "700" although "99" > "700" as strings.
    { target: '700', seen: ['99'], reached: false },
    { target: '700', seen: ['0700'], reached: false },
    { target: 'abc', seen: ['1000'], reached: false },
    { target: '', seen: ['1000'], reached: false },
    { target: '100000000000000000000', seen: ['100000000000000000001'], reached: true },
  ])('reached $reached for target $target after $seen', ({ target, seen, reached }) => {
    const mark = new ResourceVersionMark();
    for (const rv of seen) mark.advance(rv);
    mark.setTarget(target);
    expect(mark.isReached()).toBe(reached);
    expect(mark.last()).toBe(seen.at(-1));
  });

  it('wakes its waiters when the target arrives, and answers false once aborted', async () => {
    const mark = new ResourceVersionMark();
    mark.setTarget('10');
    const stop = new AbortController();
    const waiting = mark.reached(new AbortController().signal);
    const abandoned = mark.reached(stop.signal);
    stop.abort();
    mark.advance('10');
    await expect(waiting).resolves.toBe(true);
    await expect(abandoned).resolves.toBe(false);
    await expect(mark.reached(stop.signal)).resolves.toBe(true);
  });
});

describe('isAtOrPast', () => {
  it.each([
    ['100', '99', true],
    ['100', '100', true],
    ['99', '100', false],
    ['1000', '999', true],
    ['', '100', false],
    ['100', '', false],
    ['abc', '1', false],
    ['12345678901234567890', '12345678901234567889', true],
  ])('%s is at or past %s: %s', (a, b, expected) => {
    expect(isAtOrPast(a, b)).toBe(expected);
  });
});
