// Node-group pools for `npm run bench:allocator`: how well SharedPools packs mixed node sizes into one
// range, and what an allocation and a release cost through it against a single ClusterAllocator.

import { ClusterAllocator, RangeExhaustedError, SharedPools, parseRange, type SpelledCidr } from '../../../src/allocator/index.js';
import { parseCidr, type Cidr } from '../../../src/cidr/index.js';
import { XorShift32 } from './scenarios.js';

/**
 * Held CIDRs by slot of the smallest node size over one IPv4 range: the holdersOf that releaseUnheld
 * needs (the reconciler's claim index in production), and a check that no two allocations overlap.
 */
export class HeldIndex {
  readonly #range: Cidr;
  readonly #slotBits: number;
  readonly #slots: (SpelledCidr | undefined)[];

  constructor(range: Cidr, smallestMask: number) {
    this.#range = range;
    this.#slotBits = 32 - smallestMask;
    this.#slots = new Array<SpelledCidr | undefined>(2 ** (smallestMask - range.prefix));
  }

  add(held: SpelledCidr): void {
    const [begin, end] = this.#span(held.cidr);
    for (let i = begin; i < end; i++) {
      const other = this.#slots[i];
      if (other !== undefined) throw new Error(`${held.text} overlaps ${other.text}, held already`);
      this.#slots[i] = held;
    }
  }

  remove(held: SpelledCidr): void {
    const [begin, end] = this.#span(held.cidr);
    for (let i = begin; i < end; i++) this.#slots[i] = undefined;
  }

  readonly holdersOf = (cidr: Cidr): SpelledCidr[] => {
    const [begin, end] = this.#span(cidr);
    const found: SpelledCidr[] = [];
    for (let i = begin; i < end; i++) {
      const held = this.#slots[i];
      if (held !== undefined && found[found.length - 1] !== held) found.push(held);
    }
    return found;
  };

  #span(cidr: Cidr): [number, number] {
    const offset = cidr.base - this.#range.base;
    const begin = Number(offset >> BigInt(this.#slotBits));
    const count = Math.max(1, 2 ** (32 - cidr.prefix - this.#slotBits));
    return [Math.max(0, begin), Math.min(this.#slots.length, begin + count)];
  }
}

/** Moves `count` items chosen at random to the front, in random order (partial Fisher-Yates). */
function shuffleFirst<T>(items: T[], count: number, rng: XorShift32): void {
  for (let i = 0; i < count; i++) {
    const j = i + (rng.next() % (items.length - i));
    const a = items[i];
    const b = items[j];
    if (a === undefined || b === undefined) throw new Error('shuffled past the end');
    items[i] = b;
    items[j] = a;
  }
}

function spelled(text: string): SpelledCidr {
  return { text, cidr: parseCidr(text) };
}

function only(cidrs: readonly string[]): string {
  const cidr = cidrs[0];
  if (cidr === undefined || cidrs.length !== 1) throw new Error(`expected one CIDR, got ${cidrs.length}`);
  return cidr;
}

const FRAGMENTATION_RANGE = '10.0.0.0/16';
export const FRAGMENTATION_MASKS = [22, 23, 24, 25, 26] as const;

/** One fill of the /16 until every pool is full. */
export interface FillFigures {
  /** Nodes placed in this fill, by node mask. */
  readonly placed: ReadonlyMap<number, number>;
  /** How full the /16 was (addresses held / its size) when each size was first refused. */
  readonly firstRefusedAt: ReadonlyMap<number, number>;
  /** What is held once every pool is full: nodes, addresses and addresses over the /16's size. */
  readonly nodes: number;
  readonly addresses: number;
  readonly fill: number;
}

export interface FragmentationFigures {
  readonly seed: number;
  readonly first: FillFigures;
  /** After releasing `released` random nodes of the first fill (releaseUnheld, as the reconciler does). */
  readonly released: number;
  readonly refill: FillFigures;
}

interface Packing {
  readonly pools: SharedPools;
  readonly index: HeldIndex;
  readonly held: SpelledCidr[];
  addresses: number;
}

/** Allocates a seeded random mix of sizes; a size is dropped from the mix when its pool refuses. */
function fillUp(packing: Packing, rng: XorShift32, size: number): FillFigures {
  const alive: number[] = [...FRAGMENTATION_MASKS];
  const placed = new Map<number, number>(FRAGMENTATION_MASKS.map((m) => [m, 0]));
  const firstRefusedAt = new Map<number, number>();
  while (alive.length > 0) {
    const pick = rng.next() % alive.length;
    const mask = alive[pick] ?? 0;
    try {
      const held = spelled(only(packing.pools.allocate(`/${mask}`)));
      packing.index.add(held);
      packing.held.push(held);
      packing.addresses += 2 ** (32 - mask);
      placed.set(mask, (placed.get(mask) ?? 0) + 1);
    } catch (err) {
      if (!(err instanceof RangeExhaustedError)) throw err;
      firstRefusedAt.set(mask, packing.addresses / size);
      alive.splice(pick, 1);
    }
  }
  const { held, addresses } = packing;
  return { placed, firstRefusedAt, nodes: held.length, addresses, fill: addresses / size };
}

/**
 * Pools of /22../26 nodes sharing 10.0.0.0/16, filled with a seeded random mix until each is full;
 * then a random `churnFraction` of the nodes is released and the pools are filled again.
 */
export function fragmentation(seed: number, churnFraction: number): FragmentationFigures {
  const range = parseCidr(FRAGMENTATION_RANGE);
  const size = 2 ** (32 - range.prefix);
  const pools = new SharedPools();
  for (const mask of FRAGMENTATION_MASKS) pools.addPool(`/${mask}`, [parseRange(FRAGMENTATION_RANGE, mask)]);
  const packing: Packing = { pools, index: new HeldIndex(range, Math.max(...FRAGMENTATION_MASKS)), held: [], addresses: 0 };
  const rng = new XorShift32(seed);
  const first = fillUp(packing, rng, size);
  const released = Math.floor(packing.held.length * churnFraction);
  shuffleFirst(packing.held, released, rng);
  for (const chosen of packing.held.slice(0, released)) {
    packing.index.remove(chosen);
    pools.releaseUnheld(chosen, packing.index.holdersOf);
    packing.addresses -= 2 ** (32 - chosen.cidr.prefix);
  }
  packing.held.splice(0, released);
  const refill = fillUp(packing, rng, size);
  return { seed, first, released, refill };
}

/** Nanoseconds per allocate and per release, fastest of the reps. */
export interface VerbCost {
  readonly allocateNs: number;
  readonly releaseNs: number;
}

const COST_RANGE = '10.0.0.0/8';
const COST_MASKS = [22, 23, 24, 25, 26] as const;
const BASELINE_MASK = 24;

/** What one side of the cost run allocates from: a pool name per allocation, and its verbs. */
interface CostSide {
  readonly allocate: (i: number) => string;
  readonly releaseUnheld: (held: SpelledCidr, holdersOf: (cidr: Cidr) => readonly SpelledCidr[]) => void;
  readonly used: () => number;
  readonly smallestMask: number;
}

function sharedSide(n: number, seed: number): CostSide {
  const pools = new SharedPools();
  for (const mask of COST_MASKS) pools.addPool(`/${mask}`, [parseRange(COST_RANGE, mask)]);
  const rng = new XorShift32(seed);
  const names = Array.from({ length: n }, () => `/${COST_MASKS[rng.next() % COST_MASKS.length] ?? BASELINE_MASK}`);
  return {
    allocate: (i) => only(pools.allocate(names[i] ?? '')),
    releaseUnheld: (held, holdersOf) => pools.releaseUnheld(held, holdersOf),
    used: () => pools.usage().reduce((sum, u) => sum + u.used, 0),
    smallestMask: Math.max(...COST_MASKS),
  };
}

function singleSide(): CostSide {
  const allocator = new ClusterAllocator({ ranges: [parseRange(COST_RANGE, BASELINE_MASK)] });
  return {
    allocate: () => only(allocator.allocate()),
    releaseUnheld: (held, holdersOf) => allocator.releaseUnheld(held, holdersOf),
    used: () => allocator.usage().reduce((sum, u) => sum + u.used, 0),
    smallestMask: BASELINE_MASK,
  };
}

function timedNs(run: () => void): number {
  const start = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - start);
}

/** Allocates n, then releases all n in a seeded random order through releaseUnheld, as the reconciler does. */
function costOf(side: CostSide, n: number, seed: number): VerbCost {
  const texts = new Array<string>(n);
  const allocateNs = timedNs(() => {
    for (let i = 0; i < n; i++) texts[i] = side.allocate(i);
  });
  const index = new HeldIndex(parseCidr(COST_RANGE), side.smallestMask);
  const held = texts.map(spelled);
  for (const h of held) index.add(h);
  shuffleFirst(held, n, new XorShift32(seed));
  const releaseNs = timedNs(() => {
    for (const h of held) {
      index.remove(h);
      side.releaseUnheld(h, index.holdersOf);
    }
  });
  if (side.used() !== 0) throw new Error(`${side.used()} subnets still marked after releasing everything`);
  return { allocateNs: allocateNs / n, releaseNs: releaseNs / n };
}

function cheaper(best: VerbCost | undefined, next: VerbCost): VerbCost {
  if (best === undefined) return next;
  return { allocateNs: Math.min(best.allocateNs, next.allocateNs), releaseNs: Math.min(best.releaseNs, next.releaseNs) };
}

export interface CostFigures {
  readonly allocations: number;
  readonly shared: VerbCost;
  readonly single: VerbCost;
}

/**
 * SharedPools of five sizes (/22../26) over 10.0.0.0/8, each allocation from a seeded random pool,
 * against one ClusterAllocator of /24 over the same /8; the sides alternate within each round.
 */
export function sharedCost(n: number, seed: number, rounds: number): CostFigures {
  let shared: VerbCost | undefined;
  let single: VerbCost | undefined;
  for (let round = 0; round < rounds; round++) {
    single = cheaper(single, costOf(singleSide(), n, seed));
    shared = cheaper(shared, costOf(sharedSide(n, seed), n, seed));
  }
  if (shared === undefined || single === undefined) throw new Error('no rounds ran');
  return { allocations: n, shared, single };
}
