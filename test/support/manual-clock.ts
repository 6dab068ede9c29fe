// One hand-driven clock for tests: the Clock of src/time.ts, and the elector's ElectorClock with
// its Sleep. Time moves only when a test moves it; in advance(), timers fire in due order with
// pending promise callbacks settled between them.

import type { ElectorClock, Sleep } from '../../src/leader/elector.js';
import type { Clock } from '../../src/time.js';

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

export class ManualClock implements Clock, ElectorClock {
  #now: number;
  #seq = 0;
  #timers: Timer[] = [];
  /** Wall clock at time 0 of this clock; tests shift it to model skew. */
  wallBase = Date.UTC(2025, 0, 1, 12, 0, 0);
  /** Every sleep() requested, in ms, in order. */
  readonly sleeps: number[] = [];

  /** Starts at `start` ms. */
  constructor(start = 0) {
    this.#now = start;
  }

  /** Bound, so that `clock.now` can be handed on wherever a `() => number` is wanted. */
  readonly now = (): number => this.#now;

  wallNow(): Date {
    return new Date(this.wallBase + this.#now);
  }

  setTimer(fn: () => void, ms: number): () => void {
    const timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.push(timer);
    return () => {
      this.#timers = this.#timers.filter((t) => t !== timer);
    };
  }

  /** The elector's Sleep: resolves after ms on this clock, or at once when the signal aborts. */
  readonly sleep: Sleep = (ms, signal) =>
    new Promise<void>((resolve) => {
      this.sleeps.push(ms);
      if (signal.aborted) {
        resolve();
        return;
      }
      const onAbort = (): void => {
        cancel();
        resolve();
      };
      const cancel = this.setTimer(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });

  /** Timers not yet fired. */
  pending(): number {
    return this.#timers.length;
  }

  /** Moves time forward by ms, firing due timers in order and letting async work settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await settle();
    for (;;) {
      const next = this.#next();
      if (next === undefined || next.at > end) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
      await settle();
    }
    this.#now = end;
    await settle();
  }

  /** advance() to an absolute time. */
  async advanceTo(at: number): Promise<void> {
    await this.advance(at - this.#now);
  }

  /** Time passes but no timer fires: a stalled event loop, or a clock read on its own. */
  jump(ms: number): void {
    this.#now += ms;
  }

  /** jump() to an absolute time, earlier ones included (a clock stepped back). */
  jumpTo(at: number): void {
    this.#now = at;
  }

  #next(): Timer | undefined {
    let best: Timer | undefined;
    for (const t of this.#timers) {
      if (best === undefined || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  }
}

/** Lets every queued promise callback run: each macrotask turn drains the microtask queue. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
