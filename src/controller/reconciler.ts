// The reconciler: rebuilds the allocator from existing Nodes, gives podCIDRs to Nodes without them,
// reclaims on delete. A range some live node holds in its spec is never handed to another node.

import type { Logger } from 'pino';
import { NoPoolError, RangeExhaustedError } from '../allocator/errors.js';
import type { PodCidrAllocator } from '../allocator/types.js';
import { type Cidr, overlaps, sameCidr, tryParseCidr } from '../cidr/index.js';
import { claimPodCIDR, firstHolderOrder } from './claim.js';
import {
  type ConflictKind,
  type EventSink,
  type NodeInfo,
  type NodeLister,
  type NodeWriter,
  NO_LABELS,
  PatchError,
  type PatchFailure,
  type ReconcilerObserver,
} from './ports.js';
import { find, isEmpty, itemsOf, none, withItems, type OneOrMany } from './one-or-many.js';
import { type Claim, ClaimIndex } from './ownership.js';
import type { Clock as TimeClock } from '../time.js';
import { guarded } from '../observers.js';
import { isAtOrPast } from './resource-version-mark.js';

/**
 * Problems found in podCIDRs that nodes already carry (see ConflictKind). Each is reported once per
 * node (and uid) and CIDR as a Warning Event on the Node, with the reason below. The node is never
 * modified: the API server forbids changing podCIDRs once set.
 */
export type { ConflictKind };

const REASONS: Record<ConflictKind, string> = {
  malformed: 'PodCIDRMalformed',
  'out-of-range': 'PodCIDROutOfRange',
  duplicate: 'PodCIDRConflict',
  overlap: 'PodCIDRConflict',
};

/** Milliseconds; the same clock the allocator's quarantine uses. */
export type Clock = Pick<TimeClock, 'now'>;

export interface ReconcilerOptions {
  readonly allocator: PodCidrAllocator;
  readonly lister: NodeLister;
  readonly writer: NodeWriter;
  readonly events: EventSink;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly observer?: ReconcilerObserver;
  /** Ask the work queue to sync `name` again, after `afterMs` when given. */
  readonly requeue?: (name: string, afterMs?: number) => void;
  /** Our field manager: of duplicate podCIDRs found at rebuild, the node we patched wins. */
  readonly fieldManager?: string;
  /** Whether the rebuild logs its summary; default true. A fast start's rebuild from no list does not. */
  readonly announceRebuild?: boolean;
}

/**
 * An allocation another reconciler made (a fast start's, before the list was in): its patch went out,
 * so until the cache shows the node holding it the range is the node's, pending.
 */
export interface CarriedAllocation {
  readonly name: string;
  readonly uid: string;
  readonly cidrs: readonly string[];
  /** The patch succeeded: the node's next watch event shows it, so nothing needs to be sent again. */
  readonly landed?: boolean;
  /**
   * A resourceVersion at which the carrier last saw this node name exist or be deleted. A cache at
   * or past it that lacks the name shows the node gone: no event of it will come to release it.
   */
  readonly seenAt?: string;
}

export interface RebuildSummary {
  readonly nodes: number;
  /** CIDRs now owned by a node. */
  readonly occupied: number;
  readonly conflicts: Readonly<Record<ConflictKind, number>>;
}

/** Thrown to back off while a patch's outcome is unknown; its CIDRs stay reserved for the node. */
export class PatchPendingError extends Error {
  constructor(
    readonly node: string,
    readonly podCIDRs: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(`podCIDRs patch for node ${node} has an unknown outcome; ${podCIDRs.join(',')} stay reserved for it`, options);
    this.name = 'PatchPendingError';
  }
}

/** One allocation on its way to the API server. Identity matters: a dropped attempt is stale. */
interface Attempt {
  readonly cidrs: readonly string[];
  readonly claims: readonly Claim[];
  /** A patch timed out: the write may land later, so the CIDRs are never released on 'failed'. */
  uncertain: boolean;
}

/** What we know about one node incarnation (name + uid). */
class NodeRecord {
  /** Owned and shadowed claims, all in the index; almost always one. */
  claims: OneOrMany<Claim> = none();
  attempt: Attempt | undefined = undefined;
  /** CIDRs already reported, so resyncs do not repeat the Event; created on the first report (rare). */
  reported: Set<string> | undefined = undefined;

  constructor(readonly uid: string) {}
}

/** The claim of a CIDR reserved for a node while its patch is out; undefined when the text is no CIDR. */
function pendingClaim(node: { readonly name: string; readonly uid: string }, text: string): Claim | undefined {
  const cidr = tryParseCidr(text);
  return cidr && { node: node.name, uid: node.uid, text, cidr, state: 'pending' };
}

const NO_CONFLICTS: Readonly<Record<ConflictKind, number>> = {
  malformed: 0,
  'out-of-range': 0,
  duplicate: 0,
  overlap: 0,
};

export class Reconciler {
  readonly #allocator: PodCidrAllocator;
  readonly #lister: NodeLister;
  readonly #writer: NodeWriter;
  readonly #events: EventSink;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #observer: ReconcilerObserver;
  readonly #requeue: (name: string, afterMs?: number) => void;
  readonly #fieldManager: string | undefined;
  readonly #announceRebuild: boolean;
  /** The allocator's cluster CIDRs: where a carried allocation may be, and which ranges are new. */
  #clusterCIDRs: readonly Cidr[];
  /** Every claim of every known node: owned, shadowed and pending. */
  readonly #index = new ClaimIndex();
  /** What still holds addresses when a claim is released: the claims left in the index. */
  readonly #holdersOf = (cidr: Cidr): readonly Claim[] => this.#index.overlapping(cidr);
  readonly #records = new Map<string, NodeRecord>();
  /** Nodes that found the range exhausted, requeued whenever space frees. */
  readonly #waiting = new Set<string>();
  /** Allocating before the existing podCIDRs are occupied could hand one out twice. */
  #rebuilt = false;

  constructor(options: ReconcilerOptions) {
    this.#allocator = options.allocator;
    this.#lister = options.lister;
    this.#writer = options.writer;
    this.#events = options.events;
    this.#log = options.logger;
    this.#clock = options.clock;
    this.#observer = guarded(options.observer, ['conflict', 'allocated', 'released', 'patchFailed', 'waiting']);
    this.#requeue = options.requeue ?? (() => {});
    this.#fieldManager = options.fieldManager;
    this.#announceRebuild = options.announceRebuild ?? true;
    this.#clusterCIDRs = clusterCIDRsOf(options.allocator);
  }

  // ---- startup -------------------------------------------------------------------------------

  /**
   * Occupies every podCIDR of a fresh full list; call before any sync and on every new leadership.
   * Bad podCIDRs are reported and skipped, never thrown: upstream crash-loops on them (#82773).
   * Of overlapping podCIDRs the first holder keeps the range: nodes patched by our field manager
   * first, then name order (the API server's list order). NodeInfo has no creation time; name order
   * makes every leader pick the same holder whatever order its cache lists nodes in.
   */
  rebuild(nodes: readonly NodeInfo[], carried: readonly CarriedAllocation[] = [], listedAt = ''): RebuildSummary {
    const previous = [...this.#index.all()];
    const attempts = this.#attemptsToKeep(nodes);
    this.#index.clear();
    this.#records.clear();
    this.#waiting.clear();
    this.#observer.waiting?.(0);
    const conflicts = { ...NO_CONFLICTS };
    for (const node of this.#firstHolderOrder(nodes)) {
      for (const kind of this.#claimSafely(node)) conflicts[kind]++;
    }
    this.#restoreAttempts(attempts);
    this.#restoreCarried(carried, listedAt);
    // The allocator may be the one of an earlier term: hand back what no listed node holds now.
    this.#freeAll(previous);
    let occupied = 0;
    for (const claim of this.#index.all()) if (claim.state === 'owned') occupied++;
    const summary: RebuildSummary = { nodes: nodes.length, occupied, conflicts };
    this.#rebuilt = true;
    if (this.#announceRebuild) this.#log.info(summary, 'rebuilt podCIDR allocations from nodes');
    return summary;
  }

  /**
   * After ranges were added to the allocator (appended, or a new pool): podCIDRs inside them were out
   * of range until now, and are occupied before anything there is handed out. Unlike rebuild, nothing
   * is cleared or freed: a patch that landed but is not in the cache yet keeps its claim, so its subnet
   * cannot go to another node. Every claim already held is occupied again too: a new pool may cover
   * addresses an existing one handed out (a reservation whose patch is out is in no node's spec yet).
   * Then waiting nodes try again: the new ranges may serve them.
   */
  rangesAdded(nodes: readonly NodeInfo[]): ConflictKind[] {
    const before = this.#clusterCIDRs;
    this.#clusterCIDRs = clusterCIDRsOf(this.#allocator);
    const added = this.#clusterCIDRs.filter((r) => !before.some((b) => sameCidr(b, r)));
    const found: ConflictKind[] = [];
    for (const node of this.#firstHolderOrder(nodes)) {
      const reported = this.#records.get(node.name)?.reported;
      // Reported as out of range until now; judged again now that a range covers it.
      for (const text of node.podCIDRs) if (insideAny(added, text)) reported?.delete(text);
      found.push(...this.#claimSafely(node));
    }
    for (const claim of this.#index.all()) this.#occupySafely(claim);
    for (const name of this.#waiting) this.#requeue(name);
    return found;
  }

  #occupySafely(claim: Claim): void {
    try {
      this.#allocator.occupy(claim.text);
    } catch (err) {
      // Out of every range (a pool was deleted under it): nothing here can hand it out anyway.
      this.#log.debug({ node: claim.node, cidr: claim.text, err }, 'claim is outside every range');
    }
  }

  #claimSafely(node: NodeInfo): ConflictKind[] {
    try {
      return this.#claim(node);
    } catch (err) {
      this.#log.error({ node: node.name, err }, 'could not occupy podCIDRs of node; leaving it as it is');
      return [];
    }
  }

  #firstHolderOrder(nodes: readonly NodeInfo[]): NodeInfo[] {
    return firstHolderOrder(nodes, this.#fieldManager);
  }

  /** In-flight reservations survive a rebuild while their node is still listed without podCIDRs. */
  #attemptsToKeep(nodes: readonly NodeInfo[]): Map<string, { uid: string; attempt: Attempt }> {
    const listed = new Map(nodes.map((n) => [n.name, n]));
    const kept = new Map<string, { uid: string; attempt: Attempt }>();
    for (const [name, record] of this.#records) {
      const node = listed.get(name);
      if (record.attempt && node?.uid === record.uid && node.podCIDRs.length === 0) {
        kept.set(name, { uid: record.uid, attempt: record.attempt });
      }
    }
    return kept;
  }

  #restoreAttempts(attempts: Map<string, { uid: string; attempt: Attempt }>): void {
    for (const [name, { uid, attempt }] of attempts) {
      // Some listed node now holds part of it: the attempt is void (its patch would be a duplicate).
      if (attempt.claims.some((c) => this.#index.overlapping(c.cidr).length > 0)) continue;
      for (const claim of attempt.claims) this.#index.add(claim);
      const record = this.#records.get(name) ?? new NodeRecord(uid);
      record.attempt = attempt;
      this.#records.set(name, record);
    }
  }

  /**
   * Carried allocations become attempts whose outcome is taken as unknown: the next sync of the node
   * sends the same patch again (a no-op where it landed), and a failure never frees the range. Not
   * for a node listed with podCIDRs (the list holds them) or listed under another uid (it is gone),
   * nor for one missing from a list at or past where it was seen (deleted; nothing would free it).
   * One missing from an older list was created after it: its events are still to come.
   */
  #restoreCarried(carried: readonly CarriedAllocation[], listedAt: string): void {
    for (const allocation of carried) {
      const listed = this.#lister.get(allocation.name);
      if (listed && (listed.uid !== allocation.uid || listed.podCIDRs.length > 0)) continue;
      if (!listed && allocation.seenAt !== undefined && isAtOrPast(listedAt, allocation.seenAt)) {
        this.#log.debug({ node: allocation.name, seenAt: allocation.seenAt, listedAt }, 'not carrying an allocation of a node deleted before the list');
        continue;
      }
      if (this.#records.get(allocation.name)?.attempt) continue;
      const claims = allocation.cidrs.map((text) => pendingClaim({ name: allocation.name, uid: allocation.uid }, text));
      const parsed = claims.filter((c): c is Claim => c !== undefined);
      const usable = (c: Claim): boolean => this.#index.overlapping(c.cidr).length === 0 && this.#clusterCIDRs.some((r) => overlaps(r, c.cidr));
      if (parsed.length !== claims.length || !parsed.every(usable)) {
        this.#log.warn({ node: allocation.name, podCIDRs: allocation.cidrs }, 'not carrying an allocation made before the list: its range is held or unknown here');
        continue;
      }
      for (const claim of parsed) {
        this.#allocator.occupy(claim.text);
        this.#index.add(claim);
      }
      const record = this.#records.get(allocation.name) ?? new NodeRecord(allocation.uid);
      record.attempt = { cidrs: allocation.cidrs, claims: parsed, uncertain: true };
      this.#records.set(allocation.name, record);
    }
  }

  /** Allocations with a patch out or of unknown outcome, to carry into another reconciler. */
  attempts(): CarriedAllocation[] {
    const out: CarriedAllocation[] = [];
    for (const [name, record] of this.#records) {
      if (record.attempt) out.push({ name, uid: record.uid, cidrs: record.attempt.cidrs });
    }
    return out;
  }

  // ---- sync ----------------------------------------------------------------------------------

  /**
   * Converges one node from the lister's cache. Throws to ask the work queue for a rate-limited
   * retry (exhaustion, failed or unknown patch outcome); never throws for bad existing podCIDRs.
   * The cache copy is read right before patching (no await in between): a node that got podCIDRs
   * meanwhile is adopted, not patched.
   */
  async sync(name: string): Promise<void> {
    if (!this.#rebuilt) throw new Error('sync before rebuild: existing podCIDRs are not occupied yet');
    const node = this.#lister.get(name);
    if (!node) return;
    const record = this.#recordForgettingEarlier(node);
    if (node.podCIDRs.length > 0) {
      this.#adopt(node);
      return;
    }
    // Still a node: its range stays until the delete (#127792), but a new one would be wasted.
    if (node.deletionTimestamp !== undefined) {
      this.#stopWaiting(name);
      this.#log.debug({ node: name }, 'node is being deleted; not allocating');
      return;
    }
    // Our patch landed and the watch has not shown it yet: a second one would only be refused.
    if (record.attempt === undefined && !isEmpty(record.claims)) return;
    await this.#assign(node);
  }

  /**
   * This incarnation's record, made if new. A record of another uid under the name means that node
   * is gone: it is forgotten first, and what it held released.
   */
  #recordForgettingEarlier(node: NodeInfo): NodeRecord {
    const known = this.#records.get(node.name);
    if (known?.uid === node.uid) return known;
    if (known) {
      this.#log.info({ node: node.name, uid: node.uid, oldUid: known.uid }, 'node was re-created; releasing what the old one held');
      this.#forget(node.name);
    }
    const record = new NodeRecord(node.uid);
    this.#records.set(node.name, record);
    return record;
  }

  /** The node carries podCIDRs (ours landed, or someone else's): hold them, end any reservation. */
  #adopt(node: NodeInfo): void {
    const record = this.#recordForgettingEarlier(node);
    const attempt = record.attempt;
    this.#stopWaiting(node.name);
    if (attempt && sameList(node.podCIDRs, attempt.cidrs)) {
      this.#confirm(node.name, attempt);
      return;
    }
    record.attempt = undefined;
    if (attempt) for (const claim of attempt.claims) this.#index.remove(claim);
    this.#claim(node);
    // Freed only where nothing (the node's own podCIDRs included) still covers them.
    if (attempt) this.#freeAll(attempt.claims);
  }

  /** Occupies and indexes a node's podCIDRs; returns the problems newly reported. Idempotent. */
  #claim(node: NodeInfo): ConflictKind[] {
    const record = this.#recordForgettingEarlier(node);
    const found: ConflictKind[] = [];
    for (const text of node.podCIDRs) {
      const known = find(record.claims, (c) => c.text === text);
      // Level-triggered like upstream: occupying again is free (only flipped bits count, #96416).
      if (known) {
        this.#allocator.occupy(text);
        known.text = text;
      }
      if (known || record.reported?.has(text)) continue;
      const kind = this.#claimOne(node, record, text);
      if (kind) found.push(kind);
    }
    return found;
  }

  #claimOne(node: NodeInfo, record: NodeRecord, text: string): ConflictKind | undefined {
    const outcome = claimPodCIDR(this.#index, this.#allocator, node, text);
    if ('claim' in outcome && outcome.claim) {
      record.claims = withItems(record.claims, [outcome.claim]);
      this.#log.debug({ node: node.name, cidr: text, state: outcome.claim.state }, 'occupied existing podCIDR');
    }
    if (outcome.kind === 'owned') return undefined;
    return this.#report(node, text, outcome.kind, outcome.detail);
  }

  #report(node: NodeInfo, cidr: string, problem: ConflictKind, detail: string): ConflictKind {
    const record = this.#recordForgettingEarlier(node);
    (record.reported ??= new Set()).add(cidr);
    this.#log.warn({ node: node.name, cidr, problem }, `podCIDR ${detail}; leaving the node as it is`);
    this.#events.emit(node, 'Warning', REASONS[problem], `podCIDR ${cidr} ${detail}`);
    this.#observer.conflict?.(problem);
    return problem;
  }

  // ---- allocation ----------------------------------------------------------------------------

  async #assign(node: NodeInfo): Promise<void> {
    const record = this.#recordForgettingEarlier(node);
    const attempt = record.attempt ?? this.#reserve(node, record);
    try {
      await this.#writer.patchPodCIDRs(node.name, attempt.cidrs);
    } catch (err) {
      await this.#patchFailed(node, attempt, err);
      return;
    }
    if (this.#isCurrent(node.name, attempt)) this.#confirm(node.name, attempt);
  }

  #reserve(node: NodeInfo, record: NodeRecord): Attempt {
    let cidrs: string[];
    try {
      cidrs = this.#allocator.allocate({ name: node.name, labels: node.labels ?? NO_LABELS });
    } catch (err) {
      if (err instanceof RangeExhaustedError || err instanceof NoPoolError) this.#exhausted(node, err);
      throw err;
    }
    const claims = cidrs.map((text): Claim => {
      const claim = pendingClaim(node, text);
      if (!claim) throw new Error(`allocator returned ${JSON.stringify(text)}, not a CIDR`);
      return claim;
    });
    for (const claim of claims) this.#index.add(claim);
    const attempt: Attempt = { cidrs, claims, uncertain: false };
    record.attempt = attempt;
    this.#stopWaiting(node.name);
    return attempt;
  }

  /** False once the node was deleted, re-created or rebuilt away while a request was out. */
  #isCurrent(name: string, attempt: Attempt): boolean {
    return this.#records.get(name)?.attempt === attempt;
  }

  #confirm(name: string, attempt: Attempt): void {
    const record = this.#records.get(name);
    if (record?.attempt !== attempt) return;
    record.attempt = undefined;
    for (const claim of attempt.claims) claim.state = 'owned';
    record.claims = withItems(record.claims, attempt.claims);
    this.#observer.allocated?.();
    this.#log.debug({ node: name, podCIDRs: attempt.cidrs }, 'assigned podCIDRs');
  }

  /** Ends an attempt whose CIDRs the node did not take; frees what nothing else covers. */
  #dropAttempt(name: string, attempt: Attempt): void {
    const record = this.#records.get(name);
    if (record?.attempt === attempt) record.attempt = undefined;
    for (const claim of attempt.claims) this.#index.remove(claim);
    this.#freeAll(attempt.claims);
  }

  async #patchFailed(node: NodeInfo, attempt: Attempt, err: unknown): Promise<void> {
    // The writer promises PatchErrors; anything else has an unknown outcome, like a timeout.
    const failure: PatchFailure = err instanceof PatchError ? err.failure : 'timeout';
    this.#observer.patchFailed?.(failure);
    if (!this.#isCurrent(node.name, attempt)) return;
    this.#log.debug({ node: node.name, podCIDRs: attempt.cidrs, failure, err }, 'podCIDRs patch failed');
    switch (failure) {
      case 'not-found':
        this.#dropAttempt(node.name, attempt);
        return;
      case 'failed':
        return this.#failed(node, attempt, err);
      case 'conflict':
        return this.#conflicted(node, attempt, err);
      case 'timeout':
        return this.#timedOut(node, attempt, err);
    }
  }

  #failed(node: NodeInfo, attempt: Attempt, err: unknown): never {
    // After a timeout an earlier write may still land, so the reservation outlives this failure.
    if (!attempt.uncertain) this.#dropAttempt(node.name, attempt);
    const note = `Node ${node.name} status is now: CIDRAssignmentFailed (patching podCIDRs ${attempt.cidrs.join(',')} failed)`;
    this.#events.emit(node, 'Warning', 'CIDRAssignmentFailed', note);
    throw err;
  }

  async #conflicted(node: NodeInfo, attempt: Attempt, err: unknown): Promise<void> {
    const outcome = await this.#settleWithServer(node, attempt);
    if (outcome === 'settled') return;
    // Refused, yet the node has no podCIDRs: our write did not happen; start over with new ones.
    if (!attempt.uncertain) this.#dropAttempt(node.name, attempt);
    throw err;
  }

  /**
   * The write may or may not have happened. Releasing now could hand the range to a second node
   * while the first still gets it (cloud-provider-azure#4556), so the CIDRs stay reserved and the
   * next sync patches the same ones again. At worst a restart reclaims them.
   */
  async #timedOut(node: NodeInfo, attempt: Attempt, err: unknown): Promise<void> {
    attempt.uncertain = true;
    const outcome = await this.#settleWithServer(node, attempt);
    if (outcome === 'settled') return;
    throw new PatchPendingError(node.name, attempt.cidrs, { cause: err });
  }

  /** Reads the node from the API server and settles the attempt against what it holds. */
  async #settleWithServer(node: NodeInfo, attempt: Attempt): Promise<'settled' | 'empty'> {
    let fresh: NodeInfo | undefined;
    try {
      fresh = await this.#writer.getNode(node.name);
    } catch (err) {
      // Cannot tell: keep the reservation; the next sync retries with the same CIDRs.
      if (this.#isCurrent(node.name, attempt)) attempt.uncertain = true;
      throw new PatchPendingError(node.name, attempt.cidrs, { cause: err });
    }
    if (!this.#isCurrent(node.name, attempt)) return 'settled';
    if (!fresh || fresh.uid !== node.uid) {
      this.#dropAttempt(node.name, attempt);
      return 'settled';
    }
    if (fresh.podCIDRs.length === 0) return 'empty';
    this.#adopt(fresh);
    return 'settled';
  }

  // ---- exhaustion ----------------------------------------------------------------------------

  #exhausted(node: NodeInfo, err: RangeExhaustedError | NoPoolError): void {
    if (!this.#waiting.has(node.name)) {
      const wait = err instanceof NoPoolError ? 'no pool can serve a node; it waits for a pool or a release' : 'cluster CIDR exhausted; nodes wait for a release';
      if (this.#waiting.size === 0) this.#log.info({ node: node.name, err: err.message }, wait);
      this.#waiting.add(node.name);
      this.#observer.waiting?.(this.#waiting.size);
      const note = `Node ${node.name} status is now: CIDRNotAvailable (${err.message})`;
      this.#events.emit(node, 'Warning', 'CIDRNotAvailable', note);
    }
    const retryAt = err.retryAt ?? this.#allocator.nextQuarantineExpiry();
    if (retryAt !== undefined) this.#requeueAt([node.name], retryAt);
  }

  #stopWaiting(name: string): void {
    if (this.#waiting.delete(name)) this.#observer.waiting?.(this.#waiting.size);
  }

  /** Space was freed: waiting nodes try again now, or when the quarantine lets it go. */
  #wakeWaiting(): void {
    if (this.#waiting.size === 0) return;
    const names = [...this.#waiting];
    const retryAt = this.#allocator.nextQuarantineExpiry();
    if (retryAt !== undefined) this.#requeueAt(names, retryAt);
    else for (const name of names) this.#requeue(name);
  }

  #requeueAt(names: readonly string[], at: number): void {
    const afterMs = Math.max(0, at - this.#clock.now());
    for (const name of names) this.#requeue(name, afterMs);
  }

  // ---- deletion ------------------------------------------------------------------------------

  /**
   * The node is gone from the API server (informer delete, or missing on relist). Releases what
   * this incarnation held; a range it shared with another live node stays occupied for that node.
   * An empty uid (a bare tombstone key) matches whatever incarnation we know. A delete of another
   * incarnation than ours releases ours too unless the cache still shows ours: a node deleted and
   * re-created within a watch gap never gets a delete of its own.
   */
  nodeDeleted(node: NodeInfo): void {
    const record = this.#records.get(node.name);
    if (!record) return;
    const stale = node.uid !== '' && node.uid !== record.uid && this.#lister.get(node.name)?.uid === record.uid;
    if (stale) {
      this.#log.debug({ node: node.name, uid: node.uid }, 'ignoring the delete of an earlier incarnation');
      return;
    }
    this.#forget(node.name);
  }

  #forget(name: string): void {
    const record = this.#records.get(name);
    if (!record) return;
    this.#records.delete(name);
    this.#stopWaiting(name);
    const claims = [...itemsOf(record.claims), ...(record.attempt?.claims ?? [])];
    for (const claim of claims) this.#index.remove(claim);
    this.#promoteAround(claims);
    const released = this.#freeAll(claims);
    this.#log.debug({ node: name, released }, 'released podCIDRs of deleted node');
  }

  /** Shadowed claims that no longer overlap another node's owned or pending one take the range over. */
  #promoteAround(removed: readonly Claim[]): void {
    for (const { cidr } of removed) {
      for (const claim of this.#index.overlapping(cidr)) {
        if (claim.state !== 'shadowed') continue;
        const blocked = this.#index
          .overlapping(claim.cidr)
          .some((o) => o.node !== claim.node && o.state !== 'shadowed');
        if (blocked) continue;
        claim.state = 'owned';
        this.#log.info({ node: claim.node, cidr: claim.text }, 'node now owns its podCIDR; the earlier holder is gone');
      }
    }
  }

  // ---- release -------------------------------------------------------------------------------

  /** Releases what of these claims no indexed claim still covers; wakes waiting nodes. */
  #freeAll(claims: readonly Claim[]): number {
    let released = 0;
    for (const claim of claims) released += this.#allocator.releaseUnheld(claim, this.#holdersOf);
    if (released > 0) {
      this.#observer.released?.(released);
      this.#wakeWaiting();
    }
    return released;
  }

  // ---- introspection -------------------------------------------------------------------------

  /** Nodes waiting for free space, in the order they started waiting. */
  waitingNodes(): string[] {
    return [...this.#waiting];
  }

  /**
   * True when this node (this uid) holds podCIDRs here, patched or with a patch out. While the
   * watch lags behind the patches, the cache still shows such a node without them.
   */
  assigned(node: { readonly name: string; readonly uid: string }): boolean {
    const record = this.#records.get(node.name);
    return record?.uid === node.uid && (!isEmpty(record.claims) || record.attempt !== undefined);
  }

  /** True when some node holds, or is being given, an address inside the CIDR; before the rebuild, unknown: true. */
  holds(cidr: Cidr): boolean {
    return !this.#rebuilt || this.#index.overlapping(cidr).length > 0;
  }

  /** The node owning exactly this range, if any (for `check` and tests). */
  ownerOf(cidrText: string): string | undefined {
    const cidr = tryParseCidr(cidrText);
    if (!cidr) return undefined;
    return this.#index.overlapping(cidr).find((c) => c.state === 'owned' && sameCidr(c.cidr, cidr))?.node;
  }

  /** Reserved CIDRs whose patch is still out or of unknown outcome, by node. */
  pendingReservations(): Map<string, readonly string[]> {
    return new Map(this.attempts().map((a) => [a.name, a.cidrs]));
  }
}

/** Same CIDRs in the same order, however each is spelled; the same text needs no parse. */
function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((text, i) => {
    if (text === b[i]) return true;
    const x = tryParseCidr(text);
    const y = tryParseCidr(b[i] ?? '');
    return x !== undefined && y !== undefined && sameCidr(x, y);
  });
}

function clusterCIDRsOf(allocator: Pick<PodCidrAllocator, 'ranges'>): Cidr[] {
  return allocator.ranges().map((r) => r.clusterCIDR);
}

function insideAny(ranges: readonly Cidr[], text: string): boolean {
  const cidr = tryParseCidr(text);
  return cidr !== undefined && ranges.some((r) => overlaps(r, cidr));
}
