// A de-duplicating work queue of keys with client-go semantics, plus the worker loop that drains it.
// A key is handed to at most one worker at a time; a key added while being processed runs again after done().

import type { Logger } from 'pino';
import { type Clock, systemClock } from '../time.js';
import { type RateLimiter, defaultControllerRateLimiter } from './rate-limiter.js';
import type { WorkQueueObserver } from './ports.js';

export interface WorkQueueOptions {
  clock?: Clock;
  rateLimiter?: RateLimiter<string>;
  observer?: WorkQueueObserver;
}

/** FIFO of keys; pops are O(1) amortised so 50,000 queued nodes stay cheap. */
class Fifo {
  #items: (string | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(key: string): void {
    this.#items.push(key);
  }

  shift(): string | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const key = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head += 1;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return key;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

export class WorkQueue {
  readonly #clock: Clock;
  readonly #limiter: RateLimiter<string>;
  readonly #observer: WorkQueueObserver;
  readonly #queue = new Fifo();
  /** Keys that need processing: queued, or added again while a worker holds them. */
  readonly #dirty = new Set<string>();
  /** Keys a worker holds, with the time it took them. */
  readonly #processing = new Map<string, number>();
  /** When each queued key entered the queue, for latency. */
  readonly #queuedAt = new Map<string, number>();
  /** addAfter keys waiting for their timer; only the earliest ready time is kept. */
  readonly #delayed = new Map<string, { readyAt: number; cancel: () => void }>();
  readonly #waiters: ((key: string | undefined) => void)[] = [];
  #shuttingDown = false;
  #draining = false;
  #drained: Promise<void> | undefined;
  #resolveDrained: (() => void) | undefined;

  constructor(options: WorkQueueOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#limiter = options.rateLimiter ?? defaultControllerRateLimiter(this.#clock);
    this.#observer = options.observer ?? {};
  }

  /** Queues key unless it is already queued; a key being processed is queued again after done(). */
  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    this.#observer.onAdd?.();
    this.#queuedAt.set(key, this.#clock.now());
    if (this.#processing.has(key)) return;
    this.#enqueue(key);
  }

  /** True while key waits in the queue or a worker holds it (not while it waits out an addAfter delay). */
  pending(key: string): boolean {
    return this.#dirty.has(key) || this.#processing.has(key);
  }

  /** Adds key after ms; if key is already waiting, the earlier of the two times wins. */
  addAfter(key: string, ms: number): void {
    if (this.#shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const readyAt = this.#clock.now() + ms;
    const waiting = this.#delayed.get(key);
    if (waiting !== undefined) {
      if (waiting.readyAt <= readyAt) return;
      waiting.cancel();
    }
    const cancel = this.#clock.setTimer(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, ms);
    this.#delayed.set(key, { readyAt, cancel });
  }

  /** Re-queues key after its rate-limited backoff (per-key exponential, max'ed with the overall bucket). */
  addRateLimited(key: string): void {
    if (this.#shuttingDown) return;
    this.#observer.onRetry?.();
    this.addAfter(key, this.#limiter.when(key));
  }

  /** Clears key's failure history; call after it was processed successfully. */
  forget(key: string): void {
    this.#limiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.#limiter.numRequeues(key);
  }

  /** Keys waiting for a worker (not counting keys being processed or delayed). */
  len(): number {
    return this.#queue.length;
  }

  isShuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /**
   * The next key, marked as processing until done(key); waits while the queue is empty.
   * Resolves undefined once the queue is shut down (after draining, for shutDownWithDrain).
   */
  get(): Promise<string | undefined> {
    const key = this.#shuttingDown && !this.#draining ? undefined : this.#queue.shift();
    if (key !== undefined) {
      this.#observer.onDepth?.(this.#queue.length);
      this.#startProcessing(key);
      return Promise.resolve(key);
    }
    if (this.#shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Marks key as finished; if it was added meanwhile, it is queued again now. */
  done(key: string): void {
    const startedAt = this.#processing.get(key);
    if (startedAt === undefined) return;
    this.#processing.delete(key);
    this.#observer.onWorkDuration?.((this.#clock.now() - startedAt) / 1000);
    if (this.#dirty.has(key) && !(this.#shuttingDown && !this.#draining)) this.#enqueue(key);
    this.#checkDrained();
  }

  /**
   * Stops the queue at once: new adds are ignored, queued and delayed keys are dropped, and
   * waiting workers get undefined. Keys being processed finish normally.
   */
  shutDown(): void {
    this.#stopAccepting();
    this.#draining = false;
    this.#queue.clear();
    this.#dirty.clear();
    this.#queuedAt.clear();
    this.#observer.onDepth?.(0);
    this.#checkDrained();
  }

  /**
   * Stops accepting keys but lets workers take what is already queued; resolves once the queue is
   * empty and no key is being processed. Delayed keys are dropped.
   */
  shutDownWithDrain(): Promise<void> {
    if (this.#drained !== undefined) return this.#drained;
    this.#stopAccepting();
    this.#draining = true;
    this.#drained = new Promise<void>((resolve) => {
      this.#resolveDrained = resolve;
    });
    this.#checkDrained();
    return this.#drained;
  }

  #stopAccepting(): void {
    this.#shuttingDown = true;
    for (const waiting of this.#delayed.values()) waiting.cancel();
    this.#delayed.clear();
  }

  #enqueue(key: string): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      this.#startProcessing(key);
      waiter(key);
      return;
    }
    this.#queue.push(key);
    this.#observer.onDepth?.(this.#queue.length);
  }

  #startProcessing(key: string): void {
    const now = this.#clock.now();
    this.#dirty.delete(key);
    this.#processing.set(key, now);
    const queuedAt = this.#queuedAt.get(key);
    this.#queuedAt.delete(key);
    if (queuedAt !== undefined) this.#observer.onQueueLatency?.((now - queuedAt) / 1000);
  }

  #wakeAll(): void {
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
  }

  #checkDrained(): void {
    if (!this.#shuttingDown || this.#queue.length > 0) return;
    this.#wakeAll();
    if (this.#processing.size === 0) {
      this.#resolveDrained?.();
      this.#resolveDrained = undefined;
    }
  }
}

export type KeyHandler = (key: string) => void | Promise<void>;

export interface RunWorkersOptions {
  log?: Logger;
}

/**
 * Runs n workers until the queue shuts down. A key whose handler fails is re-queued with backoff;
 * a key whose handler succeeds has its failure history forgotten. Resolves when every worker exited.
 */
export async function runWorkers(
  queue: WorkQueue,
  n: number,
  handler: KeyHandler,
  options: RunWorkersOptions = {},
): Promise<void> {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`worker count must be an integer >= 1, got ${n}`);
  const workers: Promise<void>[] = [];
  for (let i = 0; i < n; i++) workers.push(runWorker(queue, handler, options.log));
  await Promise.all(workers);
}

async function runWorker(queue: WorkQueue, handler: KeyHandler, log: Logger | undefined): Promise<void> {
  for (let key = await queue.get(); key !== undefined; key = await queue.get()) {
    try {
      await handler(key);
      queue.forget(key);
    } catch (err) {
      queue.addRateLimited(key);
      log?.warn({ key, requeues: queue.numRequeues(key), error: describeError(err) }, 'sync failed; requeued');
    } finally {
      queue.done(key);
    }
  }
}

/**
 * The first line of the message only: the Kubernetes client's ApiException puts the response body
 * and headers on the following lines.
 */
function describeError(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return text.split('\n', 1)[0] ?? text;
}
