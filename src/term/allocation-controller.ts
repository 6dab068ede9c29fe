// One leadership term of the allocator: a fresh allocator rebuilt from the node cache once a list
// started after the Lease was acquired backs it, a work queue and its workers. All it takes in from
// before the list is what this leader's own fast start allocated, held until the list confirms it
// (docs/decisions/0001); nothing an old leader remembered is ever taken to be free.

import type { Logger } from 'pino';
import type { AllocatorObserver, QuarantineEntry, RangeSpec, TakenSubnets } from '../allocator/types.js';
import { Reconciler, type CarriedAllocation, type RebuildSummary } from '../controller/reconciler.js';
import {
  type EventSink,
  type FreshNodeLister,
  type NodeInfo,
  type NodeWriter,
  type ReconcilerObserver,
  type WorkQueueObserver,
} from '../controller/ports.js';
import { WorkQueue, runWorkers } from '../controller/workqueue.js';
import { PoolAllocator, type PoolDefinition } from '../controller/pool-allocator.js';
import type { Cidr } from '../cidr/index.js';

/** What a term and a fast start allocate with alike: flags, the patch writer, Events, metrics. */
export type AllocatingOptions = Pick<
  AllocationControllerOptions,
  'reserved' | 'quarantineMs' | 'writer' | 'events' | 'logger' | 'workers' | 'fieldManager' | 'reconcilerObserver' | 'onSynced'
>;

export interface AllocationControllerOptions {
  /** --cluster-cidr and appended ranges: the pool that serves every node last; may be empty. */
  readonly ranges: readonly RangeSpec[];
  /** ClusterCIDR pools known at the start of the term. */
  readonly pools?: readonly PoolDefinition[];
  /** Of those, the ones being deleted: they hand out nothing new. */
  readonly deletingPools?: readonly string[];
  readonly reserved: readonly Cidr[];
  readonly quarantineMs: number;
  /** Quarantine entries from before this term (durable quarantine), on the same clock as now(). */
  readonly quarantined?: readonly QuarantineEntry[];
  /** Subnets taken before anything is listed (a handoff's): in use for the whole term. */
  readonly taken?: readonly TakenSubnets[];
  /** Allocations made before this term's list (a fast start's), held for their nodes at the rebuild. */
  readonly carried?: readonly CarriedAllocation[];
  /** The informer's cache: the term is rebuilt from it and the reconciler converges each node from it. */
  readonly lister: FreshNodeLister;
  /**
   * When the term began, after the Lease was acquired, on the lister's clock. A list started later
   * holds every podCIDR an earlier leader wrote, so the rebuild waits for the cache to rest on one.
   */
  readonly termStart: number;
  readonly writer: NodeWriter;
  readonly events: EventSink;
  readonly logger: Logger;
  readonly workers: number;
  readonly fieldManager: string;
  readonly now?: () => number;
  /** Each pool's observer, by the pool's name (FLAG_POOL for the flags'). */
  readonly allocatorObserver?: (pool: string) => AllocatorObserver;
  readonly reconcilerObserver?: ReconcilerObserver;
  readonly queueObserver?: WorkQueueObserver;
  /** One sync of one node took this long, failed or not. */
  readonly onSynced?: (seconds: number) => void;
  readonly announceRebuild?: boolean;
}

export class AllocationController {
  readonly allocator: PoolAllocator;
  readonly reconciler: Reconciler;
  readonly queue: WorkQueue;
  readonly #o: AllocationControllerOptions;
  readonly #log: Logger;
  #started = false;

  constructor(options: AllocationControllerOptions, signal: AbortSignal) {
    this.#o = options;
    this.#log = options.logger;
    const now = options.now ?? Date.now;
    this.allocator = new PoolAllocator({
      flagRanges: options.ranges,
      pools: options.pools,
      reserved: options.reserved,
      quarantineMs: options.quarantineMs,
      now,
      observer: options.allocatorObserver,
    });
    for (const name of options.deletingPools ?? []) this.allocator.setDeleting(name);
    const flags = this.allocator.flagPool();
    for (const taken of options.taken ?? []) flags?.markTaken(taken);
    if (options.quarantined) this.allocator.seedQuarantine(options.quarantined);
    this.queue = new WorkQueue({ observer: options.queueObserver });
    this.reconciler = new Reconciler({
      allocator: this.allocator,
      lister: options.lister,
      writer: gatedWriter(options.writer, signal),
      events: options.events,
      logger: options.logger.child({ component: 'reconciler' }),
      clock: { now },
      observer: options.reconcilerObserver,
      requeue: (name, afterMs) => (afterMs ? this.queue.addAfter(name, afterMs) : this.queue.add(name)),
      fieldManager: options.fieldManager,
      announceRebuild: options.announceRebuild,
    });
  }

  /**
   * Rebuilds from the cache once a list started after termStart backs it, then converges every
   * node until signal aborts. Resolves once the workers have finished what they held; the queue
   * drops what was still waiting. Resolves undefined when signal aborts before the rebuild.
   */
  async run(signal: AbortSignal): Promise<RebuildSummary | undefined> {
    if (signal.aborted) return undefined;
    if (!(await this.#o.lister.listedAfter(this.#o.termStart, signal))) return undefined;
    // No await from the snapshot to #started: every informer event is either in the snapshot or
    // reaches this term through nodeChanged/nodeDeleted, including deletes.
    const nodes = this.#o.lister.list();
    const summary = this.reconciler.rebuild(nodes, this.#o.carried, this.#o.lister.lastSyncResourceVersion());
    this.#started = true;
    // The rebuild has already occupied what listed nodes carry; syncing them again would only
    // queue a node that joins now behind all of them (50,000 at a large restart). A node whose carried
    // patch landed waits for the watch event that shows it, rather than being patched again.
    const landed = new Set(this.#o.carried?.filter((c) => c.landed).map((c) => c.name));
    for (const node of nodes) if (node.podCIDRs.length === 0 && !landed.has(node.name)) this.queue.add(node.name);
    const stop = (): void => this.queue.shutDown();
    signal.addEventListener('abort', stop, { once: true });
    if (signal.aborted) stop();
    const log = this.#log.child({ component: 'workqueue' });
    await runWorkers(this.queue, this.#o.workers, (name) => this.#sync(name), { log });
    return summary;
  }

  async #sync(name: string): Promise<void> {
    const started = performance.now();
    try {
      await this.reconciler.sync(name);
    } finally {
      this.#o.onSynced?.((performance.now() - started) / 1000);
    }
  }

  /** Informer add/update: level-triggered, so the key is enough. */
  nodeChanged(node: NodeInfo): void {
    if (this.#started) this.queue.add(node.name);
  }

  /** Informer delete (watch or relist); releases what the node held. */
  nodeDeleted(node: NodeInfo): void {
    if (this.#started) this.reconciler.nodeDeleted(node);
  }
}

/** Thrown instead of writing once the term has ended; the reconciler keeps the CIDRs reserved. */
export class TermEndedError extends Error {
  constructor(node: string) {
    super(`leadership term ended; no request sent for node ${node}`);
    this.name = 'TermEndedError';
  }
}

/**
 * No request may start once the term has ended: a deposed leader's late write could hand out a
 * range another leader already gave away. A request already on the wire is cut by process exit.
 */
function gatedWriter(writer: NodeWriter, signal: AbortSignal): NodeWriter {
  return {
    patchPodCIDRs: async (name, podCIDRs) => {
      if (signal.aborted) throw new TermEndedError(name);
      await writer.patchPodCIDRs(name, podCIDRs);
    },
    getNode: async (name) => {
      if (signal.aborted) throw new TermEndedError(name);
      return writer.getNode(name);
    },
  };
}
