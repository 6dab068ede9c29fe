// OneOrMany against a plain array: the same items in the same order, whatever is added or taken out.

import { describe, expect, it } from 'vitest';
import { find, isEmpty, itemsOf, none, withItems, without, type OneOrMany } from '../../../src/controller/one-or-many.js';

const a = { name: 'a' };
const b = { name: 'b' };
const c = { name: 'c' };

describe('OneOrMany', () => {
  it('holds a single item as itself and two or more as an array', () => {
    const one = withItems(none(), [a]);
    expect(one).toBe(a);
    expect(withItems(one, [b])).toEqual([a, b]);
    expect(withItems(none(), [a, b])).toEqual([a, b]);
  });

  it('lists, finds and counts the items in the order they were added', () => {
    let list: OneOrMany<{ name: string }> = none();
    expect(isEmpty(list)).toBe(true);
    expect(itemsOf(list)).toEqual([]);
    for (const item of [a, b, c]) list = withItems(list, [item]);
    expect(isEmpty(list)).toBe(false);
    expect(itemsOf(list)).toEqual([a, b, c]);
    expect(find(list, (item) => item.name === 'b')).toBe(b);
    expect(find(a, (item) => item.name === 'b')).toBeUndefined();
  });

  it('takes out one identical item and goes back to a single item, then to none', () => {
    const list = withItems(none(), [a, b, c]);
    expect(itemsOf(without(list, b))).toEqual([a, c]);
    expect(without(without(list, b), a)).toBe(c);
    expect(isEmpty(without(c, c))).toBe(true);
  });

  it('returns the same list when the item is not in it, and never changes a list in place', () => {
    const list = withItems(none(), [a, b]);
    expect(without(list, { name: 'a' })).toBe(list);
    expect(without(a, b)).toBe(a);
    withItems(list, [c]);
    without(list, a);
    expect(list).toEqual([a, b]);
  });
});
