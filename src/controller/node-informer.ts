// A slim, self-restarting Node reflector: paginated list, then watch with bookmarks, into a map of NodeInfo.
// It never stops on its own: every failure is retried with jittered backoff, 410 Gone relists, and a watchdog ends silent watches.
// It knows when the list behind its cache was started, and relists on request for a caller that needs a newer one.

import type { Logger } from 'pino';
import { nodeInfoChanged, sameList } from './node-info.js';
import { type Clock, sleep, systemClock } from '../time.js';
import {
  type FreshNodeLister,
  type NodeInfo,
  type NodeInformerObserver,
  type NodePage,
  type NodeSource,
  type NodeWatchEventType,
  type NodeWatchHandlers,
  ResourceExpiredError,
} from './ports.js';

/** The watch delivered neither events nor bookmarks for too long. */
export class WatchStalledError extends Error {
  constructor(readonly quietMs: number) {
    super(`node watch silent for ${Math.round(quietMs / 1000)}s`);
    this.name = 'WatchStalledError';
  }
}

/** Handlers run inside the informer; they should only enqueue. A throwing handler is logged, not fatal. */
export interface NodeEventHandlers {
  add?(node: NodeInfo): void;
  update?(oldNode: NodeInfo, newNode: NodeInfo): void;
  /** node is the last state known: the deleted object, or the cached one when a relist found it gone. */
  delete?(node: NodeInfo): void;
}

export interface NodeInformerOptions {
  source: NodeSource;
  log: Logger;
  clock?: Clock;
  /** Returns a number in [0, 1); injected for deterministic tests. */
  random?: () => number;
  observer?: NodeInformerObserver;
  /** Page size of the list. */
  pageSize?: number;
  /** Server-side watch timeout is randomised in [min, 2 × min) like client-go; default 300 s. */
  minWatchTimeoutSeconds?: number;
  /** Restart a watch that delivered nothing (not even a bookmark) for this long; default 5 min. */
  watchdogMs?: number;
  /** Backoff between failed attempts: doubles from initial to max, plus up to jitter × delay. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  backoffJitter?: number;
  /** A watch that lived this long resets the backoff. */
  healthyAfterMs?: number;
}

/** How one watch ended when it did not fail; undefined when the informer was stopped. */
type WatchEnd = 'closed' | 'too-soon' | 'relist' | undefined;

/** A caller of listedAfter, waiting for a list started after `after`. */
interface FreshnessWaiter {
  readonly after: number;
  wake(fresh: boolean): void;
}

/**
 * The Node cache. Start it, wait for sync, then read it through NodeLister. Objects in the cache
 * are frozen-by-contract NodeInfo values: callers must not mutate them.
 */
export class NodeInformer implements FreshNodeLister {
  readonly #source: NodeSource;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #observer: NodeInformerObserver;
  readonly #pageSize: number;
  readonly #minWatchTimeoutSeconds: number;
  readonly #watchdogMs: number;
  readonly #initialBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #backoffJitter: number;
  readonly #healthyAfterMs: number;

  #nodes = new Map<string, NodeInfo>();
  readonly #handlers: NodeEventHandlers[] = [];
  #resourceVersion = '';
  #synced = false;
  readonly #syncWaiters: (() => void)[] = [];
  /**
   * When (by #clock) the list now behind the cache was started; undefined before the first. Watch
   * events keep the cache current after it, so the cache holds at least what that list would.
   */
  #listStartedAt: number | undefined;
  /** Callers of listedAfter; each is removed as soon as it is woken, so any left here want a newer list. */
  readonly #freshnessWaiters = new Set<FreshnessWaiter>();
  /** Ends the open watch (if any) so the loop lists again. */
  #endWatchForRelist: (() => void) | undefined;
  #failures = 0;
  #stop: AbortController | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: NodeInformerOptions) {
    this.#source = options.source;
    this.#log = options.log;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#observer = options.observer ?? {};
    this.#pageSize = options.pageSize ?? 500;
    this.#minWatchTimeoutSeconds = options.minWatchTimeoutSeconds ?? 300;
    this.#watchdogMs = options.watchdogMs ?? 5 * 60_000;
    this.#initialBackoffMs = options.initialBackoffMs ?? 800;
    this.#maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.#backoffJitter = options.backoffJitter ?? 0.2;
    this.#healthyAfterMs = options.healthyAfterMs ?? 2 * 60_000;
    if (!(this.#pageSize >= 1)) throw new RangeError(`pageSize must be >= 1, got ${this.#pageSize}`);
    if (!(this.#watchdogMs > 0)) throw new RangeError(`watchdogMs must be > 0, got ${this.#watchdogMs}`);
    if (!(this.#initialBackoffMs > 0 && this.#maxBackoffMs >= this.#initialBackoffMs)) {
      throw new RangeError('backoff needs 0 < initialBackoffMs <= maxBackoffMs');
    }
  }

  /** Registers handlers; register before start() to see the initial adds. */
  addHandlers(handlers: NodeEventHandlers): void {
    this.#handlers.push(handlers);
  }

  /** Starts listing and watching in the background; it runs until stop(). */
  start(): void {
    if (this.#loop !== undefined) return;
    const stop = new AbortController();
    this.#stop = stop;
    this.#loop = this.#run(stop.signal);
  }

  /** Stops the watch without triggering a restart and waits for the loop to end. */
  async stop(): Promise<void> {
    this.#stop?.abort(new Error('informer stopped'));
    await this.#loop;
    for (const wake of this.#syncWaiters.splice(0)) wake();
    for (const waiter of [...this.#freshnessWaiters]) waiter.wake(false);
  }

  hasSynced(): boolean {
    return this.#synced;
  }

  /** Resolves true once the first full list is in the cache; false if signal aborts or the informer stops first. */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.#synced) return Promise.resolve(true);
    if (signal?.aborted || this.#stop?.signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const wake = (): void => {
        signal?.removeEventListener('abort', wake);
        resolve(this.#synced);
      };
      signal?.addEventListener('abort', wake, { once: true });
      this.#syncWaiters.push(wake);
    });
  }

  /**
   * Resolves true once the cache is backed by a full list started after `after`, a time already
   * read from this informer's clock: at once when the current list is that recent, else after a
   * relist that this call forces by ending the watch. A failing list is retried with the usual
   * backoff. Resolves false if signal aborts or the informer stops first. Handlers see the relist's
   * differences as usual. Rejects with a RangeError for a time still to come (another clock's).
   */
  listedAfter(after: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#listStartedAfter(after)) return Promise.resolve(true);
    if (!(after <= this.#clock.now())) {
      return Promise.reject(new RangeError(`listedAfter needs a time already past on the informer's clock, got ${after}`));
    }
    if (signal?.aborted || this.#stop?.signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter: FreshnessWaiter = {
        after,
        wake: (fresh) => {
          signal?.removeEventListener('abort', onAbort);
          this.#freshnessWaiters.delete(waiter);
          resolve(fresh);
        },
      };
      const onAbort = (): void => waiter.wake(false);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#freshnessWaiters.add(waiter);
      this.#endWatchForRelist?.();
    });
  }

  /** The cache is the cluster at the last list, event or bookmark: the resourceVersion a watch goes on from. */
  lastSyncResourceVersion(): string {
    return this.#resourceVersion;
  }

  get(name: string): NodeInfo | undefined {
    return this.#nodes.get(name);
  }

  list(): NodeInfo[] {
    return [...this.#nodes.values()];
  }

  size(): number {
    return this.#nodes.size;
  }

  async #run(signal: AbortSignal): Promise<void> {
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList || this.#freshnessWaiters.size > 0) {
          if (!needList) await this.#passFreshnessTimes(signal);
          if (signal.aborted) break;
          needList = true;
          await this.#relist(signal);
          needList = false;
          // A caller may have asked, while this list ran, for one started later still.
          continue;
        }
        const restart = await this.#watchOnce(signal);
        if (restart === 'relist') {
          this.#log.info({ resourceVersion: this.#resourceVersion }, 'node watch ended for a newer list; relisting');
        } else if (restart !== undefined) {
          this.#observer.onWatchRestart?.('closed');
          this.#log.debug({ resourceVersion: this.#resourceVersion }, 'node watch closed; reconnecting');
          if (restart === 'too-soon') await this.#backoff(signal, 'node watch closed at once');
        }
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof ResourceExpiredError) {
          this.#observer.onWatchRestart?.('expired');
          this.#log.info({ resourceVersion: this.#resourceVersion }, 'node watch expired (410); relisting');
          needList = true;
          continue;
        }
        this.#observer.onWatchRestart?.(err instanceof WatchStalledError ? 'stalled' : 'error');
        await this.#backoff(signal, needList ? 'node list failed' : 'node watch failed', err);
      }
    }
  }

  async #backoff(signal: AbortSignal, what: string, err?: unknown): Promise<void> {
    const base = Math.min(this.#maxBackoffMs, this.#initialBackoffMs * 2 ** this.#failures);
    const delayMs = Math.round(base * (1 + this.#backoffJitter * this.#random()));
    this.#failures += 1;
    this.#log.warn({ error: describe(err), attempt: this.#failures, delayMs }, `${what}; retrying`);
    await sleep(this.#clock, delayMs, signal).catch(() => undefined);
  }

  /** Lists every page, then swaps the cache and emits the differences (including deletes missed meanwhile). */
  async #relist(signal: AbortSignal): Promise<void> {
    const started = this.#clock.now();
    const fresh = new Map<string, NodeInfo>();
    let page: NodePage | undefined;
    let continueToken: string | undefined;
    do {
      try {
        page = await this.#source.list({ limit: this.#pageSize, continueToken, signal });
      } catch (err) {
        // An expired continue token means the snapshot is gone: start a fresh list at once.
        if (err instanceof ResourceExpiredError && continueToken !== undefined) {
          fresh.clear();
          continueToken = undefined;
          page = undefined;
          continue;
        }
        throw err;
      }
      for (const node of page.nodes) fresh.set(node.name, node);
      continueToken = page.continueToken;
    } while (continueToken !== undefined || page === undefined);
    if (signal.aborted) return;
    this.#replace(fresh, page.resourceVersion);
    this.#listStartedAt = started;
    this.#observer.onList?.(fresh.size, (this.#clock.now() - started) / 1000);
    this.#log.debug({ nodes: fresh.size, resourceVersion: page.resourceVersion }, 'listed nodes');
    if (!this.#synced) {
      this.#synced = true;
      this.#log.info({ nodes: fresh.size }, 'node cache synced');
      for (const wake of this.#syncWaiters.splice(0)) wake();
    }
    for (const waiter of [...this.#freshnessWaiters]) {
      if (this.#listStartedAfter(waiter.after)) waiter.wake(true);
    }
  }

  /**
   * A list started at a time a waiter asked for would not satisfy it: wait for the clock to pass
   * every such time (at most a tick, as they were past when asked) instead of relisting in a loop.
   */
  async #passFreshnessTimes(signal: AbortSignal): Promise<void> {
    let latest = -Infinity;
    for (const waiter of this.#freshnessWaiters) latest = Math.max(latest, waiter.after);
    const now = this.#clock.now();
    if (now <= latest) await sleep(this.#clock, latest - now + 1, signal).catch(() => undefined);
  }

  /** Strictly after: a list started at the very instant `after` was read may have been sent before it. */
  #listStartedAfter(after: number): boolean {
    return this.#listStartedAt !== undefined && this.#listStartedAt > after;
  }

  #replace(fresh: Map<string, NodeInfo>, resourceVersion: string): void {
    const old = this.#nodes;
    for (const [name, node] of fresh) fresh.set(name, sharingWith(old.get(name), node));
    this.#nodes = fresh;
    this.#resourceVersion = resourceVersion;
    for (const [name, before] of old) {
      if (!fresh.has(name)) this.#emitDelete(before);
    }
    for (const node of fresh.values()) this.#emitChange(old.get(node.name), node);
  }

  /**
   * One watch from the current resourceVersion. Resolves on a clean close ('too-soon' when it
   * closed at once with nothing delivered, which is backed off like a failure; 'relist' when
   * listedAfter ended it); rejects on error.
   */
  #watchOnce(stopSignal: AbortSignal): Promise<WatchEnd> {
    const attempt = new AbortController();
    const started = this.#clock.now();
    let lastActivity = started;
    let delivered = 0;
    let cancelWatchdog: (() => void) | undefined;

    return new Promise<WatchEnd>((resolve, reject) => {
      let finished = false;
      const finish = (err?: unknown, relist = false): void => {
        if (finished) return;
        finished = true;
        cancelWatchdog?.();
        stopSignal.removeEventListener('abort', onStop);
        if (this.#endWatchForRelist === endForRelist) this.#endWatchForRelist = undefined;
        attempt.abort(err ?? stopSignal.reason ?? new Error(relist ? 'watch ended for a relist' : 'watch closed'));
        const lived = this.#clock.now() - started;
        if (lived >= this.#healthyAfterMs) this.#failures = 0;
        if (stopSignal.aborted) resolve(undefined);
        else if (relist) resolve('relist');
        else if (err !== undefined) reject(err);
        else resolve(delivered === 0 && lived < 1000 ? 'too-soon' : 'closed');
      };
      const endForRelist = (): void => finish(undefined, true);
      this.#endWatchForRelist = endForRelist;
      const armWatchdog = (ms: number): void => {
        cancelWatchdog = this.#clock.setTimer(() => {
          const quiet = this.#clock.now() - lastActivity;
          if (quiet >= this.#watchdogMs) finish(new WatchStalledError(quiet));
          else armWatchdog(this.#watchdogMs - quiet);
        }, ms);
      };
      armWatchdog(this.#watchdogMs);
      // Stopping ends the attempt here, whether or not the source reports its aborted stream.
      const onStop = (): void => finish();
      stopSignal.addEventListener('abort', onStop, { once: true });
      if (stopSignal.aborted) finish();

      const handlers: NodeWatchHandlers = {
        onEvent: (type, node) => {
          if (finished) return;
          lastActivity = this.#clock.now();
          delivered += 1;
          this.#apply(type, node);
        },
        onBookmark: (resourceVersion) => {
          if (finished) return;
          lastActivity = this.#clock.now();
          delivered += 1;
          if (resourceVersion !== '') this.#resourceVersion = resourceVersion;
        },
        onClose: (err) => finish(err),
      };
      const timeoutSeconds = Math.floor(this.#minWatchTimeoutSeconds * (1 + this.#random()));
      this.#source
        .watch({ resourceVersion: this.#resourceVersion, timeoutSeconds, signal: attempt.signal }, handlers)
        .catch((err: unknown) => finish(err ?? new Error('watch failed')));
    });
  }

  #apply(type: NodeWatchEventType, node: NodeInfo): void {
    if (node.resourceVersion !== '') this.#resourceVersion = node.resourceVersion;
    const before = this.#nodes.get(node.name);
    if (type === 'DELETED') {
      this.#nodes.delete(node.name);
      this.#emitDelete(node);
      return;
    }
    const kept = sharingWith(before, node);
    this.#nodes.set(node.name, kept);
    this.#emitChange(before, kept);
  }

  /** A changed uid under the same name is a different Node: the old one is reported deleted first. */
  #emitChange(before: NodeInfo | undefined, after: NodeInfo): void {
    if (before === undefined) {
      this.#emit('add', (h) => h.add?.(after));
    } else if (before.uid !== after.uid) {
      this.#emitDelete(before);
      this.#emit('add', (h) => h.add?.(after));
    } else if (nodeInfoChanged(before, after)) {
      this.#emit('update', (h) => h.update?.(before, after));
    }
  }

  #emitDelete(node: NodeInfo): void {
    this.#emit('delete', (h) => h.delete?.(node));
  }

  #emit(kind: string, call: (h: NodeEventHandlers) => void): void {
    for (const handlers of this.#handlers) {
      try {
        call(handlers);
      } catch (err) {
        this.#log.error({ error: describe(err), event: kind }, 'node event handler threw; continuing');
      }
    }
  }
}

/**
 * `after`, holding `before`'s strings and arrays where they are equal: the reconciler keeps the
 * ones it first saw, so without this every update would leave two copies of a node's name, uid
 * and podCIDRs in memory.
 */
function sharingWith(before: NodeInfo | undefined, after: NodeInfo): NodeInfo {
  if (before === undefined || before.uid !== after.uid) return after;
  if (!nodeInfoChanged(before, after)) {
    return before.resourceVersion === after.resourceVersion ? before : { ...before, resourceVersion: after.resourceVersion };
  }
  const podCIDRs = sameList(before.podCIDRs, after.podCIDRs) ? before.podCIDRs : after.podCIDRs;
  return { ...after, name: before.name, uid: before.uid, podCIDRs };
}

function describe(err: unknown): string | undefined {
  if (err === undefined) return undefined;
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return text.split('\n', 1)[0];
}
