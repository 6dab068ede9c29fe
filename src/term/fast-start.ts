// A term's first seconds after a handoff: Nodes that a watch from the handoff's resourceVersion shows
// get podCIDRs from an allocator that holds taken everything the handoff held, while the informer is
// still listing every Node. When that list is in, finish() stops it and hands over what it allocated.
//
// Why no subnet goes to two Nodes (docs/decisions/0001-fast-start-allocates-only-at-the-present.md):
// 1. The handoff holds taken every subnet any Node held at its resourceVersion h.
// 2. The watch from h delivers every Node write after h in resourceVersion order; each is occupied as
//    it arrives, and nothing is ever released here.
// 3. After the Lease is ours, a consistent read gives the present resourceVersion p. Every write by an
//    earlier leader has a resourceVersion below p (it stopped writing before its Lease could expire).
// 4. The workers start only once the watch has delivered an event or bookmark at or past p: then the
//    allocator holds taken everything held in the cluster at p, and after p only this term allocates.
// A replay that is a whole dead term behind the present therefore waits; it never allocates from the past.
// 5. At the handover the term frees only what it carries for a node missing from a list at or past
//    where this start last saw it: that node was deleted, and no patch to it is still on the wire.

import type { Logger } from 'pino';
import type { RangeSpec } from '../allocator/types.js';
import { AllocationController, type AllocatingOptions } from './allocation-controller.js';
import { occupyPodCIDRs, type Handoff } from './handoff.js';
import {
  type FreshNodeLister,
  type NodeInfo,
  type NodeSource,
  type NodeWatchHandlers,
  type NodeWriter,
  ResourceExpiredError,
} from '../controller/ports.js';
import type { CarriedAllocation } from '../controller/reconciler.js';
import { isAtOrPast, ResourceVersionMark } from '../controller/resource-version-mark.js';

/** The handoff and where to watch from; everything else a term allocates with, as a term has it. */
export interface FastStartOptions extends AllocatingOptions {
  readonly handoff: Handoff;
  /** The handoff's ranges (see handoffRanges). */
  readonly ranges: readonly RangeSpec[];
  /** Where the watch from the handoff's resourceVersion and the present resourceVersion come from. */
  readonly source: NodeSource;
}

/**
 * Until the watch has reached the present: the API server sends a bookmark with its current
 * resourceVersion two seconds before a watch's timeout, so a quiet cluster is caught up within
 * about two seconds instead of waiting for a Node to change.
 */
export const CATCH_UP_WATCH_SECONDS = 3;
/** Once caught up, the watch is ended by finish() long before this; it only bounds a forgotten one. */
const WATCH_TIMEOUT_SECONDS = 300;

/** Allocates from a handoff once its watch has reached the present; see the top of this file. */
export class FastStart {
  readonly #o: FastStartOptions;
  readonly #log: Logger;
  /** Nodes the watch showed, latest state; the only nodes this allocates to. */
  readonly #nodes = new Map<string, NodeInfo>();
  readonly #stop = new AbortController();
  readonly #signal: AbortSignal;
  readonly #controller: AllocationController;
  /** Where the watch has come to, and whether that is the present yet. */
  readonly #mark = new ResourceVersionMark();
  /** Patches that landed, with the uid of the node they were sent for. */
  readonly #patched: CarriedAllocation[] = [];
  /** The last resourceVersion at which the watch or a read showed each node name, deletes too. */
  readonly #seenAt = new Map<string, string>();
  #run: Promise<unknown> = Promise.resolve();

  constructor(options: FastStartOptions, termSignal: AbortSignal) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'fast-start' });
    this.#signal = AbortSignal.any([termSignal, this.#stop.signal]);
    this.#controller = new AllocationController(
      {
        ...options,
        taken: options.handoff.ranges,
        lister: this.#lister(),
        termStart: 0,
        writer: this.#recording(options.writer),
        logger: this.#log,
        announceRebuild: false,
      },
      this.#signal,
    );
  }

  /** Starts the watch and reads the present; the workers start once the watch has reached it. */
  start(): void {
    this.#run = this.#controller.run(this.#signal);
    if (!isReplayable(this.#o.handoff.resourceVersion)) {
      // A watch from "0" (or from no number) starts anywhere and replays nothing in order.
      this.#log.info({ resourceVersion: this.#o.handoff.resourceVersion }, 'the handoff has no resourceVersion to watch from; nodes wait for the node list');
      return;
    }
    void this.#mark.reached(this.#signal).then((reached) => {
      if (reached) this.#log.info({ resourceVersion: this.#mark.last() }, 'the watch from the handoff has reached the present; allocating');
    });
    void this.#watchFrom(this.#o.handoff.resourceVersion);
    void this.#readPresent();
  }

  /**
   * Stops the watch and the workers, waits for patches on the wire, and returns every allocation
   * whose node the list may not show yet: those that landed and those of unknown outcome.
   */
  async finish(): Promise<CarriedAllocation[]> {
    this.#stop.abort();
    await this.#run;
    const carried = [...this.#patched, ...this.#controller.reconciler.attempts()];
    return carried.map((c) => {
      const seenAt = this.#seenAt.get(c.name);
      return seenAt === undefined ? c : { ...c, seenAt };
    });
  }

  #lister(): FreshNodeLister {
    const nodes = this.#nodes;
    return {
      get: (name) => nodes.get(name),
      list: () => [...nodes.values()],
      lastSyncResourceVersion: () => this.#mark.last(),
      // The term's rebuild and its workers wait here; what the watch showed meanwhile is occupied.
      listedAfter: (_after, signal) => this.#mark.reached(signal),
    };
  }

  /**
   * Keeps each landed patch, with the uid the reconciler patched it for (read before the await), and
   * what a read shows a node to hold: a patch that timed out and landed is settled by that read, and
   * the term's list may have been read before it landed.
   */
  #recording(writer: NodeWriter): NodeWriter {
    return {
      patchPodCIDRs: async (name, podCIDRs) => {
        const uid = this.#nodes.get(name)?.uid ?? '';
        await writer.patchPodCIDRs(name, podCIDRs);
        this.#patched.push({ name, uid, cidrs: podCIDRs, landed: true });
      },
      getNode: async (name) => {
        const fresh = await writer.getNode(name);
        if (fresh) this.#see(fresh);
        if (fresh && fresh.podCIDRs.length > 0) this.#patched.push({ name, uid: fresh.uid, cidrs: fresh.podCIDRs, landed: true });
        return fresh;
      },
    };
  }

  /** A list of one Node without a resourceVersion is a consistent read: its resourceVersion is the present. */
  async #readPresent(): Promise<void> {
    try {
      const page = await this.#o.source.list({ limit: 1, signal: this.#signal });
      if (this.#signal.aborted) return;
      if (!this.#mark.setTarget(page.resourceVersion)) {
        this.#log.info({ resourceVersion: page.resourceVersion }, 'cannot compare the present resourceVersion; nodes wait for the node list');
      }
    } catch (err) {
      if (this.#signal.aborted) return;
      this.#log.info({ err }, 'cannot read the present resourceVersion; nodes wait for the node list');
    }
  }

  /** Watches from resourceVersion; a watch the server ends on time goes on from where it came to. */
  async #watchFrom(resourceVersion: string): Promise<void> {
    const handlers: NodeWatchHandlers = {
      onEvent: (type, node) => this.#apply(type, node),
      onBookmark: (bookmark) => {
        if (!this.#signal.aborted) this.#mark.advance(bookmark);
      },
      onClose: (err) => this.#ended(err),
    };
    const timeoutSeconds = this.#mark.isReached() ? WATCH_TIMEOUT_SECONDS : CATCH_UP_WATCH_SECONDS;
    try {
      await this.#o.source.watch({ resourceVersion, timeoutSeconds, signal: this.#signal }, handlers);
    } catch (err) {
      this.#ended(err ?? new Error('watch failed'));
    }
  }

  #apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', node: NodeInfo): void {
    if (this.#signal.aborted) return;
    // Taken at once, not at the node's sync, so a node deleted before its sync keeps its range too.
    occupyPodCIDRs(this.#controller.allocator, node);
    this.#see(node);
    if (type === 'DELETED') {
      // Releasing is the term's, once its list has shown everything.
      this.#nodes.delete(node.name);
    } else {
      this.#nodes.set(node.name, node);
      // Queued only once the workers have started; until then the rebuild at the present picks it up.
      this.#controller.nodeChanged(node);
    }
    // After the node is stored: the rebuild that the present releases must see it.
    this.#mark.advance(node.resourceVersion);
  }

  /** Reads and watch events may arrive out of order: the newest resourceVersion is kept. */
  #see(node: NodeInfo): void {
    const before = this.#seenAt.get(node.name);
    if (node.resourceVersion === '' || (before !== undefined && isAtOrPast(before, node.resourceVersion))) return;
    this.#seenAt.set(node.name, node.resourceVersion);
  }

  /** A clean close goes on from the last resourceVersion seen; on any error new nodes wait for the list. */
  #ended(err: unknown): void {
    if (this.#signal.aborted) return;
    if (err === undefined) {
      void this.#watchFrom(this.#mark.last() || this.#o.handoff.resourceVersion);
      return;
    }
    if (err instanceof ResourceExpiredError) {
      this.#log.info({ resourceVersion: this.#o.handoff.resourceVersion }, 'the handoff is too old to watch from; new nodes wait for the node list');
      return;
    }
    this.#log.info({ err }, 'the watch from the handoff ended; new nodes wait for the node list');
  }
}

function isReplayable(resourceVersion: string): boolean {
  return /^[1-9]\d*$/.test(resourceVersion);
}
