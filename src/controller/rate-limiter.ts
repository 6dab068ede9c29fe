// Rate limiters with client-go semantics: per-key exponential backoff, a shared token bucket, and
// their max-combination; time comes from an injected Clock so tests are exact.

import { type Clock, systemClock, TokenBucket } from '../time.js';

/** Decides how long a key waits before it is retried (client-go's workqueue.RateLimiter). */
export interface RateLimiter<K> {
  /** Records one more failure of key and returns the delay in milliseconds. */
  when(key: K): number;
  /** Clears the key's failure history (after success, or when the key is abandoned). */
  forget(key: K): void;
  numRequeues(key: K): number;
}

/** Per-key exponential backoff: base × 2^failures, capped at max. */
export class ItemExponentialRateLimiter<K> implements RateLimiter<K> {
  readonly #failures = new Map<K, number>();

  constructor(
    readonly baseMs: number,
    readonly maxMs: number,
  ) {
    if (!(baseMs > 0) || !(maxMs >= baseMs)) {
      throw new RangeError(`backoff needs 0 < base <= max, got base ${baseMs} ms, max ${maxMs} ms`);
    }
  }

  when(key: K): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    // 2^1100 is Infinity; min() then yields max, so large failure counts cannot overflow.
    return Math.min(this.maxMs, this.baseMs * 2 ** failures);
  }

  forget(key: K): void {
    this.#failures.delete(key);
  }

  numRequeues(key: K): number {
    return this.#failures.get(key) ?? 0;
  }
}

/** An overall limit shared by all keys: every retry spends a token. */
export class BucketRateLimiter<K> implements RateLimiter<K> {
  constructor(readonly bucket: TokenBucket) {}

  when(_key: K): number {
    return this.bucket.reserve();
  }

  forget(_key: K): void {}

  numRequeues(_key: K): number {
    return 0;
  }
}

/** The longest delay of several limiters; every limiter sees every failure. */
export class MaxOfRateLimiter<K> implements RateLimiter<K> {
  readonly #limiters: readonly RateLimiter<K>[];

  constructor(...limiters: RateLimiter<K>[]) {
    this.#limiters = limiters;
  }

  when(key: K): number {
    let delay = 0;
    for (const limiter of this.#limiters) delay = Math.max(delay, limiter.when(key));
    return delay;
  }

  forget(key: K): void {
    for (const limiter of this.#limiters) limiter.forget(key);
  }

  numRequeues(key: K): number {
    let n = 0;
    for (const limiter of this.#limiters) n = Math.max(n, limiter.numRequeues(key));
    return n;
  }
}

/** client-go's DefaultControllerRateLimiter: 5 ms → 1000 s per key, combined with 10 qps / burst 100 overall. */
export function defaultControllerRateLimiter<K>(clock: Clock = systemClock): RateLimiter<K> {
  return new MaxOfRateLimiter<K>(
    new ItemExponentialRateLimiter<K>(5, 1_000_000),
    new BucketRateLimiter<K>(new TokenBucket(10, 100, clock)),
  );
}
