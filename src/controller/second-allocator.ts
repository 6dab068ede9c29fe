// Second-allocator detection: podCIDRs that another field manager set on a Node while we were leading.
// What a node carried when a term started is adopted silently; only later writes by others are reported.

import type { NodeInfo } from './ports.js';

export interface ForeignWrite {
  readonly node: NodeInfo;
  readonly manager: string;
}

/**
 * Judges each informer add or update by the state the informer held before it, so nothing per
 * node is kept here: at the start of a term that state is what the node carried, which is adopted.
 */
export class ForeignWriteDetector {
  readonly #ours: string;
  #active = false;

  constructor(fieldManager: string) {
    this.#ours = fieldManager;
  }

  startTerm(): void {
    this.#active = true;
  }

  endTerm(): void {
    this.#active = false;
  }

  /**
   * Reports podCIDRs that appeared on a node (new to the informer, re-created, or known without
   * podCIDRs) when managedFields name another manager. An unknown manager is not reported: without
   * managedFields nothing says who wrote.
   */
  observe(before: NodeInfo | undefined, node: NodeInfo): ForeignWrite | undefined {
    if (!this.#active || node.podCIDRs.length === 0) return undefined;
    const appeared = before === undefined || before.uid !== node.uid || before.podCIDRs.length === 0;
    const manager = node.podCIDRManager;
    if (!appeared || manager === undefined || manager === this.#ours) return undefined;
    return { node, manager };
  }
}
