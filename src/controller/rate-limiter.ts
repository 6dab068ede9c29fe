// Rate limiters with client-go semantics: a token bucket that delays rather than drops, per-key
// exponential backoff, and their max-combination; time comes from an injected Clock so tests are exact.

/** Monotonic milliseconds and cancellable timers; injected so tests can drive time by hand. */
export interface Clock {
  now(): number;
  /** Runs fn after ms; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

/**
 * The process clock. It looks up setTimeout at call time (not at import) so that test fake
 * timers installed later still govern it.
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

/** Resolves after ms on the given clock, or rejects with the signal's reason when it aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      cancel();
      reject(abortReason(signal));
    };
    const cancel = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortReason(signal: AbortSignal | undefined): unknown {
  return signal?.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

/**
 * A token bucket like golang.org/x/time/rate: `burst` tokens, refilled at `qps` per second.
 * A reservation always succeeds; when the bucket is empty the caller is told how long to wait, so
 * callers are delayed, never dropped. Tokens may go negative: that debt is the queue of waiters.
 */
export class TokenBucket {
  readonly #clock: Clock;
  readonly #qps: number;
  readonly #burst: number;
  #tokens: number;
  #last: number;

  constructor(qps: number, burst: number, clock: Clock = systemClock) {
    if (!(qps > 0)) throw new RangeError(`token bucket qps must be > 0, got ${qps}`);
    if (!Number.isInteger(burst) || burst < 1) {
      throw new RangeError(`token bucket burst must be an integer >= 1, got ${burst}`);
    }
    this.#qps = qps;
    this.#burst = burst;
    this.#clock = clock;
    this.#tokens = burst;
    this.#last = clock.now();
  }

  /** Takes one token now and returns how many milliseconds the caller must wait before acting. */
  reserve(): number {
    this.#refill();
    this.#tokens -= 1;
    if (this.#tokens >= 0) return 0;
    return (-this.#tokens / this.#qps) * 1000;
  }

  /** Waits for a token. An abort while waiting keeps the token spent (a slightly slower bucket, never a faster one). */
  async take(signal?: AbortSignal): Promise<void> {
    await sleep(this.#clock, this.reserve(), signal);
  }

  /** Tokens available right now (negative when callers are queued); for tests and metrics. */
  available(): number {
    this.#refill();
    return this.#tokens;
  }

  #refill(): void {
    const now = this.#clock.now();
    const elapsed = now - this.#last;
    // Skipping zero elapsed time also avoids 0 × Infinity = NaN for an unlimited qps.
    if (!(elapsed > 0)) return;
    this.#last = now;
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed / 1000) * this.#qps);
  }
}

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
