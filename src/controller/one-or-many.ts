// OneOrMany: a short list kept as its only item when it has one, as a readonly array otherwise.
// The reconciler keeps one per node and the claim index one per range, and almost all hold one item.

// Why: at 50,000 nodes an array of one costs some 56 bytes a node in each place (see
// docs/decisions/0003-memory-tricks-behind-names.md). Arrays are made with concat and slice, which
// size them exactly; push and spread leave room for more. Values are never changed in place: every
// function returns the new list, or the same one when nothing changed.

/** None, one or more items of T; T must not itself be an array. */
export type OneOrMany<T extends object> = T | readonly T[];

const NONE: readonly never[] = Object.freeze([]);

/** The empty list. */
export function none<T extends object>(): OneOrMany<T> {
  return NONE;
}

function isArray<T extends object>(list: OneOrMany<T>): list is readonly T[] {
  return Array.isArray(list);
}

/** The items as an array; makes an array of one for a single item. */
export function itemsOf<T extends object>(list: OneOrMany<T>): readonly T[] {
  return isArray(list) ? list : [list];
}

export function isEmpty<T extends object>(list: OneOrMany<T>): boolean {
  return isArray(list) && list.length === 0;
}

export function find<T extends object>(list: OneOrMany<T>, predicate: (item: T) => boolean): T | undefined {
  if (!isArray(list)) return predicate(list) ? list : undefined;
  return list.find(predicate);
}

/** The list with `added` after its items. */
export function withItems<T extends object>(list: OneOrMany<T>, added: readonly T[]): OneOrMany<T> {
  if (added.length === 0) return list;
  if (isEmpty(list) && added.length === 1 && added[0] !== undefined) return added[0];
  return itemsOf(list).concat(added);
}

/** The list without the first item identical to `item`; the same list when it holds no such item. */
export function without<T extends object>(list: OneOrMany<T>, item: T): OneOrMany<T> {
  if (!isArray(list)) return list === item ? NONE : list;
  const at = list.indexOf(item);
  if (at < 0) return list;
  if (list.length === 2) return list[1 - at] ?? NONE;
  return list.slice(0, at).concat(list.slice(at + 1));
}
