// Second-allocator detection: podCIDRs that another field manager set on a Node while we were leading.
// What a node carried when a term started is adopted silently; only later writes by others are reported.

import type { NodeInfo } from './types.js';

export interface ForeignWrite {
  readonly node: NodeInfo;
  readonly manager: string;
}

/** What we last saw of a node: which incarnation, and whether it had podCIDRs then. */
interface Seen {
  readonly uid: string;
  readonly hadPodCIDRs: boolean;
}

export class ForeignWriteDetector {
  readonly #ours: string;
  readonly #seen = new Map<string, Seen>();
  #active = false;

  constructor(fieldManager: string) {
    this.#ours = fieldManager;
  }

  /** A term starts: every node listed now is adopted as it is, whoever wrote it. */
  startTerm(nodes: readonly NodeInfo[]): void {
    this.#seen.clear();
    for (const node of nodes) this.#remember(node);
    this.#active = true;
  }

  endTerm(): void {
    this.#active = false;
    this.#seen.clear();
  }

  /**
   * An informer add or update. Reports podCIDRs that appeared on a node we knew without them (or on
   * a node new to us) when managedFields name another manager. An unknown manager is not reported:
   * without managedFields nothing says who wrote.
   */
  observe(node: NodeInfo): ForeignWrite | undefined {
    if (!this.#active) return undefined;
    const before = this.#seen.get(node.name);
    this.#remember(node);
    if (node.podCIDRs.length === 0) return undefined;
    const appeared = before === undefined || before.uid !== node.uid || !before.hadPodCIDRs;
    const manager = node.podCIDRManager;
    if (!appeared || manager === undefined || manager === this.#ours) return undefined;
    return { node, manager };
  }

  forget(node: NodeInfo): void {
    const seen = this.#seen.get(node.name);
    if (seen !== undefined && (node.uid === '' || seen.uid === node.uid)) this.#seen.delete(node.name);
  }

  #remember(node: NodeInfo): void {
    this.#seen.set(node.name, { uid: node.uid, hadPodCIDRs: node.podCIDRs.length > 0 });
  }
}
