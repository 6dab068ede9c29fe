// A term's first seconds after a handoff: Nodes that a watch from the handoff's resourceVersion shows
// get podCIDRs from an allocator that holds taken everything the handoff held, while the informer is
// still listing every Node. When that list is in, finish() stops it and hands over what it allocated.

import type { Logger } from 'pino';
import type { RangeSpec } from '../allocator/types.js';
import { AllocationController, type AllocationControllerOptions } from './allocation-controller.js';
import { occupyPodCIDRs, type Handoff } from './handoff.js';
import { ResourceExpiredError, type NodeSource, type NodeWatchHandlers } from './node-informer.js';
import type { CarriedAllocation } from './reconciler.js';
import type { FreshNodeLister, NodeInfo, NodeWriter } from './types.js';

/** The handoff and where to watch from; everything else a term allocates with, as a term has it. */
export interface FastStartOptions
  extends Pick<
    AllocationControllerOptions,
    'reserved' | 'quarantineMs' | 'writer' | 'events' | 'logger' | 'workers' | 'fieldManager' | 'reconcilerObserver' | 'onSynced'
  > {
  readonly handoff: Handoff;
  /** The handoff's ranges (see handoffRanges). */
  readonly ranges: readonly RangeSpec[];
  /** Where the watch from the handoff's resourceVersion comes from. */
  readonly source: NodeSource;
}

/** The watch is ended by finish() long before this; it only bounds a forgotten one. */
const WATCH_TIMEOUT_SECONDS = 300;

/**
 * Why this is safe: the handoff holds taken every subnet any node held at its resourceVersion, and
 * the watch from there shows every write since, so what is free here is free in the cluster, up to
 * the same watch delay the informer has. Nothing is ever released here: a deleted node's range
 * waits for the term that follows, which knows every node and the stored quarantine.
 */
export class FastStart {
  readonly #o: FastStartOptions;
  readonly #log: Logger;
  /** Nodes the watch showed, latest state; the only nodes this allocates to. */
  readonly #nodes = new Map<string, NodeInfo>();
  readonly #stop = new AbortController();
  readonly #signal: AbortSignal;
  readonly #controller: AllocationController;
  /** Patches that landed, with the uid of the node they were sent for. */
  readonly #patched: CarriedAllocation[] = [];
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

  /** Starts the workers, then the watch; nodes it shows are synced as they come. */
  start(): void {
    this.#run = this.#controller.run(this.#signal);
    void this.#watch();
  }

  /**
   * Stops the watch and the workers, waits for patches on the wire, and returns every allocation
   * whose node the list may not show yet: those that landed and those of unknown outcome.
   */
  async finish(): Promise<CarriedAllocation[]> {
    this.#stop.abort();
    await this.#run;
    return [...this.#patched, ...this.#controller.reconciler.attempts()];
  }

  #lister(): FreshNodeLister {
    const nodes = this.#nodes;
    return {
      get: (name) => nodes.get(name),
      list: () => [...nodes.values()],
      // The handoff stands in for the list: the workers start at once.
      listedAfter: () => Promise.resolve(true),
    };
  }

  /** Keeps each landed patch, with the uid the reconciler patched it for (read before the await). */
  #recording(writer: NodeWriter): NodeWriter {
    return {
      patchPodCIDRs: async (name, podCIDRs) => {
        const uid = this.#nodes.get(name)?.uid ?? '';
        await writer.patchPodCIDRs(name, podCIDRs);
        this.#patched.push({ name, uid, cidrs: podCIDRs, landed: true });
      },
      getNode: (name) => writer.getNode(name),
    };
  }

  async #watch(): Promise<void> {
    const { resourceVersion } = this.#o.handoff;
    const handlers: NodeWatchHandlers = {
      onEvent: (type, node) => {
        if (this.#signal.aborted) return;
        // Taken at once, not at the node's sync, so a node deleted before its sync keeps its range too.
        occupyPodCIDRs(this.#controller.allocator, node);
        if (type === 'DELETED') {
          // Releasing is the term's, once its list has shown everything.
          this.#nodes.delete(node.name);
          return;
        }
        this.#nodes.set(node.name, node);
        this.#controller.nodeChanged(node);
      },
      onBookmark: () => undefined,
      onClose: (err) => this.#ended(err),
    };
    try {
      await this.#o.source.watch({ resourceVersion, timeoutSeconds: WATCH_TIMEOUT_SECONDS, signal: this.#signal }, handlers);
    } catch (err) {
      this.#ended(err ?? new Error('watch failed'));
    }
  }

  /** Nodes already queued are still synced; new ones wait for the list. */
  #ended(err: unknown): void {
    if (this.#signal.aborted) return;
    if (err instanceof ResourceExpiredError) {
      this.#log.info({ resourceVersion: this.#o.handoff.resourceVersion }, 'the handoff is too old to watch from; new nodes wait for the node list');
      return;
    }
    this.#log.info({ err }, 'the watch from the handoff ended; new nodes wait for the node list');
  }
}
