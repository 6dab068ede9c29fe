// PoolAllocator: the PodCidrAllocator of node-group pools. It picks a node's pool in
// node-ipam-controller's order and allocates from SharedPools, so pools sharing addresses stay disjoint.

// The flags' ranges are one more pool, FLAG_POOL, that serves every node after all the others. A pool
// being deleted hands out nothing new but keeps what it holds marked until it is removed; removing a
// pool forgets its own bitmaps only, and what it held stays marked in the pools sharing its addresses.

import type { ClusterAllocator } from '../allocator/cluster-allocator.js';
import { NoPoolError, RangeExhaustedError } from '../allocator/errors.js';
import { SharedPools, type PoolRangeUsage, type SharedPoolsOptions } from '../allocator/shared-pools.js';
import type {
  AllocationFor,
  Family,
  PodCidrAllocator,
  QuarantineEntry,
  RangeSpec,
  RangeUsage,
  SpelledCidr,
} from '../allocator/types.js';
import type { Cidr } from '../cidr/index.js';
import type { NodeSelector } from './node-selector.js';
import { orderPools, type PoolCandidate } from './pool-order.js';
import { FLAG_POOL } from './ports.js';

/** The flags' pool; ports.ts owns it, so the metrics can label by it. */
export { FLAG_POOL };

/** A ClusterCIDR as the allocator needs it: checked, parsed, immutable. */
export interface PoolDefinition {
  readonly name: string;
  /** Undefined: the pool serves every node. */
  readonly nodeSelector?: NodeSelector;
  readonly ipv4?: Cidr;
  readonly ipv6?: Cidr;
  /** Host bits of each node subnet, the same in both families: 8 makes IPv4 /24 and IPv6 /120. */
  readonly perNodeHostBits: number;
}

export interface PoolAllocatorOptions extends Omit<SharedPoolsOptions, 'observer'> {
  /** --cluster-cidr with its node masks, in podCIDRs order; empty when the pools are all there is. */
  readonly flagRanges: readonly RangeSpec[];
  readonly pools?: readonly PoolDefinition[];
  readonly observer?: SharedPoolsOptions['observer'];
}

/** What the allocator keeps of a pool besides its bitmaps. */
interface PoolEntry {
  readonly definition: PoolDefinition;
  /** Built once, not per allocation: with many pools, building them was most of allocate's time. */
  readonly candidate: PoolCandidate;
  deleting: boolean;
}

/** The ranges a pool's definition makes, IPv4 first. */
export function poolRanges(pool: PoolDefinition): RangeSpec[] {
  const ranges: RangeSpec[] = [];
  if (pool.ipv4) ranges.push({ clusterCIDR: pool.ipv4, nodeMask: 32 - pool.perNodeHostBits });
  if (pool.ipv6) ranges.push({ clusterCIDR: pool.ipv6, nodeMask: 128 - pool.perNodeHostBits });
  return ranges;
}

export class PoolAllocator implements PodCidrAllocator {
  readonly #shared: SharedPools;
  readonly #pools = new Map<string, PoolEntry>();
  readonly #flagFamilies: readonly Family[];
  readonly #flagCandidate: PoolCandidate | undefined;

  constructor(options: PoolAllocatorOptions) {
    this.#shared = new SharedPools(options);
    this.#flagFamilies = [...new Set(options.flagRanges.map((r) => r.clusterCIDR.family))];
    if (options.flagRanges.length > 0) {
      this.#shared.addPool(FLAG_POOL, options.flagRanges);
      this.#flagCandidate = this.#candidateOf({ name: FLAG_POOL, implicit: true, perNodeHostBits: 0, allocatable: 0n });
    }
    for (const pool of options.pools ?? []) this.addPool(pool);
  }

  /** The flags' families; without flags, the families the pools serve, IPv4 first. */
  get families(): readonly Family[] {
    if (this.#flagFamilies.length > 0) return this.#flagFamilies;
    const families: Family[] = [];
    for (const { definition } of this.#pools.values()) {
      if (definition.ipv4 && !families.includes('IPv4')) families.push('IPv4');
      if (definition.ipv6 && !families.includes('IPv6')) families.push('IPv6');
    }
    return families.sort();
  }

  /** Appends a range to the flags' pool (podcidr-allocator-config); false without --cluster-cidr. */
  appendFlagRange(spec: RangeSpec): boolean {
    if (!this.#shared.has(FLAG_POOL)) return false;
    this.#shared.appendRange(FLAG_POOL, spec);
    return true;
  }

  /** The flags' allocator (appended ranges, handoffs, durable state); undefined without --cluster-cidr. */
  flagPool(): ClusterAllocator | undefined {
    return this.#shared.allocatorOf(FLAG_POOL);
  }

  /**
   * Adds a ClusterCIDR's pool, empty: call the reconciler's rangesAdded next, so that what nodes
   * hold there is occupied before anything is handed out. Throws InvalidRangeError for ranges that
   * cannot be carved at that size. False when a pool of that name is known already.
   */
  addPool(pool: PoolDefinition): boolean {
    if (this.#pools.has(pool.name)) return false;
    this.#shared.addPool(pool.name, poolRanges(pool));
    this.#shared.seedQuarantine(pool.name, this.#shared.quarantined());
    const candidate = this.#candidateOf({ ...pool, allocatable: allocatableOf(pool) });
    this.#pools.set(pool.name, { definition: pool, candidate, deleting: false });
    return true;
  }

  /** The pool hands out nothing new from now on; what it holds stays marked. */
  setDeleting(name: string): void {
    const entry = this.#pools.get(name);
    if (entry) entry.deleting = true;
  }

  /** Forgets a pool (its ClusterCIDR is gone). */
  removePool(name: string): boolean {
    if (!this.#pools.delete(name)) return false;
    return this.#shared.removePool(name);
  }

  /** The ClusterCIDR pools known, in the order they were added. */
  pools(): PoolDefinition[] {
    return [...this.#pools.values()].map((e) => e.definition);
  }

  allocate(node: AllocationFor = { name: '', labels: {} }): string[] {
    // Flags alone: kube-controller-manager's allocator, its RangeExhaustedError and its words.
    if (this.#pools.size === 0 && this.#shared.has(FLAG_POOL)) return this.#shared.allocate(FLAG_POOL);
    const { usable, full } = orderPools(this.#candidates(), node);
    for (const candidate of usable) {
      try {
        return this.#shared.allocate(candidate.name);
      } catch (err) {
        // Full only by its quarantine: usage counts held subnets as used, so this is rare.
        if (!(err instanceof RangeExhaustedError)) throw err;
      }
    }
    if (usable.length === 0 && full.length === 0) {
      throw new NoPoolError(node.name, `no ClusterCIDR matches its labels${this.#pools.size === 0 ? ' (there are none)' : ''}`);
    }
    const names = [...usable, ...full].map((c) => c.name).join(', ');
    throw new NoPoolError(node.name, `every pool that matches is full (${names})`, this.#shared.nextQuarantineExpiry());
  }

  occupy(cidr: string): void {
    this.#shared.occupy(cidr);
  }

  release(cidr: string): void {
    this.#shared.release(cidr);
  }

  releaseUnheld(released: SpelledCidr, holdersOf: (cidr: Cidr) => readonly SpelledCidr[]): number {
    return this.#shared.releaseUnheld(released, holdersOf);
  }

  isAllocated(cidr: string): boolean {
    return this.#shared.isAllocated(cidr);
  }

  /** Every pool's ranges; a range two pools share is listed under each. */
  usage(): PoolRangeUsage[] {
    return this.#shared.usage();
  }

  usageOf(name: string): RangeUsage[] {
    return this.#shared.usageOf(name);
  }

  ranges(): RangeSpec[] {
    return this.#shared.ranges();
  }

  nextQuarantineExpiry(): number | undefined {
    return this.#shared.nextQuarantineExpiry();
  }

  quarantined(): QuarantineEntry[] {
    return this.#shared.quarantined();
  }

  /** Seeds every pool's quarantine (saved state from before a restart); before occupying nodes' CIDRs. */
  seedQuarantine(entries: readonly QuarantineEntry[]): void {
    for (const name of this.#shared.names()) this.#shared.seedQuarantine(name, entries);
  }

  #candidates(): PoolCandidate[] {
    const candidates: PoolCandidate[] = [];
    for (const { candidate, deleting } of this.#pools.values()) if (!deleting) candidates.push(candidate);
    if (this.#flagCandidate !== undefined) candidates.push(this.#flagCandidate);
    return candidates;
  }

  /** `full` reads the bitmaps when ordering asks, which it does only of the pools that match the node. */
  #candidateOf(fields: Omit<PoolCandidate, 'full'>): PoolCandidate {
    const isFull = (): boolean => this.#full(fields.name);
    return {
      ...fields,
      get full() {
        return isFull();
      },
    };
  }

  /** Some family of the pool has no subnet left. */
  #full(name: string): boolean {
    const usage = this.#shared.usageOf(name);
    const families = new Set(usage.map((u) => u.family));
    return [...families].some((family) => usage.every((u) => u.family !== family || u.free === 0));
  }
}

/** Node subnets of the pool's smaller family: the peer's MaxCIDRs, for ordering. */
function allocatableOf(pool: PoolDefinition): bigint {
  const counts = poolRanges(pool).map((r) => 2n ** BigInt(r.nodeMask - r.clusterCIDR.prefix));
  return counts.reduce((least, n) => (n < least ? n : least));
}
