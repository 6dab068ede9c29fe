// ClusterCIDR pools: watched leader or not, so a new term starts with every pool; added to the running
// term as they come; kept by our finalizer until no node holds addresses in them; their use written to status.

import type { Logger } from 'pino';
import { CLUSTER_CIDR_API_VERSION, POOL_FINALIZER, poolOf, poolStatus, sameStatus } from '../../controller/cluster-cidr.js';
import { poolRanges, type PoolDefinition } from '../../controller/pool-allocator.js';
import type { ClusterCIDRObject, ClusterCIDRStatus, ClusterCIDRStore, ObjectEventSink } from '../../controller/ports.js';
import { repeat, type Clock } from '../../time.js';
import { CurrentTerm, type TermFeature, type TermHandle } from './feature.js';

export interface PoolsOptions {
  readonly store: ClusterCIDRStore;
  /** Where a leader tells of a ClusterCIDR it cannot serve. */
  readonly events: ObjectEventSink;
  readonly log: Logger;
  readonly clock: Clock;
  /** Wall-clock time for conditions' lastTransitionTime; default Date.now. */
  readonly wallNow?: () => number;
  /** How often finalizers are looked after; default 1 s. */
  readonly tickMs?: number;
  /** The least time between two status writes of one pool; default 10 s. */
  readonly statusMs?: number;
  /** Fill at which a pool's NearlyFull condition turns True; default 0.8. */
  readonly nearlyFull?: number;
}

/** The pools of a term's start: the valid ones, and which of them are being deleted. */
export interface PoolSet {
  readonly pools: readonly PoolDefinition[];
  readonly deleting: readonly string[];
}

export class Pools implements TermFeature {
  readonly #o: PoolsOptions;
  readonly #objects = new Map<string, ClusterCIDRObject>();
  readonly #term = new CurrentTerm();
  /** Names of the pools the current term serves. */
  #served = new Set<string>();
  /** Problems last logged per object, so a resync does not repeat them. */
  readonly #reported = new Map<string, string>();
  /** The status last written per pool (none yet when the write failed) and when it was tried. */
  readonly #status = new Map<string, { readonly status?: ClusterCIDRStatus; readonly at: number }>();
  #listed = false;
  readonly #firstList: Promise<void>;
  #onFirstList: () => void = () => {};
  #busy = false;

  constructor(options: PoolsOptions) {
    this.#o = options;
    this.#firstList = new Promise((resolve) => (this.#onFirstList = resolve));
  }

  /** Watches ClusterCIDRs until signal aborts. */
  watch(signal: AbortSignal): Promise<void> {
    return this.#o.store.watch(
      {
        listed: (objects) => this.#listedAll(objects),
        changed: (object) => this.#changed(object),
        deleted: (name) => this.#deleted(name),
      },
      signal,
    );
  }

  /** Before a term's first allocation: the first list is in (none is no pools), or signal aborted. */
  async prepare(signal: AbortSignal): Promise<void> {
    if (this.#listed || signal.aborted) return;
    await new Promise<void>((resolve) => {
      signal.addEventListener('abort', () => resolve(), { once: true });
      void this.#firstList.then(resolve);
    });
  }

  /** The pools to start a term with; make the term right after, with no await between. */
  current(): PoolSet {
    const pools: PoolDefinition[] = [];
    const deleting: string[] = [];
    for (const object of this.#objects.values()) {
      const pool = this.#read(object);
      if (pool === undefined) continue;
      pools.push(pool);
      if (object.deletionTimestamp !== undefined) deleting.push(pool.name);
    }
    return { pools, deleting };
  }

  termStarted(term: TermHandle, signal: AbortSignal): void {
    this.#term.holdUntil(term, signal);
    this.#served = new Set();
    this.#status.clear();
    this.#syncAll(term);
    repeat(this.#o.clock, this.#o.tickMs ?? 1000, signal, () => void this.#tick(term, signal));
  }

  #listedAll(objects: readonly ClusterCIDRObject[]): void {
    const names = new Set(objects.map((o) => o.name));
    for (const name of [...this.#objects.keys()]) if (!names.has(name)) this.#deleted(name);
    for (const object of objects) this.#objects.set(object.name, object);
    const term = this.#term.get();
    if (term) this.#syncAll(term);
    else for (const object of objects) this.#read(object);
    if (!this.#listed) {
      this.#listed = true;
      this.#onFirstList();
    }
  }

  #changed(object: ClusterCIDRObject): void {
    this.#objects.set(object.name, object);
    const term = this.#term.get();
    if (term) this.#sync(term, object);
    else this.#read(object);
  }

  #deleted(name: string): void {
    this.#objects.delete(name);
    this.#reported.delete(name);
    const term = this.#term.get();
    if (term && this.#served.delete(name)) {
      term.pools.remove(name);
      this.#o.log.info({ pool: name }, 'ClusterCIDR gone; pool forgotten');
    }
  }

  #syncAll(term: TermHandle): void {
    for (const object of this.#objects.values()) this.#sync(term, object);
  }

  #sync(term: TermHandle, object: ClusterCIDRObject): void {
    const pool = this.#read(object);
    if (pool === undefined) return;
    if (!this.#served.has(pool.name)) {
      this.#served.add(pool.name);
      try {
        if (term.pools.add(pool)) this.#o.log.info({ pool: pool.name, ranges: poolRanges(pool) }, 'serving ClusterCIDR pool');
      } catch (err) {
        this.#served.delete(pool.name);
        this.#report(object, [err instanceof Error ? err.message : String(err)]);
        return;
      }
    }
    this.#reported.delete(pool.name);
    if (object.deletionTimestamp !== undefined) term.pools.deleting(pool.name);
  }

  /** The object's pool, or undefined after logging (once) why it cannot be one. */
  #read(object: ClusterCIDRObject): PoolDefinition | undefined {
    const reading = poolOf(object);
    if ('pool' in reading) return reading.pool;
    this.#report(object, reading.problems);
    return undefined;
  }

  /** Logged once per text, leader or not; the leader also records an Event (the sink spaces repeats). */
  #report(object: ClusterCIDRObject, problems: readonly string[]): void {
    const text = problems.join('; ');
    if (this.#reported.get(object.name) !== text) {
      this.#reported.set(object.name, text);
      this.#o.log.warn({ pool: object.name, problems }, 'ClusterCIDR cannot be served; leaving it out');
    }
    if (this.#term.get() === undefined) return;
    const regarding = { kind: 'ClusterCIDR', apiVersion: CLUSTER_CIDR_API_VERSION, name: object.name, uid: object.uid, clusterScoped: true };
    this.#o.events.emit(regarding, 'Warning', 'ClusterCIDRInvalid', `cannot be served, left out: ${text}`);
  }

  /** ClusterCIDRs that cannot be served now (bad spec, or ranges that cannot be carved). */
  invalid(): number {
    let count = 0;
    for (const name of this.#reported.keys()) if (this.#objects.has(name)) count += 1;
    return count;
  }

  /** Finalizers first (a deleting pool waits on them), then status where it is due and changed. */
  async #tick(term: TermHandle, signal: AbortSignal): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      for (const object of [...this.#objects.values()]) {
        if (signal.aborted) return;
        await this.#keepFinalizer(term, object, signal);
        if (this.#served.has(object.name)) await this.#writeStatus(term, object, signal);
      }
    } finally {
      this.#busy = false;
    }
  }

  /** Ours on every pool; taken off a deleting one once no node holds an address in its ranges. */
  async #keepFinalizer(term: TermHandle, object: ClusterCIDRObject, signal: AbortSignal): Promise<void> {
    const has = object.finalizers.includes(POOL_FINALIZER);
    let finalizers: readonly string[] | undefined;
    if (object.deletionTimestamp === undefined && !has) finalizers = [...object.finalizers, POOL_FINALIZER];
    if (object.deletionTimestamp !== undefined && has && !this.#holds(term, object)) {
      finalizers = object.finalizers.filter((f) => f !== POOL_FINALIZER);
    }
    if (finalizers === undefined) return;
    try {
      await this.#o.store.setFinalizers(object.name, object.resourceVersion, finalizers, signal);
      const verb = has ? 'removed our finalizer: no node holds addresses in it' : 'added our finalizer';
      this.#o.log.info({ pool: object.name }, `ClusterCIDR ${verb}`);
    } catch (err) {
      // A changed object comes back through the watch; the next tick tries with it.
      this.#o.log.debug({ pool: object.name, err }, 'could not update the finalizers of a ClusterCIDR');
    }
  }

  /** Whether a node holds addresses in the object's ranges; a pool that cannot be read holds nothing of ours. */
  #holds(term: TermHandle, object: ClusterCIDRObject): boolean {
    const pool = this.#read(object);
    return pool !== undefined && poolRanges(pool).some((r) => term.pools.holds(r.clusterCIDR));
  }

  async #writeStatus(term: TermHandle, object: ClusterCIDRObject, signal: AbortSignal): Promise<void> {
    const now = this.#o.clock.now();
    const last = this.#status.get(object.name);
    if (last !== undefined && now - last.at < (this.#o.statusMs ?? 10_000)) return;
    const usage = term.pools.usageOf(object.name);
    if (usage.length === 0) return;
    const status = poolStatus(object.generation, usage, last?.status?.conditions ?? [], this.#o.nearlyFull ?? 0.8, new Date((this.#o.wallNow ?? Date.now)()));
    if (sameStatus(last?.status, status)) return;
    try {
      await this.#o.store.writeStatus(object.name, status, signal);
      this.#status.set(object.name, { status, at: now });
    } catch (err) {
      this.#status.set(object.name, { status: last?.status, at: now });
      this.#o.log.debug({ pool: object.name, err }, 'could not write the status of a ClusterCIDR');
    }
  }
}
