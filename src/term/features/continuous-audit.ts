// The continuous audit while leading: the `check` command's findings over the Node cache, on a timer,
// as counts per kind and one Warning Event per new finding; and the conflicts gauge's source.

import type { Logger } from 'pino';
import type { RangeSpec } from '../../allocator/types.js';
import { ContinuousAudit, type ProblemKind } from '../../controller/audit.js';
import { auditProblems } from '../../controller/node-audit.js';
import { type ConflictKind, type EventSink, isConflictKind, type NodeLister } from '../../controller/ports.js';
import { type Clock, repeat } from '../../time.js';
import { CurrentTerm, type TermFeature, type TermHandle } from './feature.js';
import type { Cidr } from '../../cidr/index.js';

/** Without the timed audit, the conflicts gauge re-audits at most this often; scrapes come every 15-60 s. */
const AUDIT_MAX_AGE_MS = 15_000;

export interface AuditFeatureOptions {
  readonly lister: NodeLister;
  readonly events: EventSink;
  readonly log: Logger;
  readonly fieldManager: string;
  /** The ranges in force now (they grow when ranges are appended). */
  readonly ranges: () => readonly RangeSpec[];
  readonly reserved: readonly Cidr[];
  /** 0 turns the timed audit off; the conflicts gauge then audits on demand. */
  readonly intervalMs: number;
  readonly clock: Clock;
}

export class AuditFeature implements TermFeature {
  readonly #o: AuditFeatureOptions;
  readonly #audit: ContinuousAudit;
  readonly #term = new CurrentTerm();
  #onDemand: { at: number; conflicts: Partial<Record<ConflictKind, number>> } | undefined;

  constructor(options: AuditFeatureOptions) {
    this.#o = options;
    this.#audit = new ContinuousAudit({ events: options.events, log: options.log, fieldManager: options.fieldManager });
  }

  termStarted(term: TermHandle, signal: AbortSignal): void {
    this.#term.holdUntil(term, signal);
    this.#audit.reset();
    this.#onDemand = undefined;
    signal.addEventListener('abort', () => this.#audit.reset(), { once: true });
    if (this.#o.intervalMs > 0) repeat(this.#o.clock, this.#o.intervalMs, signal, () => this.auditNow());
  }

  /** One audit run over the cache (the timer calls it; tests may too). */
  auditNow(): void {
    const term = this.#term.get();
    if (term === undefined) return;
    try {
      const pools = term.allocator.pools?.() ?? [];
      this.#audit.run(this.#o.lister.list(), this.#o.ranges(), this.#o.reserved, (node) => term.inProgress(node), pools);
    } catch (err) {
      this.#o.log.error({ err }, 'audit failed');
    }
  }

  /** Findings of the last timed run per kind, every kind present; 0 on a standby. */
  counts(): Record<ProblemKind, number> {
    return this.#audit.counts();
  }

  /** Conflicts in the cache now, judged like `check` does; only the leader audits. */
  conflicts(): Partial<Record<ConflictKind, number>> {
    if (this.#term.get() === undefined) return {};
    // The timed audit already judged the cache (0.2 to 0.3 s for 50,000 nodes): no second pass per scrape.
    if (this.#o.intervalMs > 0) return this.#audit.conflicts();
    const now = this.#o.clock.now();
    if (this.#onDemand === undefined || now - this.#onDemand.at > AUDIT_MAX_AGE_MS) {
      this.#onDemand = { at: now, conflicts: this.#countConflicts() };
    }
    return this.#onDemand.conflicts;
  }

  #countConflicts(): Partial<Record<ConflictKind, number>> {
    const pools = this.#term.get()?.allocator.pools?.() ?? [];
    const report = auditProblems(this.#o.lister.list(), this.#o.ranges(), this.#o.reserved, { fieldManager: this.#o.fieldManager, pools });
    const conflicts: Partial<Record<ConflictKind, number>> = {};
    for (const { kind } of report.problems) {
      if (isConflictKind(kind)) conflicts[kind] = (conflicts[kind] ?? 0) + 1;
    }
    return conflicts;
  }
}
