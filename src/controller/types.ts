// What the controller's parts exchange: the slim cached view of a Node and the narrow interfaces
// the reconciler needs. Keeping these small lets the reconciler be tested without an API server.

/** The part of a Node that allocation needs; the cache holds only this, never whole Nodes. */
export interface NodeInfo {
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  /** spec.podCIDRs, or [spec.podCIDR] on objects that only carry the singular field. */
  readonly podCIDRs: readonly string[];
  /** RFC 3339 string when the Node is being deleted (finalizers may keep it for long). */
  readonly deletionTimestamp?: string;
  /** The field manager that owns spec.podCIDRs according to managedFields, when known. */
  readonly podCIDRManager?: string;
}

/** Read access to the informer's cache. */
export interface NodeLister {
  get(name: string): NodeInfo | undefined;
  list(): NodeInfo[];
}

/** A cache that can be made to rest on a list newer than some moment. */
export interface FreshNodeLister extends NodeLister {
  /**
   * Resolves true once the cache is backed by a full list started after `after` (monotonic
   * milliseconds of the cache's clock), relisting if needed; false when signal aborts first.
   */
  listedAfter(after: number, signal: AbortSignal): Promise<boolean>;
  /** The resourceVersion at which the cache shows the cluster ('' before a list). */
  resourceVersion(): string;
}

/** Why a podCIDR patch failed; the reconciler branches on this. */
export type PatchFailure =
  /** 422 / 409: the Node already has podCIDRs (someone else set them first). */
  | 'conflict'
  /** The Node does not exist any more. */
  | 'not-found'
  /** The request timed out or its outcome is unknown: the write may have happened. */
  | 'timeout'
  /** Anything else: the write did not happen. */
  | 'failed';

export class PatchError extends Error {
  constructor(
    readonly failure: PatchFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PatchError';
  }
}

/** Writes to the API server on behalf of the reconciler. */
export interface NodeWriter {
  /** One strategic-merge patch of spec.podCIDR + spec.podCIDRs; throws PatchError. */
  patchPodCIDRs(name: string, podCIDRs: readonly string[]): Promise<void>;
  /** A fresh read from the API server (not the cache); undefined when the Node is gone. */
  getNode(name: string): Promise<NodeInfo | undefined>;
}

export type EventType = 'Normal' | 'Warning';

/** Records Events about Nodes; implementations de-duplicate and never throw. */
export interface EventSink {
  emit(node: NodeInfo, type: EventType, reason: string, note: string): void;
}
