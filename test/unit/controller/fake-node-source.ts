// An in-memory API server for Nodes behind the NodeSource interface: paginated list, watches the
// test drives by hand. Shared by the informer's tests and those of the term that reads its cache.

import type {
  NodeInfo,
  NodeListOptions,
  NodePage,
  NodeSource,
  NodeWatchHandlers,
  NodeWatchOptions,
} from '../../../src/controller/ports.js';

export function node(name: string, rv: string, extra: Partial<NodeInfo> = {}): NodeInfo {
  return { name, uid: `uid-${name}`, resourceVersion: rv, podCIDRs: [], ...extra };
}

export interface OpenWatch {
  readonly options: NodeWatchOptions;
  readonly handlers: NodeWatchHandlers;
}

/** An in-memory API server for Nodes: paginated list, watches the test drives by hand. */
export class FakeSource implements NodeSource {
  nodes = new Map<string, NodeInfo>();
  resourceVersion = '100';
  readonly lists: NodeListOptions[] = [];
  readonly watches: OpenWatch[] = [];
  /** Errors the next list / watch calls throw, in order. */
  readonly listErrors: unknown[] = [];
  readonly watchErrors: unknown[] = [];
  /** Leave aborted streams open, like a source that never reports the end of an aborted stream. */
  ignoreAbort = false;
  /** While set, list calls wait for it before they read the nodes (a slow API server). */
  listGate: Promise<void> | undefined;

  set(...infos: NodeInfo[]): void {
    for (const info of infos) this.nodes.set(info.name, info);
  }

  async list(options: NodeListOptions): Promise<NodePage> {
    this.lists.push(options);
    if (this.listGate !== undefined) await this.listGate;
    const err = this.listErrors.shift();
    if (err !== undefined) throw err;
    const names = [...this.nodes.keys()].sort();
    const start = options.continueToken === undefined ? 0 : Number(options.continueToken);
    const end = start + options.limit;
    return {
      nodes: names.slice(start, end).map((n) => this.nodes.get(n) ?? node(n, '0')),
      resourceVersion: this.resourceVersion,
      continueToken: end < names.length ? String(end) : undefined,
    };
  }

  async watch(options: NodeWatchOptions, handlers: NodeWatchHandlers): Promise<void> {
    const err = this.watchErrors.shift();
    if (err !== undefined) throw err;
    this.watches.push({ options, handlers });
    // Like k8s.Watch: aborting the request ends the stream with an AbortError.
    if (this.ignoreAbort) return;
    options.signal.addEventListener('abort', () => handlers.onClose(new DOMException('aborted', 'AbortError')));
  }

  /** Lists started from the first page: each is one full list of every node. */
  get fullLists(): number {
    return this.lists.filter((l) => l.continueToken === undefined).length;
  }

  /** The watch opened last. */
  get current(): OpenWatch {
    const w = this.watches.at(-1);
    if (w === undefined) throw new Error('no watch is open');
    return w;
  }
}
