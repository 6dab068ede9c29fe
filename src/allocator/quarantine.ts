// A min-heap of released subnets ordered by expiry, with lazy deletion.
// Entries taken out early (a node showed up holding the CIDR) stay in the heap until popped and are skipped.

export interface HeldSubnet<R> {
  readonly range: R;
  readonly index: number;
  readonly releasedAt: number;
  readonly expiresAt: number;
}

export class ExpiryHeap<R> {
  readonly #items: HeldSubnet<R>[] = [];

  get size(): number {
    return this.#items.length;
  }

  push(item: HeldSubnet<R>): void {
    const items = this.#items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent];
      if (p === undefined || p.expiresAt <= item.expiresAt) break;
      items[i] = p;
      i = parent;
    }
    items[i] = item;
  }

  peek(): HeldSubnet<R> | undefined {
    return this.#items[0];
  }

  pop(): HeldSubnet<R> | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const l = items[left];
      const r = items[right];
      const child = r !== undefined && l !== undefined && r.expiresAt < l.expiresAt ? right : left;
      const c = items[child];
      if (c === undefined || c.expiresAt >= last.expiresAt) break;
      items[i] = c;
      i = child;
    }
    items[i] = last;
    return top;
  }

  /** Every entry, stale ones included, in no particular order. */
  entries(): readonly HeldSubnet<R>[] {
    return this.#items;
  }
}
