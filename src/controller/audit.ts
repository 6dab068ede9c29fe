// Continuous audit: the `check` command's findings over the informer's cache, on a timer, as counts per
// kind and one Warning Event per new finding. It reads only; it never changes a node or the allocator.

import type { Logger } from 'pino';
import type { RangeSpec } from '../allocator/types.js';
import { auditProblems, problemKinds, type Problem, type ProblemKind } from './node-audit.js';
import type { PoolDefinition } from './pool-allocator.js';
import { type ConflictKind, conflictKinds, type EventSink, type NodeInfo } from './ports.js';
import type { Cidr } from '../cidr/index.js';

export type { ProblemKind };
export { problemKinds };

/** Conflict kinds keep the reconciler's reasons and notes, so the event sink folds both into one Event. */
const REASONS: Record<ProblemKind, string> = {
  malformed: 'PodCIDRMalformed',
  'out-of-range': 'PodCIDROutOfRange',
  duplicate: 'PodCIDRConflict',
  overlap: 'PodCIDRConflict',
  reserved: 'PodCIDRInReservedRange',
  'same-family': 'PodCIDRSameFamily',
  missing: 'PodCIDRMissing',
  'missing-family': 'PodCIDRFamilyMissing',
};

export interface ContinuousAuditOptions {
  readonly events: EventSink;
  readonly log: Logger;
  readonly fieldManager: string;
}

export interface AuditRun {
  /** Findings present now; `missing` only for nodes that were already without podCIDRs at the previous run. */
  readonly findings: readonly Problem[];
  /** Findings not present at the previous run; each got an Event. */
  readonly fresh: readonly Problem[];
}

export class ContinuousAudit {
  readonly #o: ContinuousAuditOptions;
  /** Keys of the findings of the last run. */
  #previous = new Set<string>();
  /** Nodes (name + uid) without podCIDRs at the last run: a node is "missing" only from the second run on. */
  #withoutPodCIDRs = new Set<string>();
  #counts = new Map<ProblemKind, number>();
  #runs = 0;

  constructor(options: ContinuousAuditOptions) {
    this.#o = options;
  }

  /**
   * Audits the nodes against the ranges in force. A node without podCIDRs is reported only when it
   * had none at the previous run too, i.e. for at least one audit interval: a node that has just
   * joined is the allocator's work, not a finding. Neither is one still queued behind a burst of
   * others, or already patched while the watch lags (inProgress): at --kube-api-qps 20, 5,000 new
   * nodes take four minutes to allocate, and an Event for each would spend the API budget the
   * patches need.
   */
  run(
    nodes: readonly NodeInfo[],
    ranges: readonly RangeSpec[],
    reserved: readonly Cidr[],
    inProgress: (node: NodeInfo) => boolean = () => false,
    pools: readonly PoolDefinition[] = [],
  ): AuditRun {
    if (ranges.length === 0 && pools.length === 0) return { findings: [], fresh: [] };
    const report = auditProblems(nodes, ranges, reserved, { fieldManager: this.#o.fieldManager, pools });
    const byName = nodesNamed(nodes, new Set(report.problems.map((p) => p.node)));
    const without = new Set(nodes.filter((n) => n.podCIDRs.length === 0).map(incarnation));
    const findings = report.problems.filter((p) => {
      if (p.kind !== 'missing') return true;
      const node = byName.get(p.node);
      return node !== undefined && this.#withoutPodCIDRs.has(incarnation(node)) && !inProgress(node);
    });
    this.#withoutPodCIDRs = without;
    const keys = new Set<string>();
    const fresh: Problem[] = [];
    for (const p of findings) {
      const key = findingKey(p);
      keys.add(key);
      if (this.#previous.has(key)) continue;
      fresh.push(p);
      const node = byName.get(p.node);
      if (node !== undefined) this.#o.events.emit(node, 'Warning', REASONS[p.kind], p.message);
    }
    this.#previous = keys;
    this.#counts = countKinds(findings);
    this.#runs += 1;
    if (fresh.length > 0) {
      this.#o.log.warn({ findings: findings.length, fresh: fresh.map((p) => `${p.node}: ${p.message}`).slice(0, 20) }, 'audit found new problems in node podCIDRs');
    }
    return { findings, fresh };
  }

  /** Findings of the last run per kind, every kind present (0 when none). */
  counts(): Record<ProblemKind, number> {
    const counts = {} as Record<ProblemKind, number>;
    for (const kind of problemKinds) counts[kind] = this.#counts.get(kind) ?? 0;
    return counts;
  }

  /** The conflict kinds only, for podcidr_allocator_conflicts (MetricsSources.conflicts). */
  conflicts(): Partial<Record<ConflictKind, number>> {
    const counts = this.counts();
    return Object.fromEntries(conflictKinds.map((k) => [k, counts[k]]));
  }

  runs(): number {
    return this.#runs;
  }

  /** A term ended: the next leader's first run starts afresh (and re-reports what is still wrong). */
  reset(): void {
    this.#previous = new Set();
    this.#withoutPodCIDRs = new Set();
    this.#counts = new Map();
  }
}

/** The nodes with these names, by name: only those findings name, not a map of every node. */
function nodesNamed(nodes: readonly NodeInfo[], names: ReadonlySet<string>): Map<string, NodeInfo> {
  const byName = new Map<string, NodeInfo>();
  for (const node of nodes) if (names.has(node.name)) byName.set(node.name, node);
  return byName;
}

function incarnation(node: NodeInfo): string {
  return `${node.name}\u0000${node.uid}`;
}

function findingKey(p: Problem): string {
  return `${p.kind}\u0000${p.node}\u0000${p.cidr ?? ''}\u0000${p.message}`;
}

function countKinds(findings: readonly Problem[]): Map<ProblemKind, number> {
  const counts = new Map<ProblemKind, number>();
  for (const p of findings) counts.set(p.kind, (counts.get(p.kind) ?? 0) + 1);
  return counts;
}
