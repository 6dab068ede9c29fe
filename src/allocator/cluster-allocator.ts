// ClusterAllocator: the PodCidrAllocator the controller uses — ranges per family, reserved ranges,
// all-or-nothing dual-stack allocation and a release quarantine on an injected clock.

// Invariants:
// - a subnet is handed out only when its bit is clear: never twice, never a reserved one;
// - a released subnet stays marked until `quarantineMs` has passed on the clock (0 = at once);
// - a failed dual-stack allocate leaves no trace: bits and cursors are restored, nothing is quarantined;
// - the observer hears of every bit that flips, after the state has changed.

import { formatCidr, makeCidr, overlaps, parseCidr, subnetsOf, type Cidr, type IndexSpan } from '../cidr/index.js';
import { CidrSet } from './cidr-set.js';
import { CidrOutOfRangeError, InvalidRangeError, RangeExhaustedError } from './errors.js';
import { ExpiryHeap, type HeldSubnet } from './quarantine.js';
import type {
  AllocatorObserver,
  Family,
  PodCidrAllocator,
  QuarantineEntry,
  RangeSpec,
  RangeUsage,
  SpelledCidr,
  TakenSubnets,
} from './types.js';

/** Above this many node subnets in one shared CIDR, releaseUnheld frees it whole and occupies the holders again. */
const MAX_SUBNET_WALK = 4096;

export interface ClusterAllocatorOptions {
  /** Ranges in priority order; the first range's family comes first in podCIDRs. */
  readonly ranges: readonly RangeSpec[];
  /** CIDRs never handed out (service ranges, --exclude-cidr); those outside every range are ignored. */
  readonly reserved?: readonly Cidr[];
  /** How long a released subnet waits before it can be handed out again; 0 (default) = at once. */
  readonly quarantineMs?: number;
  /** Milliseconds; defaults to Date.now. Only differences matter. */
  readonly now?: () => number;
  readonly observer?: AllocatorObserver;
}

interface Range {
  readonly set: CidrSet;
  /** Subnet index -> its live quarantine entry. Quarantined subnets stay marked in `set`. */
  readonly held: Map<number, HeldSubnet<Range>>;
}

/** One node subnet of one range. */
interface NodeSubnet {
  readonly range: Range;
  readonly index: number;
}

/** A subnet taken by a dual-stack allocate, with what is needed to give it back if a later family is full. */
interface Picked {
  readonly range: Range;
  readonly index: number;
  /** The range's cursor before the allocation. */
  readonly cursor: number;
  readonly tries: number;
}

export class ClusterAllocator implements PodCidrAllocator {
  readonly families: readonly Family[];
  readonly #ranges: Range[] = [];
  readonly #reserved: Cidr[];
  readonly #quarantineMs: number;
  readonly #now: () => number;
  readonly #observer: AllocatorObserver;
  readonly #expiries = new ExpiryHeap<Range>();

  constructor(options: ClusterAllocatorOptions) {
    if (options.ranges.length === 0) throw new RangeError('at least one range is required');
    const quarantineMs = options.quarantineMs ?? 0;
    if (!Number.isFinite(quarantineMs) || quarantineMs < 0) {
      throw new RangeError(`quarantineMs must be a finite number >= 0, got ${quarantineMs}`);
    }
    this.#quarantineMs = quarantineMs;
    this.#now = options.now ?? Date.now;
    this.#observer = options.observer ?? {};
    this.#reserved = [...(options.reserved ?? [])];
    const families: Family[] = [];
    for (const spec of options.ranges) {
      const range = this.#buildRange(spec);
      if (!families.includes(range.set.family)) families.push(range.set.family);
      this.#addRange(range);
    }
    this.families = families;
  }

  /** The ranges in priority order. */
  ranges(): RangeSpec[] {
    return this.#ranges.map((r) => ({ clusterCIDR: r.set.codec.cluster, nodeMask: r.set.nodeMask }));
  }

  /**
   * Adds a range after the existing ones (ranges are never removed or reordered, so the subnets
   * already handed out keep their meaning). Its family must already be configured.
   */
  appendRange(spec: RangeSpec): void {
    const range = this.#buildRange(spec);
    if (!this.families.includes(range.set.family)) {
      throw new InvalidRangeError(
        range.set.clusterCIDR,
        spec.nodeMask,
        `the allocator serves ${this.families.join(' and ')} only; a new family cannot be added at runtime`,
      );
    }
    this.#addRange(range);
  }

  allocate(): string[] {
    this.#expire();
    const families = this.families;
    if (families.length === 1) {
      const family = families[0] ?? 'IPv4';
      const range = this.#firstWithSpace(family);
      if (range === undefined) throw this.#exhausted(family);
      const cidr = range.set.format(range.set.allocateNextIndex());
      this.#allocated(range.set.clusterCIDR, range.set.lastTries);
      return [cidr];
    }
    const picks: Picked[] = [];
    for (const family of families) {
      const range = this.#firstWithSpace(family);
      if (range === undefined) {
        for (const pick of picks.reverse()) pick.range.set.undoAllocation(pick.index, pick.cursor);
        throw this.#exhausted(family);
      }
      const cursor = range.set.cursor;
      const index = range.set.allocateNextIndex();
      picks.push({ range, index, cursor, tries: range.set.lastTries });
    }
    return picks.map(({ range, index, tries }) => {
      this.#allocated(range.set.clusterCIDR, tries);
      return range.set.format(index);
    });
  }

  occupy(cidr: string): void {
    this.#expire();
    const subnet = this.#locate(cidr);
    if (subnet !== undefined) {
      this.#occupyIndex(subnet.range, subnet.index);
      return;
    }
    this.#forEachSpan(cidr, (range, span) => {
      const flipped = range.set.occupySpan(span);
      for (const index of range.held.keys()) {
        if (index >= span.begin && index <= span.end) range.held.delete(index);
      }
      if (flipped > 0) this.#occupied(range.set.clusterCIDR, flipped);
    });
  }

  /**
   * Occupies `cidr` when it is one of the ranges' node subnets and not in use yet, and says so.
   * False (and nothing changes) when it is in use or reserved, or is no node subnet: another size,
   * malformed or outside every range.
   */
  occupyFree(cidr: string): boolean {
    this.#expire();
    const subnet = this.#locate(cidr);
    return subnet !== undefined && this.#occupyIndex(subnet.range, subnet.index);
  }

  /** Marks one subnet in use; false when it already was. */
  #occupyIndex(range: Range, index: number): boolean {
    // A node holding a quarantined CIDR: it simply stays marked, now as in use.
    if (range.held.size > 0 && range.held.delete(index)) return true;
    if (!range.set.occupyIndex(index)) return false;
    this.#occupied(range.set.clusterCIDR, 1);
    return true;
  }

  release(cidr: string): void {
    this.#expire();
    const subnet = this.#locate(cidr);
    if (subnet !== undefined) {
      this.#releaseIndex(subnet.range, subnet.index);
      return;
    }
    this.#forEachSpan(cidr, (range, span) => {
      if (this.#quarantineMs === 0) {
        const flipped = range.set.releaseSpan(span);
        if (flipped > 0) this.#released(range.set.clusterCIDR, flipped);
        return;
      }
      for (let index = span.begin; index <= span.end; index++) this.#releaseIndex(range, index);
    });
  }

  /**
   * The bitmap knows only whole node subnets, so a subnet shared with a holder (a /25 beside a /25,
   * a /24 inside a /23) stays taken: we would rather leak than hand out a range that a live node
   * still carries. The node mask is that of the first range `released` overlaps.
   */
  releaseUnheld(released: SpelledCidr, holdersOf: (cidr: Cidr) => readonly SpelledCidr[]): number {
    const { cidr } = released;
    const range = this.#ranges.find((r) => overlaps(r.set.codec.cluster, cidr));
    const nodeMask = range?.set.nodeMask ?? cidr.prefix;
    if (cidr.prefix >= nodeMask) {
      if (holdersOf(makeCidr(cidr, cidr.base, nodeMask)).length > 0) return 0;
      this.release(released.text);
      return 1;
    }
    const subnets = 2 ** (nodeMask - cidr.prefix);
    const holders = holdersOf(cidr);
    if (holders.length === 0) {
      this.release(released.text);
      return subnets;
    }
    if (subnets > MAX_SUBNET_WALK) {
      this.release(released.text);
      for (const holder of holders) this.occupy(holder.text);
      return subnets;
    }
    let freed = 0;
    for (const subnet of subnetsOf(cidr, nodeMask)) {
      // A CIDR wider than a range (another pool's, around this one) has subnets outside it.
      if (holdersOf(subnet).length > 0 || !this.#inAnyRange(subnet)) continue;
      this.release(formatCidr(subnet));
      freed++;
    }
    return freed;
  }

  /** True when every subnet the CIDR touches is in use (quarantined ones are not). False outside all ranges. */
  isAllocated(cidr: string): boolean {
    this.#expire();
    const subnet = this.#locate(cidr);
    if (subnet !== undefined) return subnet.range.set.hasIndex(subnet.index) && !subnet.range.held.has(subnet.index);
    const parsed = parseCidr(cidr);
    let touched = false;
    for (const range of this.#ranges) {
      const span = range.set.codec.span(parsed);
      if (span === undefined) continue;
      touched = true;
      for (let index = span.begin; index <= span.end; index++) {
        if (!range.set.hasIndex(index) || range.held.has(index)) return false;
      }
    }
    return touched;
  }

  usage(): RangeUsage[] {
    this.#expire();
    return this.#ranges.map((range) => ({
      clusterCIDR: range.set.clusterCIDR,
      family: range.set.family,
      nodeMask: range.set.nodeMask,
      capacity: range.set.capacity,
      used: range.set.used,
      free: range.set.free,
      quarantined: range.held.size,
      reserved: range.set.reserved,
    }));
  }

  /** Every range's taken subnets: in use, reserved or quarantined. */
  taken(): TakenSubnets[] {
    this.#expire();
    return this.#ranges.map((r) => ({ clusterCIDR: r.set.clusterCIDR, nodeMask: r.set.nodeMask, runs: r.set.takenRuns() }));
  }

  /**
   * Marks what taken() of another allocator gave as taken here, without a quarantine: the subnets
   * are simply in use. False, and nothing changes, when no range has that CIDR and mask or a run
   * is not ascending within the range.
   */
  markTaken(taken: TakenSubnets): boolean {
    const range = this.#ranges.find((r) => r.set.clusterCIDR === taken.clusterCIDR && r.set.nodeMask === taken.nodeMask);
    if (range === undefined || !validRuns(taken.runs, range.set.capacity)) return false;
    let flipped = 0;
    for (let k = 0; k < taken.runs.length; k += 2) {
      const begin = taken.runs[k] ?? 0;
      const end = taken.runs[k + 1] ?? 0;
      flipped += range.set.occupySpan({ begin, end });
      for (const index of range.held.keys()) if (index >= begin && index <= end) range.held.delete(index);
    }
    if (flipped > 0) this.#occupied(range.set.clusterCIDR, flipped);
    return true;
  }

  /** Released CIDRs still waiting, oldest release first (for durable quarantine). */
  quarantined(): QuarantineEntry[] {
    this.#expire();
    const entries: QuarantineEntry[] = [];
    for (const range of this.#ranges) {
      for (const held of range.held.values()) {
        entries.push({ cidr: range.set.format(held.index), releasedAt: held.releasedAt });
      }
    }
    return entries.sort((a, b) => a.releasedAt - b.releasedAt);
  }

  /**
   * Restores quarantine entries saved before a restart. Call it before occupying the nodes' CIDRs;
   * an entry whose CIDR is already in use, reserved or past its quarantine is skipped. Returns the
   * entries that could not be understood: not a node-sized subnet of any configured range.
   */
  seedQuarantine(entries: readonly QuarantineEntry[]): QuarantineEntry[] {
    const rejected: QuarantineEntry[] = [];
    const now = this.#now();
    for (const entry of entries) {
      const subnet = this.#locate(entry.cidr);
      if (subnet === undefined || !Number.isFinite(entry.releasedAt)) {
        rejected.push(entry);
        continue;
      }
      // Without a quarantine nothing is ever held: release frees at once and must stay the only path.
      if (this.#quarantineMs === 0) continue;
      const { range, index } = subnet;
      const expiresAt = entry.releasedAt + this.#quarantineMs;
      if (expiresAt <= now || range.set.hasIndex(index)) continue;
      range.set.occupyIndex(index);
      this.#occupied(range.set.clusterCIDR, 1);
      this.#hold(range, index, entry.releasedAt);
    }
    return rejected;
  }

  /** When the earliest quarantined subnet becomes free (allocator clock, ms), or undefined. */
  nextQuarantineExpiry(): number | undefined {
    this.#expire();
    const heap = this.#expiries;
    // Stale entries (occupied again since) are dropped from the top until a live one shows.
    for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
      if (top.range.held.get(top.index) === top) return top.expiresAt;
      heap.pop();
    }
    return undefined;
  }

  #buildRange(spec: RangeSpec): Range {
    const cluster = spec.clusterCIDR;
    const set = new CidrSet(cluster, spec.nodeMask);
    for (const other of this.#ranges) {
      if (other.set.codec.span(cluster) !== undefined) {
        throw new InvalidRangeError(set.clusterCIDR, spec.nodeMask, `overlaps the range ${other.set.clusterCIDR}`);
      }
    }
    return { set, held: new Map() };
  }

  #addRange(range: Range): void {
    for (const reserved of this.#reserved) {
      if (range.set.codec.span(reserved) === undefined) continue;
      const flipped = range.set.reserve(reserved);
      if (flipped > 0) this.#occupied(range.set.clusterCIDR, flipped);
    }
    this.#ranges.push(range);
  }

  #firstWithSpace(family: Family): Range | undefined {
    for (const range of this.#ranges) if (range.set.family === family && range.set.free > 0) return range;
    return undefined;
  }

  #inAnyRange(cidr: Cidr): boolean {
    return this.#ranges.some((r) => overlaps(r.set.codec.cluster, cidr));
  }

  /** The range and index of `cidr` when it is one of the ranges' node subnets, else undefined. */
  #locate(cidr: string): NodeSubnet | undefined {
    for (const range of this.#ranges) {
      const index = range.set.codec.indexOf(cidr);
      if (index >= 0) return { range, index };
    }
    return undefined;
  }

  #exhausted(family: Family): RangeExhaustedError {
    const ranges = this.#ranges.filter((r) => r.set.family === family);
    const quarantined = ranges.reduce((sum, r) => sum + r.held.size, 0);
    return new RangeExhaustedError(
      family,
      ranges.map((r) => r.set.clusterCIDR),
      quarantined,
      this.#earliestExpiry(family),
    );
  }

  #releaseIndex(range: Range, index: number): void {
    const set = range.set;
    if (this.#quarantineMs === 0) {
      // Nothing is ever held without a quarantine; releaseIndex skips reserved subnets itself.
      if (set.releaseIndex(index)) this.#released(set.clusterCIDR, 1);
      return;
    }
    if (!set.hasIndex(index) || set.isReservedIndex(index) || range.held.has(index)) return;
    this.#hold(range, index, this.#now());
  }

  #hold(range: Range, index: number, releasedAt: number): void {
    const held: HeldSubnet<Range> = { range, index, releasedAt, expiresAt: releasedAt + this.#quarantineMs };
    range.held.set(index, held);
    this.#expiries.push(held);
  }

  /** Frees every quarantined subnet whose time has come; stale heap entries are dropped on the way. */
  #expire(): void {
    const heap = this.#expiries;
    if (heap.size === 0) return;
    const now = this.#now();
    for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
      const live = top.range.held.get(top.index) === top;
      if (live && top.expiresAt > now) return;
      heap.pop();
      if (!live) continue;
      top.range.held.delete(top.index);
      if (top.range.set.releaseIndex(top.index)) this.#released(top.range.set.clusterCIDR, 1);
    }
  }

  #earliestExpiry(family: Family): number | undefined {
    let earliest: number | undefined;
    for (const held of this.#expiries.entries()) {
      if (held.range.held.get(held.index) !== held || held.range.set.family !== family) continue;
      if (earliest === undefined || held.expiresAt < earliest) earliest = held.expiresAt;
    }
    return earliest;
  }

  /** Calls `visit` for each range the CIDR touches; throws CidrParseError or CidrOutOfRangeError. */
  #forEachSpan(cidr: string, visit: (range: Range, span: IndexSpan) => void): void {
    const parsed = parseCidr(cidr);
    const spans: [Range, IndexSpan][] = [];
    for (const range of this.#ranges) {
      const span = range.set.codec.span(parsed);
      if (span !== undefined) spans.push([range, span]);
    }
    if (spans.length === 0) {
      const same = this.#ranges.filter((r) => r.set.family === parsed.family).map((r) => r.set.clusterCIDR);
      throw new CidrOutOfRangeError(cidr, same);
    }
    for (const [range, span] of spans) visit(range, span);
  }

  // Observers are metrics: a throwing one must never leave the allocator half-updated, so errors
  // are swallowed on purpose — the state change has already happened and must stand. These three
  // are observers.ts's guarded() written out: its shared wrapper costs 5-11 % on the allocation
  // paths (docs/decisions/0003, "the allocator's own observer guards").
  #allocated(clusterCIDR: string, tries: number): void {
    try {
      this.#observer.allocated?.(clusterCIDR, tries);
    } catch {
      /* see above */
    }
  }

  #occupied(clusterCIDR: string, subnets: number): void {
    try {
      this.#observer.occupied?.(clusterCIDR, subnets);
    } catch {
      /* see above */
    }
  }

  #released(clusterCIDR: string, subnets: number): void {
    try {
      this.#observer.released?.(clusterCIDR, subnets);
    } catch {
      /* see above */
    }
  }
}

/** Pairs of integers, each run inside [0, capacity) and after the one before it. */
function validRuns(runs: readonly number[], capacity: number): boolean {
  if (runs.length % 2 !== 0) return false;
  let next = 0;
  for (let k = 0; k < runs.length; k += 2) {
    const begin = runs[k];
    const end = runs[k + 1];
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin === undefined || end === undefined) return false;
    if (begin < next || end < begin || end >= capacity) return false;
    next = end + 1;
  }
  return true;
}
