// Second-allocator detection while leading: podCIDRs another field manager set on a Node get a log
// line, a Warning Event on the Node and a count, since two allocators may hand out the same ranges.

import type { Logger } from 'pino';
import type { EventSink, ForeignWriteObserver, NodeInfo } from '../../controller/ports.js';
import { ForeignWriteDetector } from '../../controller/second-allocator.js';
import type { TermFeature, TermHandle } from './feature.js';

export interface SecondAllocatorOptions {
  readonly events: EventSink;
  readonly log: Logger;
  readonly fieldManager: string;
  readonly observer?: ForeignWriteObserver;
}

export class SecondAllocator implements TermFeature {
  readonly #o: SecondAllocatorOptions;
  readonly #detector: ForeignWriteDetector;

  constructor(options: SecondAllocatorOptions) {
    this.#o = options;
    this.#detector = new ForeignWriteDetector(options.fieldManager);
  }

  termStarted(_term: TermHandle, signal: AbortSignal): void {
    this.#detector.startTerm();
    signal.addEventListener('abort', () => this.#detector.endTerm(), { once: true });
  }

  nodeChanged(before: NodeInfo | undefined, node: NodeInfo): void {
    const write = this.#detector.observe(before, node);
    if (write === undefined) return;
    const { manager } = write;
    const podCIDRs = node.podCIDRs.join(',');
    this.#o.log.warn({ node: node.name, manager, podCIDRs }, 'podCIDRs set by another allocator');
    this.#o.observer?.onForeignWrite(manager);
    this.#o.events.emit(
      node,
      'Warning',
      'PodCIDRSetByOtherAllocator',
      `podCIDRs ${podCIDRs} were set by field manager ${manager}, not by ${this.#o.fieldManager}; two allocators may hand out the same ranges`,
    );
  }
}
