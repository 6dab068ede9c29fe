// What an operator feature sees of a leadership term, and the one way it runs beside one.

import type { QuarantineEntry, RangeSpec, RangeUsage } from '../../allocator/types.js';
import type { Cidr } from '../../cidr/index.js';
import type { PoolDefinition } from '../../controller/pool-allocator.js';
import type { NodeInfo, NodeLister, RangeUsageInPool } from '../../controller/ports.js';
import type { AllocationController } from '../allocation-controller.js';

/** The parts of a leadership term the features use. */
export interface TermHandle {
  /** usage() lists a range once per pool that has it; pools() the ClusterCIDR pools served (none when absent). */
  readonly allocator: { usage(): RangeUsageInPool[]; quarantined(): QuarantineEntry[]; pools?(): readonly PoolDefinition[] };
  /** Adds ranges to the running allocator's --cluster-cidr pool and lets waiting nodes try them. */
  appendRanges(ranges: readonly RangeSpec[]): void;
  readonly pools: TermPools;
  /**
   * The node waits its turn in the work queue, is being synced, or was patched and the watch has
   * not shown it yet: its missing podCIDR is work, not a finding.
   */
  inProgress(node: { readonly name: string; readonly uid: string }): boolean;
}

/** The term's ClusterCIDR pools. */
export interface TermPools {
  /** Adds a pool: what nodes hold in it is occupied first, then waiting nodes try it. False when known. */
  add(pool: PoolDefinition): boolean;
  /** The pool hands out nothing new. */
  deleting(name: string): void;
  /** Forgets a pool whose object is gone. */
  remove(name: string): void;
  /** Some node holds, or is being given, addresses inside the CIDR. */
  holds(cidr: Cidr): boolean;
  usageOf(name: string): RangeUsage[];
}

/** Starts with a term and stops with it; only the leader runs its features. */
export interface TermFeature {
  /** The term runs: start timers, adopt what nodes carry. Whatever this starts ends when signal aborts. */
  termStarted(term: TermHandle, signal: AbortSignal): void;
  /** An informer add (before undefined) or update, leader or not. */
  nodeChanged?(before: NodeInfo | undefined, node: NodeInfo): void;
}

/**
 * A term's handle. Ranges added (appended, or a new pool) go into the running allocator; then the
 * cached nodes' podCIDRs inside them (out of range until now) and every claim held are occupied
 * before anything there is handed out, without a rebuild: a rebuild from the cache would free a
 * patch that landed before the watch showed it. The reconciler then requeues the nodes waiting for
 * space, so they allocate at once. Before the term's own rebuild this is harmless: that rebuild
 * starts from a fresh list anyway.
 */
export function termHandle(controller: AllocationController, lister: NodeLister): TermHandle {
  return {
    allocator: controller.allocator,
    appendRanges(ranges) {
      for (const range of ranges) controller.allocator.appendFlagRange(range);
      rangesAdded(controller, lister);
    },
    pools: {
      add(pool) {
        if (!controller.allocator.addPool(pool)) return false;
        rangesAdded(controller, lister);
        return true;
      },
      deleting: (name) => controller.allocator.setDeleting(name),
      remove: (name) => void controller.allocator.removePool(name),
      holds: (cidr) => controller.reconciler.holds(cidr),
      usageOf: (name) => controller.allocator.usageOf(name),
    },
    inProgress: (node) => controller.queue.pending(node.name) || controller.reconciler.assigned(node),
  };
}

function rangesAdded(controller: AllocationController, lister: NodeLister): void {
  controller.reconciler.rangesAdded(lister.list());
}

/** Runs each start; ends each with signal. */
export function startAll(features: readonly TermFeature[], term: TermHandle, signal: AbortSignal): void {
  for (const feature of features) feature.termStarted(term, signal);
}

/** The term a feature serves now: set when it starts, cleared when it ends. */
export class CurrentTerm {
  #term: TermHandle | undefined;

  get(): TermHandle | undefined {
    return this.#term;
  }

  holdUntil(term: TermHandle, signal: AbortSignal): void {
    this.#term = term;
    const end = (): void => {
      if (this.#term === term) this.#term = undefined;
    };
    signal.addEventListener('abort', end, { once: true });
  }
}
