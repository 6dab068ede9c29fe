// Time for everything that waits: one monotonic Clock (injected so tests drive it by hand), a
// cancellable sleep on it, and a token bucket that delays rather than drops. Imports nothing.


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

/** Resolves after ms on the given clock, or as soon as signal aborts; never rejects. */
export function wait(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return sleep(clock, ms, signal).catch(() => undefined);
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

/** Runs fn every ms on the given clock until signal aborts; the first run is ms from now. */
export function repeat(clock: Clock, ms: number, signal: AbortSignal, fn: () => void): void {
  if (signal.aborted) return;
  let cancel = clock.setTimer(tick, ms);
  function tick(): void {
    if (signal.aborted) return;
    cancel = clock.setTimer(tick, ms);
    fn();
  }
  signal.addEventListener('abort', () => cancel(), { once: true });
}
