// Durable release quarantine: released CIDRs and their release times (wall clock, ms) kept in the
// ConfigMap podcidr-allocator-state, so a new leader or a restarted process waits out --release-quarantine too.

import type { Logger } from 'pino';
import type { QuarantineEntry } from '../allocator/types.js';
import { tryParseCidr } from '../cidr/index.js';
import { ConfigMapConflictError, type ConfigMapStore } from './ports.js';

export const QUARANTINE_STATE_NAME = 'podcidr-allocator-state';
export const QUARANTINE_KEY = 'quarantine.json';
/** About 45 bytes per entry: well inside a ConfigMap's 1 MiB. The oldest are dropped first (they expire first). */
export const MAX_ENTRIES = 15_000;
/**
 * Replicas' clocks differ. Entries are read as if released this much later, so a reader whose clock
 * runs ahead of the writer's still waits out the full quarantine; a quarantine can only grow by it.
 */
export const CLOCK_SKEW_MARGIN_MS = 10_000;

interface Stored {
  readonly version: 1;
  /** [cidr, releasedAt ms since the epoch], oldest first. */
  readonly entries: readonly (readonly [string, number])[];
}

/** Bounded, oldest first, wall-clock times; entries already past the quarantine are left out. */
export function encodeQuarantine(entries: readonly QuarantineEntry[], now: number, quarantineMs: number): string {
  const live = entries
    .filter((e) => e.releasedAt + quarantineMs > now)
    .sort((a, b) => a.releasedAt - b.releasedAt)
    .slice(-MAX_ENTRIES);
  const stored: Stored = { version: 1, entries: live.map((e) => [e.cidr, Math.round(e.releasedAt)] as const) };
  return JSON.stringify(stored);
}

/** Whatever cannot be understood is skipped: a damaged state must never stop allocation. */
export function decodeQuarantine(text: string | undefined, marginMs = CLOCK_SKEW_MARGIN_MS): QuarantineEntry[] {
  if (text === undefined || text === '') return [];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return [];
  }
  if (typeof value !== 'object' || value === null || !('entries' in value) || !Array.isArray(value.entries)) return [];
  const entries: QuarantineEntry[] = [];
  for (const item of value.entries as unknown[]) {
    if (!Array.isArray(item)) continue;
    const [cidr, releasedAt] = item as unknown[];
    if (typeof cidr !== 'string' || tryParseCidr(cidr) === undefined) continue;
    if (typeof releasedAt !== 'number' || !Number.isFinite(releasedAt)) continue;
    entries.push({ cidr, releasedAt: releasedAt + marginMs });
  }
  return entries;
}

export interface QuarantinePersisterOptions {
  readonly store: ConfigMapStore;
  /** The allocator's live quarantine; its clock must be the wall clock (Date.now). */
  readonly quarantined: () => readonly QuarantineEntry[];
  readonly quarantineMs: number;
  readonly log: Logger;
  readonly now?: () => number;
}

/**
 * Writes the leader's quarantine when it changed; called on a timer, so releases are batched. Only
 * the leader writes; a write that lost a race (409) is retried at the next call from a fresh read.
 */
export class QuarantinePersister {
  readonly #o: QuarantinePersisterOptions;
  #written: string | undefined;
  #resourceVersion: string | undefined;
  #known = false;
  /**
   * Stored entries this term never seeded (its first read failed, so it allocates without them). They
   * are written back until they expire, so the next term honours them even though this one cannot.
   */
  #carried: QuarantineEntry[] = [];

  constructor(options: QuarantinePersisterOptions) {
    this.#o = options;
  }

  /** Reads the stored quarantine (margin added) and remembers its version for the next write. */
  async load(marginMs = CLOCK_SKEW_MARGIN_MS): Promise<QuarantineEntry[]> {
    const cm = await this.#o.store.read(QUARANTINE_STATE_NAME);
    this.#resourceVersion = cm?.resourceVersion;
    this.#known = true;
    this.#written = cm?.data[QUARANTINE_KEY];
    return decodeQuarantine(cm?.data[QUARANTINE_KEY], marginMs);
  }

  /** Writes if the quarantine changed since the last write; returns whether it wrote. Never throws. */
  async flush(): Promise<boolean> {
    const now = (this.#o.now ?? Date.now)();
    try {
      if (!this.#known) this.#carried = await this.load(0);
      const live = this.#o.quarantined();
      const known = new Set(live.map((e) => e.cidr));
      const entries = [...live, ...this.#carried.filter((e) => !known.has(e.cidr))];
      const text = encodeQuarantine(entries, now, this.#o.quarantineMs);
      if (text === this.#written) return false;
      this.#resourceVersion = await this.#o.store.write(QUARANTINE_STATE_NAME, { [QUARANTINE_KEY]: text }, this.#resourceVersion);
      this.#written = text;
      return true;
    } catch (err) {
      this.#known = false;
      const level = err instanceof ConfigMapConflictError ? 'debug' : 'warn';
      this.#o.log[level]({ err }, 'could not save the release quarantine; retrying');
      return false;
    }
  }
}
