// Leading, one term after another. A term waits until the Node cache rests on a list started after
// the Lease was won, serving new Nodes from the last term's handoff meanwhile (docs/decisions/0001);
// then it runs the allocation controller and the operator features until the term ends, and a
// graceful end writes the handoff for the next leader. Informer events fan out from here.

import type { Logger } from 'pino';
import type { AllocatorObserver, QuarantineEntry, RangeSpec } from '../allocator/types.js';
import type { NodeInformer } from '../controller/node-informer.js';
import type { ConfigMapStore, NodeInfo, NodeSource, RangeUsageInPool, WorkQueueObserver } from '../controller/ports.js';
import type { CarriedAllocation } from '../controller/reconciler.js';
import type { Clock } from '../time.js';
import { AllocationController, type AllocatingOptions } from './allocation-controller.js';
import { FastStart } from './fast-start.js';
import { startAll, termHandle, type TermHandle } from './features/feature.js';
import { prepareTerm, type Features } from './features/index.js';
import { handoffRanges, noFastStart, readHandoff, takeHandoff, writeHandoff, type Handoff } from './handoff.js';
import { HandoffRefresh } from './handoff-refresh.js';

/** A graceful stop waits this long at most for the handoff to be written. */
const HANDOFF_WRITE_MS = 3_000;

export interface TermRunnerOptions {
  /** The Node cache; started by the first term or the first failed attempt, whichever comes first. */
  readonly informer: NodeInformer;
  /** Where a fast start watches Nodes from the handoff's resourceVersion. */
  readonly source: NodeSource;
  /** Where the handoff is read and written. */
  readonly handoffs: ConfigMapStore;
  readonly features: Features;
  /** --cluster-cidr as parsed: a handoff is used only when its ranges start with these. */
  readonly flagRanges: readonly RangeSpec[];
  readonly allocating: AllocatingOptions;
  /** --handoff-interval: how often a running term rewrites its handoff; 0 only at a graceful end. */
  readonly handoffIntervalMs: number;
  readonly allocatorObserver?: (pool: string) => AllocatorObserver;
  readonly queueObserver?: WorkQueueObserver;
  /** The informer's clock: a term's start is read from it, so it compares with the list times. */
  readonly clock: Clock;
  readonly logger: Logger;
  /** Ends the process: a term that fails is a bug, and the pod restarts from the cluster's state. */
  readonly exit: (code: number) => never;
}

export class TermRunner {
  readonly #o: TermRunnerOptions;
  readonly #log: Logger;
  /** The controller of the current term, if leading. */
  #term: AllocationController | undefined;
  /** Allocating from the last term's handoff while this term's list comes in. */
  #fast: FastStart | undefined;
  /** Set at the first stop signal: a term ending then may still write its last state. */
  #stopping = false;

  constructor(options: TermRunnerOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'run' });
    options.informer.addHandlers({
      add: (node) => this.#nodeChanged(undefined, node),
      update: (before, node) => this.#nodeChanged(before, node),
      delete: (node) => this.#term?.nodeDeleted(node),
    });
  }

  /** Leading, or serving from a handoff on the way to it. */
  leading(): boolean {
    return this.#term !== undefined || this.#fast !== undefined;
  }

  /** The running term's ranges; none while no term runs. */
  usage(): RangeUsageInPool[] {
    return this.#term?.allocator.usage() ?? [];
  }

  /** The process is stopping: a term that ends from now on writes its quarantine and handoff. */
  stopping(): void {
    this.#stopping = true;
  }

  /**
   * A standby's first attempt found the Lease held (or failed): it lists now, so its cache is warm
   * when it takes over. A replica that acquired at once leaves the first list to lead instead.
   */
  firstAttemptConcluded(acquired: boolean): void {
    if (!acquired) this.#o.informer.start();
  }

  /**
   * One leadership term, until signal aborts. On a cold start (and without leader election) the
   * informer starts here, after termStart, so its first list serves the term as well: one list, not two.
   */
  async lead(signal: AbortSignal): Promise<void> {
    this.#log.info('started leading');
    const { informer, features } = this.#o;
    const termStart = this.#o.clock.now();
    informer.start();
    this.#fast = await this.#startFast(signal);
    const listed = await informer.listedAfter(termStart, signal);
    const carried = await this.#finishFast(listed);
    if (!listed) return;
    const quarantined = await prepareTerm(features, signal);
    if (signal.aborted) return;
    // No await from here to startAll: a range appended meanwhile reaches the term either way.
    const term = this.#newTerm(signal, quarantined, termStart, carried);
    const handle = termHandle(term, informer);
    startAll(features.all, handle, signal);
    this.#term = term;
    const refresh = this.#refreshHandoff(term, signal);
    try {
      await term.run(signal);
    } catch (err) {
      if (signal.aborted) return;
      this.#log.fatal({ err }, 'allocation stopped unexpectedly');
      this.#o.exit(1);
    } finally {
      if (this.#term === term) this.#term = undefined;
      await refresh.settled();
      // Still holding the Lease until it is released; after a loss the process exits instead.
      if (this.#stopping) await this.#writeLastState(term, handle);
    }
  }

  /** Rewrites the handoff while the term runs: the next leader has one even if this process is killed. */
  #refreshHandoff(term: AllocationController, signal: AbortSignal): HandoffRefresh {
    const log = this.#o.logger.child({ component: 'handoff' });
    const refresh = new HandoffRefresh({
      intervalMs: this.#o.handoffIntervalMs,
      clock: this.#o.clock,
      resourceVersion: () => this.#o.informer.lastSyncResourceVersion(),
      take: () => this.#handoffOf(term),
      write: (handoff) => {
        const bounded = AbortSignal.any([signal, AbortSignal.timeout(HANDOFF_WRITE_MS)]);
        return writeHandoff(this.#o.handoffs, handoff, log, bounded, true);
      },
    });
    refresh.start(signal);
    return refresh;
  }

  /** Starts allocating from the stored handoff, when there is one that fits the ranges. */
  async #startFast(signal: AbortSignal): Promise<FastStart | undefined> {
    const log = this.#o.logger.child({ component: 'fast-start' });
    // A refreshed handoff can predate a pool created just before a crash: never the wrong pool.
    if (this.#o.features.pools.current().pools.length > 0) {
      log.info('ClusterCIDR pools exist; allocating once the node list is in');
      return undefined;
    }
    const handoff = await readHandoff(this.#o.handoffs, log, signal);
    if (handoff === undefined || signal.aborted) return undefined;
    const ranges = handoffRanges(handoff, this.#o.flagRanges);
    if (ranges === undefined) {
      log.info('the handoff describes other cluster ranges; allocating once the node list is in');
      return undefined;
    }
    try {
      const fast = new FastStart({ ...this.#o.allocating, handoff, ranges, source: this.#o.source }, signal);
      fast.start();
      log.info({ resourceVersion: handoff.resourceVersion }, 'allocating from the handoff while the node list comes in');
      return fast;
    } catch (err) {
      log.warn({ err }, 'cannot allocate from the handoff; allocating once the node list is in');
      return undefined;
    }
  }

  async #finishFast(listed: boolean): Promise<CarriedAllocation[]> {
    const fast = this.#fast;
    if (fast === undefined) return [];
    try {
      const carried = await fast.finish();
      const allocated = carried.filter((c) => c.landed).length;
      const summary = { allocated, pending: carried.length - allocated };
      const log = this.#o.logger.child({ component: 'fast-start' });
      log.info(summary, listed ? 'node list is in; handing over to the term' : 'term ended before the node list was in');
      return carried;
    } finally {
      this.#fast = undefined;
    }
  }

  #newTerm(
    signal: AbortSignal,
    quarantined: readonly QuarantineEntry[],
    termStart: number,
    carried: readonly CarriedAllocation[],
  ): AllocationController {
    const pools = this.#o.features.pools.current();
    return new AllocationController(
      {
        ...this.#o.allocating,
        ranges: this.#o.features.ranges.ranges(),
        pools: pools.pools,
        deletingPools: pools.deleting,
        quarantined,
        carried,
        lister: this.#o.informer,
        termStart,
        allocatorObserver: this.#o.allocatorObserver,
        queueObserver: this.#o.queueObserver,
      },
      signal,
    );
  }

  /**
   * At the end of a graceful term, its workers done: the quarantine, then what it held taken and
   * what the cache shows, read together with the cache's resourceVersion, for the next leader.
   */
  async #writeLastState(term: AllocationController, handle: TermHandle): Promise<void> {
    await this.#o.features.quarantine?.flush(handle);
    const handoff = this.#handoffOf(term);
    if (handoff === undefined) return;
    const log = this.#o.logger.child({ component: 'handoff' });
    // Bounded: a spent token bucket must not hold the stop up; the next leader then lists first.
    await writeHandoff(this.#o.handoffs, handoff, log, AbortSignal.timeout(HANDOFF_WRITE_MS));
  }

  /**
   * What the term holds taken and what the cache shows, read together with the cache's
   * resourceVersion in one synchronous step; undefined before the cache has one.
   */
  #handoffOf(term: AllocationController): Handoff | undefined {
    const resourceVersion = this.#o.informer.lastSyncResourceVersion();
    if (resourceVersion === '') return undefined;
    const flags = term.allocator.flagPool();
    const servedPools = flags === undefined || term.allocator.pools().length > 0;
    return servedPools ? noFastStart(resourceVersion) : takeHandoff(flags, this.#o.informer.list(), resourceVersion);
  }

  #nodeChanged(before: NodeInfo | undefined, node: NodeInfo): void {
    this.#term?.nodeChanged(node);
    for (const feature of this.#o.features.all) feature.nodeChanged?.(before, node);
  }
}
