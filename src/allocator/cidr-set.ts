// CidrSet: one cluster CIDR cut into node subnets, tracked in a Bitmap, with upstream's verbs.
// allocateNext hands out subnets in kube-controller-manager's order; occupy/release are idempotent.
// Besides those, only what ClusterAllocator needs: the same verbs by subnet index, reserve and counts.

import { formatCidr, parseCidr, SubnetCodec, type Cidr, type IndexSpan } from '../cidr/index.js';
import { Bitmap } from './bitmap.js';
import { CidrOutOfRangeError, InvalidRangeError, RangeExhaustedError } from './errors.js';
import type { Family } from './types.js';

/**
 * Most subnets one range may hold: 2^24 bits is a 2 MiB bitmap (plus 1/31 for summaries).
 * Upstream stops at 2^16 for IPv6 (kubernetes#44918), which rules out /64 nodes in a /40.
 */
export const MAX_SUBNETS_PER_RANGE = 2 ** 24;

export interface RangeProblem {
  readonly kind: 'mask-bounds' | 'mask-shorter-than-cluster' | 'too-many-subnets';
  readonly message: string;
}

/** Why (clusterPrefix, nodeMask) is not a usable range for an address width, or undefined. */
export function rangeProblem(clusterPrefix: number, nodeMask: number, bits: number): RangeProblem | undefined {
  if (!Number.isInteger(nodeMask) || nodeMask < 0 || nodeMask > bits) {
    return { kind: 'mask-bounds', message: `node mask must be an integer between 0 and ${bits}, got ${nodeMask}` };
  }
  if (nodeMask < clusterPrefix) {
    return {
      kind: 'mask-shorter-than-cluster',
      message: `the node mask /${nodeMask} is shorter than the cluster prefix /${clusterPrefix}`,
    };
  }
  const indexBits = nodeMask - clusterPrefix;
  const limitBits = Math.log2(MAX_SUBNETS_PER_RANGE);
  if (indexBits > limitBits) {
    return {
      kind: 'too-many-subnets',
      message:
        `the node CIDR size is too big: a /${clusterPrefix} cut into /${nodeMask} subnets makes ` +
        `2^${indexBits} subnets, more than the 2^${limitBits} one range supports; use a cluster prefix ` +
        `of /${nodeMask - limitBits} or longer, or a node mask of /${clusterPrefix + limitBits} or shorter`,
    };
  }
  return undefined;
}

export class CidrSet {
  /** Canonical text of the cluster CIDR; also the metrics label. */
  readonly clusterCIDR: string;
  readonly family: Family;
  readonly nodeMask: number;
  readonly capacity: number;
  readonly codec: SubnetCodec;

  /** Bit i set: subnet i is taken (allocated, occupied, reserved, or held by the caller's quarantine). */
  readonly #used: Bitmap;
  /** Subnets blocked by reserved ranges; release never clears these. Created on first reserve. */
  #reserved: Bitmap | undefined;
  /** Upstream's nextCandidate: starts at 0, moves only on allocation, wraps. */
  #cursor = 0;
  #lastTries = 0;

  constructor(clusterCIDR: string | Cidr, nodeMask: number) {
    const cluster = typeof clusterCIDR === 'string' ? parseCidr(clusterCIDR) : clusterCIDR;
    const problem = rangeProblem(cluster.prefix, nodeMask, cluster.bits);
    if (problem !== undefined) {
      throw new InvalidRangeError(formatCidr(cluster), nodeMask, problem.message);
    }
    this.codec = new SubnetCodec(cluster, nodeMask);
    this.clusterCIDR = this.codec.clusterText;
    this.family = cluster.family;
    this.nodeMask = nodeMask;
    this.capacity = this.codec.count;
    this.#used = new Bitmap(this.capacity);
  }

  get used(): number {
    return this.#used.count;
  }

  get free(): number {
    return this.capacity - this.#used.count;
  }

  /** Subnets blocked by reserved ranges. */
  get reserved(): number {
    return this.#reserved?.count ?? 0;
  }

  /** Where the next allocateNext starts looking. */
  get cursor(): number {
    return this.#cursor;
  }

  /** Taken subnets skipped by the last allocateNext (upstream's allocation_tries_per_request). */
  get lastTries(): number {
    return this.#lastTries;
  }

  /** Allocates the next free subnet after the cursor and returns its CIDR text. */
  allocateNext(): string {
    return this.codec.format(this.allocateNextIndex());
  }

  /** Like allocateNext, but returns the subnet index. Throws RangeExhaustedError. */
  allocateNextIndex(): number {
    const index = this.#used.nextClearWrapping(this.#cursor);
    if (index < 0) throw new RangeExhaustedError(this.family, [this.clusterCIDR]);
    this.#used.set(index);
    // Every subnet between the cursor and the pick was taken: that is upstream's loop count.
    this.#lastTries = index >= this.#cursor ? index - this.#cursor : this.capacity - this.#cursor + index;
    this.#cursor = index + 1 === this.capacity ? 0 : index + 1;
    return index;
  }

  /** Takes back an allocation that was never handed out, restoring the cursor as it was. */
  undoAllocation(index: number, cursor: number): void {
    this.#used.clear(index);
    this.#cursor = cursor;
  }

  /** Marks every subnet `cidr` touches as used; returns how many were newly marked. */
  occupy(cidr: string): number {
    const index = this.codec.indexOf(cidr);
    if (index >= 0) return this.#used.set(index) ? 1 : 0;
    const span = this.#spanOf(cidr);
    return this.#used.setRange(span.begin, span.end);
  }

  /** Frees every subnet `cidr` touches, except reserved ones; returns how many were freed. */
  release(cidr: string): number {
    const index = this.codec.indexOf(cidr);
    if (index >= 0) return this.releaseIndex(index) ? 1 : 0;
    return this.releaseSpan(this.#spanOf(cidr));
  }

  /** Blocks every subnet `cidr` touches for good; returns how many were newly marked used. */
  reserve(cidr: Cidr): number {
    const span = this.#spanOrThrow(cidr, formatCidr(cidr));
    this.#reserved ??= new Bitmap(this.capacity);
    this.#reserved.setRange(span.begin, span.end);
    return this.#used.setRange(span.begin, span.end);
  }

  hasIndex(index: number): boolean {
    return this.#used.has(index);
  }

  isReservedIndex(index: number): boolean {
    return this.#reserved?.has(index) ?? false;
  }

  /** Marks one subnet; returns true when it was free. */
  occupyIndex(index: number): boolean {
    return this.#used.set(index);
  }

  /** Frees one subnet unless it is reserved; returns true when it was taken. */
  releaseIndex(index: number): boolean {
    if (this.#reserved?.has(index) === true) return false;
    return this.#used.clear(index);
  }

  /** Marks a span; returns how many subnets were newly marked. */
  occupySpan(span: IndexSpan): number {
    return this.#used.setRange(span.begin, span.end);
  }

  /** Frees a span except its reserved subnets; returns how many were freed. */
  releaseSpan(span: IndexSpan): number {
    return this.#used.clearRange(span.begin, span.end, this.#reserved);
  }

  /** Taken subnets (allocated, occupied, reserved, quarantined) as runs [begin, end, …], ends inclusive. */
  takenRuns(): number[] {
    return this.#used.runs();
  }

  format(index: number): string {
    return this.codec.format(index);
  }

  /** The subnet indices `cidr` touches. Throws CidrParseError or CidrOutOfRangeError. */
  #spanOf(cidr: string): IndexSpan {
    const index = this.codec.indexOf(cidr);
    if (index >= 0) return { begin: index, end: index };
    return this.#spanOrThrow(parseCidr(cidr), cidr);
  }

  #spanOrThrow(cidr: Cidr, text: string): IndexSpan {
    const span = this.codec.span(cidr);
    if (span === undefined) throw new CidrOutOfRangeError(text, [this.clusterCIDR]);
    return span;
  }
}
