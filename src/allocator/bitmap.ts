// A fixed-size bitmap of Uint32Array words with a hierarchy of "word is full" summaries.
// Finding the next clear bit costs O(levels × 32) word reads at worst, never a scan of every bit.

// Level 0 holds the bits. Bit j of level k+1 is set exactly when word j of level k is all ones, so a
// clear bit at any level points down to a word with free space. Padding bits past the end of every
// level are kept set, which lets "all ones" mean "full" without bounds checks. The top level is one
// word. `count` is maintained on every flip, never recomputed.

const FULL = 0xffffffff;

export class Bitmap {
  readonly size: number;
  readonly #levels: Uint32Array[];
  /** Level 0, the bits themselves (also #levels[0]). */
  readonly #words: Uint32Array;
  #count = 0;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`bitmap size must be a positive integer, got ${size}`);
    this.size = size;
    this.#levels = [];
    let entries = size;
    for (;;) {
      const words = Math.ceil(entries / 32);
      const level = new Uint32Array(words);
      const tail = entries & 31;
      if (tail !== 0) level[words - 1] = (FULL << tail) >>> 0;
      this.#levels.push(level);
      if (words === 1) break;
      entries = words;
    }
    this.#words = this.#levels[0] ?? new Uint32Array(1);
  }

  /**
   * Runs of set bits as [begin, end, begin, end, …], ends inclusive, lowest first. Empty and full
   * words are passed whole, so a bitmap of long runs is read at a word a step.
   */
  runs(): number[] {
    const out: number[] = [];
    let begin = -1;
    const mark = (i: number, set: boolean): void => {
      if (set && begin < 0) begin = i;
      else if (!set && begin >= 0) {
        out.push(begin, i - 1);
        begin = -1;
      }
    };
    for (let i = 0; i < this.size; ) {
      const word = this.#words[i >>> 5] ?? 0;
      if ((i & 31) === 0 && i + 32 <= this.size && (word === 0 || word === FULL)) {
        mark(i, word === FULL);
        i += 32;
        continue;
      }
      mark(i, ((word >>> (i & 31)) & 1) === 1);
      i++;
    }
    if (begin >= 0) out.push(begin, this.size - 1);
    return out;
  }

  /** Number of set bits. */
  get count(): number {
    return this.#count;
  }

  has(i: number): boolean {
    return (((this.#words[i >>> 5] ?? 0) >>> (i & 31)) & 1) === 1;
  }

  /** Sets bit i; returns true when it flipped. */
  set(i: number): boolean {
    const level = this.#words;
    const w = i >>> 5;
    const old = level[w] ?? FULL;
    const bit = 1 << (i & 31);
    if ((old & bit) !== 0) return false;
    const now = (old | bit) >>> 0;
    level[w] = now;
    this.#count++;
    if (now === FULL) this.#markFull(1, w);
    return true;
  }

  /** Clears bit i; returns true when it flipped. */
  clear(i: number): boolean {
    const level = this.#words;
    const w = i >>> 5;
    const old = level[w] ?? 0;
    const bit = 1 << (i & 31);
    if ((old & bit) === 0) return false;
    level[w] = (old & ~bit) >>> 0;
    this.#count--;
    if (old === FULL) this.#markNotFull(1, w);
    return true;
  }

  /** Sets bits begin..end (inclusive); returns how many flipped. */
  setRange(begin: number, end: number): number {
    return this.#updateRange(begin, end, true, undefined);
  }

  /** Clears bits begin..end (inclusive) except those set in `keep`; returns how many flipped. */
  clearRange(begin: number, end: number, keep?: Bitmap): number {
    return this.#updateRange(begin, end, false, keep);
  }

  /** Number of set bits in begin..end (inclusive). */
  countRange(begin: number, end: number): number {
    let total = 0;
    const level = this.#words;
    for (let w = begin >>> 5; w <= end >>> 5; w++) {
      total += popcount((level[w] ?? 0) & rangeMask(w, begin, end));
    }
    return total;
  }

  /** First clear bit at or after `from`, or -1 when every bit from there to the end is set. */
  nextClear(from: number): number {
    if (from >= this.size) return -1;
    // Most searches end in the cursor's own word; only then climb the summaries.
    const w = from >>> 5;
    const m = ~(this.#words[w] ?? FULL) & (FULL << (from & 31));
    if (m !== 0) return (w << 5) + lowestBit(m);
    return this.#nextZero(0, from);
  }

  /** First clear bit at or after `from`, wrapping to 0; -1 when the bitmap is full. */
  nextClearWrapping(from: number): number {
    if (this.#count === this.size) return -1;
    const found = this.nextClear(from);
    return found >= 0 ? found : this.#nextZero(0, 0);
  }

  /** First zero bit at or after `pos` on `levelIndex`, or -1. */
  #nextZero(levelIndex: number, pos: number): number {
    const level = this.#levels[levelIndex];
    if (level === undefined) return -1;
    const w = pos >>> 5;
    if (w >= level.length) return -1;
    const m = ~(level[w] ?? FULL) & (FULL << (pos & 31));
    if (m !== 0) return (w << 5) + lowestBit(m);
    const next = this.#nextZero(levelIndex + 1, w + 1);
    if (next < 0) return -1;
    return (next << 5) + lowestBit(~(level[next] ?? FULL));
  }

  #markFull(levelIndex: number, child: number): void {
    const level = this.#levels[levelIndex];
    if (level === undefined) return;
    const w = child >>> 5;
    const now = ((level[w] ?? 0) | (1 << (child & 31))) >>> 0;
    level[w] = now;
    if (now === FULL) this.#markFull(levelIndex + 1, w);
  }

  #markNotFull(levelIndex: number, child: number): void {
    const level = this.#levels[levelIndex];
    if (level === undefined) return;
    const w = child >>> 5;
    const old = level[w] ?? 0;
    level[w] = (old & ~(1 << (child & 31))) >>> 0;
    if (old === FULL) this.#markNotFull(levelIndex + 1, w);
  }

  #updateRange(begin: number, end: number, value: boolean, keep: Bitmap | undefined): number {
    if (begin < 0 || end >= this.size || begin > end) {
      throw new RangeError(`bit range ${begin}..${end} outside bitmap of ${this.size}`);
    }
    const level = this.#words;
    const kept = keep === undefined ? undefined : keep.#words;
    let flipped = 0;
    for (let w = begin >>> 5; w <= end >>> 5; w++) {
      const old = level[w] ?? 0;
      let mask = rangeMask(w, begin, end);
      if (kept !== undefined) mask &= ~(kept[w] ?? 0);
      const now = (value ? old | mask : old & ~mask) >>> 0;
      if (now === old) continue;
      level[w] = now;
      const changed = popcount(old ^ now);
      flipped += changed;
      if (now === FULL) this.#markFull(1, w);
      else if (old === FULL) this.#markNotFull(1, w);
    }
    this.#count += value ? flipped : -flipped;
    return flipped;
  }
}

/** Bits of word w that fall inside begin..end. */
function rangeMask(w: number, begin: number, end: number): number {
  const first = w << 5;
  const lo = Math.max(begin - first, 0);
  const hi = Math.min(end - first, 31);
  const upper = hi === 31 ? FULL : ((1 << (hi + 1)) - 1) >>> 0;
  return (upper & (FULL << lo)) >>> 0;
}

function lowestBit(m: number): number {
  return 31 - Math.clz32(m & -m);
}

function popcount(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}
