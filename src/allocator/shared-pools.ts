// SharedPools: named pools, each a ClusterAllocator of its own node sizes, that may cover the same
// addresses. A subnet taken in one pool is taken in every pool covering it, so no two allocations overlap.

// Invariant (kept by every verb, checked by the model test): for every CIDR held, every pool whose
// ranges share an address with it has each node subnet that CIDR touches marked. So a subnet whose
// bit is clear in the pool asked shares no address with anything held, quarantined or reserved, and
// allocating it is safe. The other pools learn of the pick before allocate returns.
// Release goes to every covering pool with the caller's holders, so a bigger subnet that still holds
// a smaller one stays marked: leaking a subnet is safer than handing out a range a node still carries.
// All pools share one clock, quarantine and reserved list, so a released subnet waits equally everywhere.

import { formatCidr, makeCidr, overlaps, parseCidr, subnetsOf, tryParseCidr, type Cidr } from '../cidr/index.js';
import { ClusterAllocator } from './cluster-allocator.js';
import { CidrOutOfRangeError, InvalidRangeError } from './errors.js';
import type { AllocatorObserver, QuarantineEntry, RangeSpec, RangeUsage, SpelledCidr } from './types.js';

export interface SharedPoolsOptions {
  readonly reserved?: readonly Cidr[];
  readonly quarantineMs?: number;
  /** Milliseconds; defaults to Date.now. */
  readonly now?: () => number;
  /** Hears every pool's flips, with the pool's name. */
  readonly observer?: (pool: string) => AllocatorObserver;
}

/** A pool's own allocator and the pools that share addresses with it. */
interface Pool {
  readonly name: string;
  readonly allocator: ClusterAllocator;
  specs: readonly RangeSpec[];
  ranges: readonly Cidr[];
  /** Other pools sharing an address with this one: an allocation here is marked there too. */
  neighbours: Pool[];
}

/** Usage of one range of one pool. */
export interface PoolRangeUsage extends RangeUsage {
  readonly pool: string;
}

export class SharedPools {
  readonly #pools = new Map<string, Pool>();
  readonly #options: SharedPoolsOptions;

  constructor(options: SharedPoolsOptions = {}) {
    this.#options = options;
  }

  /** Pool names in the order they were added. */
  names(): string[] {
    return [...this.#pools.keys()];
  }

  has(name: string): boolean {
    return this.#pools.has(name);
  }

  /**
   * Adds a pool; its ranges may overlap other pools' but not each other. It starts empty: the
   * caller occupies everything held that it covers (and seeds the quarantine) before allocating.
   */
  addPool(name: string, ranges: readonly RangeSpec[]): void {
    if (this.#pools.has(name)) throw new InvalidRangeError(name, 0, `a pool named ${name} exists already`);
    const allocator = new ClusterAllocator({
      ranges,
      reserved: this.#options.reserved,
      quarantineMs: this.#options.quarantineMs,
      now: this.#options.now,
      observer: this.#options.observer?.(name),
    });
    const pool: Pool = { name, allocator, specs: ranges, ranges: ranges.map((r) => r.clusterCIDR), neighbours: [] };
    this.#pools.set(name, pool);
    this.#linkNeighbours();
  }

  /** Adds a range after the pool's own (ClusterAllocator.appendRange); the caller occupies what it covers. */
  appendRange(name: string, spec: RangeSpec): void {
    const pool = this.#pool(name);
    pool.allocator.appendRange(spec);
    pool.specs = [...pool.specs, spec];
    pool.ranges = [...pool.ranges, spec.clusterCIDR];
    this.#linkNeighbours();
  }

  /** Forgets a pool; what it holds stays marked in the pools that share its addresses. */
  removePool(name: string): boolean {
    if (!this.#pools.delete(name)) return false;
    this.#linkNeighbours();
    return true;
  }

  /** The pool's allocator, for what only one pool has (appended ranges, handoffs); undefined when absent. */
  allocatorOf(name: string): ClusterAllocator | undefined {
    return this.#pools.get(name)?.allocator;
  }

  /** One CIDR per family of the pool, marked in every pool covering it. Throws RangeExhaustedError. */
  allocate(name: string): string[] {
    const pool = this.#pool(name);
    const cidrs = pool.allocator.allocate();
    for (const neighbour of pool.neighbours) {
      for (const cidr of cidrs) if (coversText(neighbour, cidr)) neighbour.allocator.occupy(cidr);
    }
    return cidrs;
  }

  /** Marks the CIDR in every pool covering it. Throws CidrParseError, or CidrOutOfRangeError when none does. */
  occupy(cidr: string): void {
    const covering = this.#covering(cidr);
    for (const pool of covering) pool.allocator.occupy(cidr);
  }

  /** Frees the CIDR in every pool covering it (each waits out the quarantine). Throws like occupy. */
  release(cidr: string): void {
    for (const pool of this.#covering(cidr)) pool.allocator.release(cidr);
  }

  /**
   * Releases, in every pool covering `released`, the node subnets no holder still shares. Returns the
   * most any one pool freed (a count for logs and metrics, not a sum over pools covering the same addresses).
   */
  releaseUnheld(released: SpelledCidr, holdersOf: (cidr: Cidr) => readonly SpelledCidr[]): number {
    let most = 0;
    for (const pool of this.#pools.values()) {
      if (!covers(pool, released.cidr)) continue;
      most = Math.max(most, pool.allocator.releaseUnheld(released, holdersOf));
    }
    return most;
  }

  /** True when some pool covers the CIDR and every covering pool has it all in use. */
  isAllocated(cidr: string): boolean {
    const covering = this.#covering(cidr, false);
    return covering.length > 0 && covering.every((pool) => pool.allocator.isAllocated(cidr));
  }

  /** Every pool's ranges, pool by pool. */
  usage(): PoolRangeUsage[] {
    const out: PoolRangeUsage[] = [];
    for (const pool of this.#pools.values()) {
      for (const usage of pool.allocator.usage()) out.push({ ...usage, pool: pool.name });
    }
    return out;
  }

  /** One pool's ranges; empty when it is absent. */
  usageOf(name: string): RangeUsage[] {
    return this.#pools.get(name)?.allocator.usage() ?? [];
  }

  /** Every pool's ranges, pool by pool; a range two pools share appears twice. */
  ranges(): RangeSpec[] {
    return [...this.#pools.values()].flatMap((pool) => pool.allocator.ranges());
  }

  /** The earliest quarantine expiry of any pool. */
  nextQuarantineExpiry(): number | undefined {
    let earliest: number | undefined;
    for (const pool of this.#pools.values()) {
      const at = pool.allocator.nextQuarantineExpiry();
      if (at !== undefined && (earliest === undefined || at < earliest)) earliest = at;
    }
    return earliest;
  }

  /** Quarantined CIDRs of every pool, each once (the finest spelling a pool holds), oldest first. */
  quarantined(): QuarantineEntry[] {
    const seen = new Map<string, QuarantineEntry>();
    for (const pool of this.#pools.values()) {
      for (const entry of pool.allocator.quarantined()) if (!seen.has(entry.cidr)) seen.set(entry.cidr, entry);
    }
    return [...seen.values()].sort((a, b) => a.releasedAt - b.releasedAt);
  }

  /**
   * Seeds one pool's quarantine with entries from elsewhere (saved state, or the other pools when it
   * is added), each spelled in this pool's node size: a finer entry holds the subnet around it, a
   * coarser one each subnet inside it, all released at the entry's time. Entries outside the pool are skipped.
   */
  seedQuarantine(name: string, entries: readonly QuarantineEntry[]): void {
    const pool = this.#pool(name);
    const spelled: QuarantineEntry[] = [];
    for (const entry of entries) {
      const cidr = tryParseCidr(entry.cidr);
      if (cidr === undefined) continue;
      for (const spec of pool.specs) {
        if (!overlaps(spec.clusterCIDR, cidr)) continue;
        for (const subnet of inNodeSize(cidr, spec.nodeMask)) spelled.push({ cidr: subnet, releasedAt: entry.releasedAt });
      }
    }
    pool.allocator.seedQuarantine(spelled);
  }

  #pool(name: string): Pool {
    const pool = this.#pools.get(name);
    if (pool === undefined) throw new RangeError(`no pool named ${name}`);
    return pool;
  }

  #covering(cidr: string, required = true): Pool[] {
    const parsed = parseCidr(cidr);
    const covering: Pool[] = [];
    for (const pool of this.#pools.values()) if (covers(pool, parsed)) covering.push(pool);
    if (covering.length === 0 && required) {
      const same = this.ranges().filter((r) => r.clusterCIDR.family === parsed.family);
      throw new CidrOutOfRangeError(cidr, same.map((r) => String(r.clusterCIDR)));
    }
    return covering;
  }

  #linkNeighbours(): void {
    const pools = [...this.#pools.values()];
    for (const pool of pools) {
      pool.neighbours = pools.filter((other) => other !== pool && other.ranges.some((r) => covers(pool, r)));
    }
  }
}

function covers(pool: Pool, cidr: Cidr): boolean {
  return pool.ranges.some((range) => overlaps(range, cidr));
}

/** Above this many node subnets, a coarser quarantined CIDR is not spelled out subnet by subnet. */
const MAX_SPELLED = 4096;

/** The node subnets of size `nodeMask` that `cidr` touches, as text; none when there are too many. */
function inNodeSize(cidr: Cidr, nodeMask: number): string[] {
  if (cidr.prefix >= nodeMask) return [formatCidr(makeCidr(cidr, cidr.base, nodeMask))];
  if (nodeMask - cidr.prefix > Math.log2(MAX_SPELLED)) return [];
  return [...subnetsOf(cidr, nodeMask)].map(formatCidr);
}

function coversText(pool: Pool, text: string): boolean {
  return covers(pool, parseCidr(text));
}
