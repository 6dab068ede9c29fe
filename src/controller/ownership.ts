// Who holds which podCIDR: an index of the ranges live nodes claim, searchable by overlap across sizes.
// Pure bookkeeping (no allocator, no Kubernetes): the reconciler decides what is owned and what is released.

import { contains } from '../cidr/cidr.js';
import type { Cidr } from '../cidr/cidr.js';
import { isEmpty, itemsOf, none, withItems, without, type OneOrMany } from './one-or-many.js';

export type { Cidr };

/**
 * How a node holds a range:
 * - owned: the node is the first holder; the range is released when the node is deleted;
 * - shadowed: the range overlaps another node's, the node was reported and holds it only until the owner goes;
 * - pending: allocated for the node, the patch not yet known to have landed (kept out of others' reach).
 */
export type ClaimState = 'owned' | 'shadowed' | 'pending';

export interface Claim {
  readonly node: string;
  readonly uid: string;
  /**
   * The text as the node (or the allocator) spelled it: what occupy/release get back. Swapped for
   * the node's equal string once the node shows it, so that a node's podCIDR is one string, not two.
   */
  text: string;
  readonly cidr: Cidr;
  state: ClaimState;
}

export function sameCidr(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.base === b.base && a.prefix === b.prefix;
}

/**
 * The network number of the `prefix`-bit CIDR holding `cidr`: its address shifted right past the
 * host bits. Keys of one group differ in their low bits, which V8 hashes BigInts by; raw IPv6
 * /64 addresses all end in 64 zero bits and would land in one hash bucket. IPv4 keys are plain
 * numbers, which a Map holds without a BigInt object each: 24 B a node at 50,000 nodes
 * (docs/decisions/0003-memory-tricks-behind-names.md).
 */
function keyOf(cidr: Cidr, prefix: number): Key {
  const key = cidr.base >> BigInt(cidr.bits - prefix);
  return cidr.bits === 32 ? Number(key) : key;
}

type Key = number | bigint;

/** The claims on one range; almost every range has one. */
type Bucket = OneOrMany<Claim>;

function claimsIn(bucket: Bucket | undefined): readonly Claim[] {
  return bucket === undefined ? [] : itemsOf(bucket);
}

/**
 * Claims grouped by family and prefix length, keyed by network address. Nodes almost always hold
 * ranges of one size, so an overlap query is one map lookup per prefix length in use; only claims
 * smaller than the query are found by a scan.
 */
export class ClaimIndex {
  readonly #groups = new Map<Cidr['family'], Map<number, Map<Key, Bucket>>>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(claim: Claim): void {
    const { family, prefix } = claim.cidr;
    const key = keyOf(claim.cidr, prefix);
    let byPrefix = this.#groups.get(family);
    if (!byPrefix) this.#groups.set(family, (byPrefix = new Map()));
    let byBase = byPrefix.get(prefix);
    if (!byBase) byPrefix.set(prefix, (byBase = new Map()));
    byBase.set(key, withItems(byBase.get(key) ?? none(), [claim]));
    this.#size++;
  }

  /** Removes this exact claim object; other claims on the same range stay. */
  remove(claim: Claim): boolean {
    const { family, prefix } = claim.cidr;
    const key = keyOf(claim.cidr, prefix);
    const byBase = this.#groups.get(family)?.get(prefix);
    const bucket = byBase?.get(key);
    if (!byBase || bucket === undefined) return false;
    const rest = without(bucket, claim);
    if (rest === bucket) return false;
    if (isEmpty(rest)) byBase.delete(key);
    else byBase.set(key, rest);
    this.#size--;
    return true;
  }

  /** Every claim sharing at least one address with `cidr`, in insertion order per range. */
  overlapping(cidr: Cidr): Claim[] {
    const found: Claim[] = [];
    for (const [prefix, byBase] of this.#groups.get(cidr.family) ?? []) {
      if (prefix <= cidr.prefix) {
        found.push(...claimsIn(byBase.get(keyOf(cidr, prefix))));
        continue;
      }
      for (const bucket of byBase.values()) {
        for (const claim of claimsIn(bucket)) if (contains(cidr, claim.cidr)) found.push(claim);
      }
    }
    return found;
  }

  *all(): IterableIterator<Claim> {
    for (const byPrefix of this.#groups.values()) {
      for (const byBase of byPrefix.values()) {
        for (const bucket of byBase.values()) yield* claimsIn(bucket);
      }
    }
  }

  clear(): void {
    this.#groups.clear();
    this.#size = 0;
  }
}
