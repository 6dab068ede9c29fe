// The handoff kept fresh while a term runs, so the leader after a crash (SIGKILL, OOM, a lost node),
// which writes no last handoff, still starts from one (docs/decisions/0005). A refresh only ever
// replaces one handoff with another that over-states what was taken at its own resourceVersion.

import type { Clock } from '../time.js';
import { repeat } from '../time.js';
import type { Handoff } from './handoff.js';

export interface HandoffRefreshOptions {
  /** Between two refreshes; 0 never refreshes. */
  readonly intervalMs: number;
  readonly clock: Clock;
  /** The cache's resourceVersion now: read first, since taking a handoff walks every cached node. */
  readonly resourceVersion: () => string;
  /**
   * The handoff as of now, read in one synchronous step (cache and resourceVersion together);
   * undefined when there is none to give (the cache has no resourceVersion yet).
   */
  readonly take: () => Handoff | undefined;
  /** Stores it; never throws. */
  readonly write: (handoff: Handoff) => Promise<boolean>;
}

export class HandoffRefresh {
  readonly #o: HandoffRefreshOptions;
  /** The resourceVersion last stored, or being stored. */
  #written = '';
  #inFlight: Promise<void> = Promise.resolve();
  #busy = false;

  constructor(options: HandoffRefreshOptions) {
    this.#o = options;
  }

  /** Refreshes every interval until signal aborts. */
  start(signal: AbortSignal): void {
    if (this.#o.intervalMs <= 0) return;
    repeat(this.#o.clock, this.#o.intervalMs, signal, () => this.refresh());
  }

  /**
   * Writes the handoff unless one is being written or the cache has not moved since the last one:
   * a handoff at the same resourceVersion says no less, since everything after it is still to be
   * watched from there.
   */
  refresh(): void {
    if (this.#busy || this.#o.resourceVersion() === this.#written) return;
    const handoff = this.#o.take();
    if (handoff === undefined) return;
    this.#busy = true;
    const previous = this.#written;
    this.#written = handoff.resourceVersion;
    this.#inFlight = this.#o.write(handoff).then((ok) => {
      if (!ok) this.#written = previous;
      this.#busy = false;
    });
  }

  /** Resolves when no write is in flight, so a last handoff written next is not overwritten by an older one. */
  settled(): Promise<void> {
    return this.#inFlight;
  }
}
