// The durable release quarantine: loaded before a term's first allocation, written on a timer while
// leading and once more at a graceful end, so a CIDR released by one leader is not reused early by the next.

import type { Logger } from 'pino';
import type { QuarantineEntry } from '../../allocator/types.js';
import type { ConfigMapStore } from '../../controller/ports.js';
import { QuarantinePersister } from '../../controller/quarantine-store.js';
import { type Clock, repeat, sleep } from '../../time.js';
import { CurrentTerm, type TermFeature, type TermHandle } from './feature.js';

/** Between attempts to read the stored quarantine at a term's start. */
const LOAD_RETRY_MS = 1000;

export interface DurableQuarantineOptions {
  readonly store: ConfigMapStore;
  readonly log: Logger;
  readonly quarantineMs: number;
  /** How often a changed quarantine is written. */
  readonly flushMs: number;
  /** How long a new term keeps trying to read the stored quarantine before it allocates without it. */
  readonly loadTimeoutMs: number;
  /** Times the retries and flushes; release times themselves are the allocator's wall clock. */
  readonly clock: Clock;
  /** The wall clock the allocator stamps releases with; default Date.now. */
  readonly wallNow?: () => number;
}

export class DurableQuarantine implements TermFeature {
  readonly #o: DurableQuarantineOptions;
  readonly #term = new CurrentTerm();
  readonly #persister: QuarantinePersister;

  constructor(options: DurableQuarantineOptions) {
    this.#o = options;
    this.#persister = this.#persisterOf(() => this.#term.get()?.allocator.quarantined() ?? []);
  }

  /** Before a term's first allocation: the stored quarantine to seed, or none after loadTimeoutMs. */
  async load(signal: AbortSignal): Promise<QuarantineEntry[]> {
    const deadline = this.#o.clock.now() + this.#o.loadTimeoutMs;
    for (;;) {
      try {
        const entries = await this.#persister.load();
        this.#o.log.info({ entries: entries.length }, 'loaded the stored release quarantine');
        return entries;
      } catch (err) {
        if (signal.aborted || this.#o.clock.now() >= deadline) {
          this.#o.log.warn({ err }, 'could not load the stored release quarantine; CIDRs released before this term may be reused early');
          return [];
        }
        this.#o.log.debug({ err }, 'could not load the stored release quarantine; retrying');
        await sleep(this.#o.clock, LOAD_RETRY_MS);
      }
    }
  }

  termStarted(term: TermHandle, signal: AbortSignal): void {
    this.#term.holdUntil(term, signal);
    repeat(this.#o.clock, this.#o.flushMs, signal, () => void this.#persister.flush());
  }

  /** At the end of a graceful term, whose handle the timers have let go: writes what it released since. */
  async flush(term: TermHandle): Promise<void> {
    await this.#persisterOf(() => term.allocator.quarantined()).flush();
  }

  #persisterOf(quarantined: () => readonly QuarantineEntry[]): QuarantinePersister {
    const { store, quarantineMs, log, wallNow } = this.#o;
    return new QuarantinePersister({ store, quarantined, quarantineMs, log, now: wallNow });
  }
}
