// The ports: what the controller needs from the world, owned here and implemented in src/kube and
// src/metrics (and by small fakes in tests). Kept narrow so the controller runs without an API server.

import type { RangeUsage } from '../allocator/types.js';

export type { AllocatorObserver, RangeUsage } from '../allocator/types.js';

/**
 * The pool the --cluster-cidr flags make. No Kubernetes name starts with '-', so it never meets a
 * ClusterCIDR's, and it is the `pool` label value of the flags' ranges: an empty value would be the
 * same as no label to Prometheus, and read as blank in legends.
 */
export const FLAG_POOL = '--cluster-cidr';

/**
 * A range's usage as metrics and early warnings read it. `pool` names the node-group pool the range
 * serves (a ClusterCIDR's name, or FLAG_POOL); absent where there is only one set of ranges, which
 * then is the flags' pool. A range two pools share is listed once per pool.
 */
export interface RangeUsageInPool extends RangeUsage {
  readonly pool?: string;
}

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
  /** metadata.labels: pools choose by them. */
  readonly labels?: Readonly<Record<string, string>>;
}

/** The labels of a Node without any: one frozen object shared by all of them. */
export const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

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
  lastSyncResourceVersion(): string;
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

/** One page of a Node list, already converted to NodeInfo. */
export interface NodePage {
  readonly nodes: readonly NodeInfo[];
  readonly resourceVersion: string;
  /** Present when more pages follow. */
  readonly continueToken?: string;
}

export interface NodeListOptions {
  readonly limit: number;
  readonly continueToken?: string;
  readonly signal: AbortSignal;
}

export interface NodeWatchOptions {
  readonly resourceVersion: string;
  /** Asks the server to end the watch cleanly after this long. */
  readonly timeoutSeconds: number;
  readonly signal: AbortSignal;
}

export type NodeWatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface NodeWatchHandlers {
  onEvent(type: NodeWatchEventType, node: NodeInfo): void;
  onBookmark(resourceVersion: string): void;
  /** The watch ended: no argument for a clean close by the server, else the error. */
  onClose(err?: unknown): void;
}

/** Where Nodes come from; src/kube has the JSON and the protobuf one, over our own client. */
export interface NodeSource {
  list(options: NodeListOptions): Promise<NodePage>;
  /** Opens a watch; the returned promise settles when it is started, the handlers report the rest. */
  watch(options: NodeWatchOptions, handlers: NodeWatchHandlers): Promise<void>;
}

/** 410 Gone: the resourceVersion (or continue token) is too old; the informer relists. */
export class ResourceExpiredError extends Error {
  constructor(message = 'resource version too old', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ResourceExpiredError';
  }
}

/** Optional hooks for metrics. */
export interface NodeInformerObserver {
  onList?(nodes: number, seconds: number): void;
  /** reason: 'expired' (410), 'stalled' (watchdog), 'error', 'closed' (clean close). */
  onWatchRestart?(reason: 'expired' | 'stalled' | 'error' | 'closed'): void;
}

export interface ConfigMapData {
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly data: Readonly<Record<string, string>>;
}

/** Someone else wrote the ConfigMap since we read it (409), or created it first. */
export class ConfigMapConflictError extends Error {
  constructor(name: string, options?: { cause?: unknown }) {
    super(`ConfigMap ${name} changed since it was read`, options);
    this.name = 'ConfigMapConflictError';
  }
}

/** What the range watcher and the quarantine store need; tests pass an in-memory one. */
export interface ConfigMapStore {
  read(name: string, signal?: AbortSignal): Promise<ConfigMapData | undefined>;
  /**
   * Creates it when resourceVersion is undefined, else replaces that version; resolves to the new
   * resourceVersion. Throws ConfigMapConflictError when someone else wrote first.
   */
  write(name: string, data: Record<string, string>, resourceVersion: string | undefined, signal?: AbortSignal): Promise<string>;
  /** Calls onChange with the current object (undefined when absent) until signal aborts. */
  watch(name: string, onChange: (cm: ConfigMapData | undefined) => void, signal: AbortSignal): Promise<void>;
}

/** A ClusterCIDR as read: identity and lifecycle checked by the adapter, the spec as sent (poolOf checks it). */
export interface ClusterCIDRObject {
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly generation: number;
  /** RFC 3339 string once the object is being deleted. */
  readonly deletionTimestamp?: string;
  readonly finalizers: readonly string[];
  readonly spec: unknown;
}

/** What the pools feature tells of a ClusterCIDR's ranges through its status subresource. */
export interface ClusterCIDRStatus {
  readonly observedGeneration: number;
  readonly ipv4?: PoolFamilyStatus;
  readonly ipv6?: PoolFamilyStatus;
  readonly conditions: readonly PoolCondition[];
}

export interface PoolFamilyStatus {
  readonly capacity: number;
  readonly allocated: number;
  readonly free: number;
}

/** A metav1.Condition. */
export interface PoolCondition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly observedGeneration: number;
  readonly lastTransitionTime: string;
  readonly reason: string;
  readonly message: string;
}

/** How the informer of pools tells what it saw. */
export interface ClusterCIDRHandlers {
  /** A full list: every object there is (none when the API has no ClusterCIDRs or we may not read them). */
  listed(objects: readonly ClusterCIDRObject[]): void;
  changed(object: ClusterCIDRObject): void;
  deleted(name: string): void;
}

/** ClusterCIDRs: watched (relisting after every end), their finalizers and status written. */
export interface ClusterCIDRStore {
  /** Lists, then watches, again and again until signal aborts. */
  watch(handlers: ClusterCIDRHandlers, signal: AbortSignal): Promise<void>;
  /** Replaces metadata.finalizers, only if the object is still at that resourceVersion (else throws). */
  setFinalizers(name: string, resourceVersion: string, finalizers: readonly string[], signal?: AbortSignal): Promise<void>;
  writeStatus(name: string, status: ClusterCIDRStatus, signal?: AbortSignal): Promise<void>;
}

/** The object an Event is about: one in the controller's namespace, or a cluster-scoped one. */
export interface EventRegarding {
  readonly kind: string;
  readonly name: string;
  readonly uid?: string;
  /** Default v1 (a ConfigMap). */
  readonly apiVersion?: string;
  /** The object has no namespace (a ClusterCIDR); its Events go to "default", as Nodes' do. */
  readonly clusterScoped?: boolean;
}

/** Events about objects other than Nodes; the same reason and note at most once per window. */
export interface ObjectEventSink {
  emit(regarding: EventRegarding, type: EventType, reason: string, note: string): void;
}

/**
 * Problems found in podCIDRs that nodes already carry:
 * - malformed     → not a CIDR, or host bits set;
 * - out-of-range  → inside no configured cluster CIDR (e.g. after a range change);
 * - duplicate     → the same CIDR is already held by another node;
 * - overlap       → a CIDR of another size shares addresses with another node's.
 */
export type ConflictKind = 'malformed' | 'out-of-range' | 'duplicate' | 'overlap';

/** Every ConflictKind, in report order: metrics list each one so its series exists from the first scrape. */
export const conflictKinds = ['malformed', 'out-of-range', 'duplicate', 'overlap'] as const satisfies readonly ConflictKind[];

export function isConflictKind(kind: string): kind is ConflictKind {
  return (conflictKinds as readonly string[]).includes(kind);
}

/** The reconciler's metrics hooks; src/metrics wires them to Prometheus. */
export interface ReconcilerObserver {
  conflict?(kind: ConflictKind): void;
  /** A node got its podCIDRs (one call per node, not per family). */
  allocated?(): void;
  /** Node subnets handed back to the allocator. */
  released?(subnets: number): void;
  patchFailed?(failure: PatchFailure): void;
  /** Nodes waiting for space after the range ran out. */
  waiting?(nodes: number): void;
}

/** Optional hooks for queue metrics (depth, adds, retries, latency); all times in seconds. */
export interface WorkQueueObserver {
  /** A key entered the queue (adds of a key already queued are not counted). */
  onAdd?(): void;
  onDepth?(depth: number): void;
  /** A key was re-queued through the rate limiter. */
  onRetry?(): void;
  /** Time a key waited in the queue before a worker took it. */
  onQueueLatency?(seconds: number): void;
  /** Time a worker held a key, from get() to done(). */
  onWorkDuration?(seconds: number): void;
}

/** Called once per HTTP attempt: verb (GET, PATCH…), status code or "<error>", seconds to the response headers. */
export type RequestObserver = (verb: string, code: string, seconds: number) => void;

/** Second-allocator detection's hook: another field manager set a Node's podCIDRs while we led. */
export interface ForeignWriteObserver {
  onForeignWrite(manager: string): void;
}
