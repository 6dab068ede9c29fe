// In-memory stand-ins for the reconciler's collaborators: one Map plays API server and cache at once.
// The writer follows the API server's rule (podCIDRs only go from empty to set) unless told to fail.

import { pino, type Logger } from 'pino';
import { ClusterAllocator } from '../../../src/allocator/cluster-allocator.js';
import type { RangeSpec } from '../../../src/allocator/types.js';
import { Reconciler } from '../../../src/controller/reconciler.js';
import {
  type ConflictKind,
  type EventSink,
  type EventType,
  type NodeInfo,
  type NodeLister,
  type NodeWriter,
  PatchError,
  type PatchFailure,
  type ReconcilerObserver,
} from '../../../src/controller/ports.js';
import { ManualClock } from '../../support/manual-clock.js';
import { parseRange } from '../../../src/allocator/range-spec.js';
import type { Cidr } from '../../../src/cidr/index.js';

export interface NodeSpec {
  readonly podCIDRs?: readonly string[];
  readonly deletionTimestamp?: string;
  readonly podCIDRManager?: string;
}

/** What the next patch does instead of the API server's usual behaviour. */
export type PatchScript =
  | { readonly fail: Exclude<PatchFailure, 'timeout'> }
  /** The request times out; `landed` says whether the write happened anyway. */
  | { readonly fail: 'timeout'; readonly landed: boolean }
  /** The request times out and the write lands only when `landLate()` is called, if ever. */
  | { readonly fail: 'timeout'; readonly late: true }
  /** Runs while the request is on the wire (someone deletes the node, another worker syncs), then carries on. */
  | { readonly during: () => void | Promise<void> };

export class FakeCluster implements NodeLister, NodeWriter {
  readonly nodes = new Map<string, NodeInfo>();
  readonly patches: { name: string; podCIDRs: readonly string[] }[] = [];
  readonly scripts: PatchScript[] = [];
  getNodeFails = false;
  /** Writes that timed out but are still on their way, applied by landLate(). */
  readonly late: { uid: string; name: string; podCIDRs: readonly string[] }[] = [];
  /** Sees every podCIDRs write before it is stored: by our patch, or by someone else. */
  onWrite?: (node: NodeInfo, podCIDRs: readonly string[], by: 'patch' | 'other') => void;
  #uids = 0;

  add(name: string, spec: NodeSpec = {}): NodeInfo {
    const node: NodeInfo = {
      name,
      uid: `${name}-${++this.#uids}`,
      resourceVersion: '1',
      podCIDRs: spec.podCIDRs ?? [],
      
      ...(spec.deletionTimestamp !== undefined ? { deletionTimestamp: spec.deletionTimestamp } : {}),
      ...(spec.podCIDRManager !== undefined ? { podCIDRManager: spec.podCIDRManager } : {}),
    };
    if (node.podCIDRs.length > 0) this.onWrite?.(node, node.podCIDRs, 'other');
    this.nodes.set(name, node);
    return node;
  }

  /** Someone else (a person, another controller) writes podCIDRs. */
  setPodCIDRs(name: string, podCIDRs: readonly string[]): void {
    const node = this.nodes.get(name);
    if (!node) return;
    this.onWrite?.(node, podCIDRs, 'other');
    this.nodes.set(name, { ...node, podCIDRs });
  }

  markDeleting(name: string): void {
    const node = this.nodes.get(name);
    if (node) this.nodes.set(name, { ...node, deletionTimestamp: '2025-01-01T00:00:00Z' });
  }

  remove(name: string): NodeInfo | undefined {
    const node = this.nodes.get(name);
    this.nodes.delete(name);
    return node;
  }

  get(name: string): NodeInfo | undefined {
    return this.nodes.get(name);
  }

  list(): NodeInfo[] {
    return [...this.nodes.values()];
  }

  async patchPodCIDRs(name: string, podCIDRs: readonly string[]): Promise<void> {
    await Promise.resolve();
    this.patches.push({ name, podCIDRs });
    const script = this.scripts.shift();
    if (script && 'during' in script) await script.during();
    else if (script?.fail === 'timeout') {
      const uid = this.nodes.get(name)?.uid;
      if ('late' in script) {
        if (uid !== undefined) this.late.push({ uid, name, podCIDRs });
      } else if (script.landed) this.#apply(name, podCIDRs);
      throw new PatchError('timeout', `patch of node ${name} timed out`);
    } else if (script) throw new PatchError(script.fail, `patch of node ${name} failed: ${script.fail}`);
    this.#apply(name, podCIDRs);
  }

  /** Delivers the delayed writes; one whose node is gone (or re-created) fails as the server would. */
  landLate(): void {
    for (const write of this.late.splice(0)) {
      if (this.nodes.get(write.name)?.uid !== write.uid) continue;
      try {
        this.#apply(write.name, write.podCIDRs);
      } catch {
        // Refused by the API server's rules (podCIDRs already set): nothing lands.
      }
    }
  }

  async getNode(name: string): Promise<NodeInfo | undefined> {
    await Promise.resolve();
    if (this.getNodeFails) throw new Error('connection refused');
    return this.nodes.get(name);
  }

  #apply(name: string, podCIDRs: readonly string[]): void {
    const node = this.nodes.get(name);
    if (!node) throw new PatchError('not-found', `nodes "${name}" not found`);
    if (node.podCIDRs.length > 0) {
      if (node.podCIDRs.join() === podCIDRs.join()) return;
      throw new PatchError('conflict', 'node updates may not change podCIDR except from "" to valid');
    }
    this.onWrite?.(node, podCIDRs, 'patch');
    this.nodes.set(name, { ...node, podCIDRs: [...podCIDRs], resourceVersion: String(Number(node.resourceVersion) + 1) });
  }
}

export interface RecordedEvent {
  readonly node: string;
  readonly type: EventType;
  readonly reason: string;
  readonly note: string;
}

export class RecordingEvents implements EventSink {
  readonly events: RecordedEvent[] = [];

  emit(node: NodeInfo, type: EventType, reason: string, note: string): void {
    this.events.push({ node: node.name, type, reason, note });
  }

  reasons(node?: string): string[] {
    return this.events.filter((e) => node === undefined || e.node === node).map((e) => e.reason);
  }
}

export class CountingObserver implements ReconcilerObserver {
  readonly conflicts: ConflictKind[] = [];
  readonly failures: PatchFailure[] = [];
  allocations = 0;
  releasedSubnets = 0;
  waitingNodes = 0;

  conflict(kind: ConflictKind): void {
    this.conflicts.push(kind);
  }
  allocated(): void {
    this.allocations++;
  }
  released(subnets: number): void {
    this.releasedSubnets += subnets;
  }
  patchFailed(failure: PatchFailure): void {
    this.failures.push(failure);
  }
  waiting(nodes: number): void {
    this.waitingNodes = nodes;
  }
}

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

export function memoryLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

export interface Harness {
  readonly cluster: FakeCluster;
  readonly allocator: ClusterAllocator;
  readonly reconciler: Reconciler;
  readonly events: RecordingEvents;
  readonly observer: CountingObserver;
  readonly lines: LogLine[];
  readonly requeued: { name: string; afterMs: number | undefined }[];
  readonly clock: ManualClock;
}

export function harness(
  options: { ranges?: readonly RangeSpec[]; quarantineMs?: number; reserved?: readonly Cidr[]; fieldManager?: string } = {},
): Harness {
  const clock = new ManualClock(1_000_000);
  const cluster = new FakeCluster();
  const allocator = new ClusterAllocator({
    ranges: options.ranges ?? [parseRange('10.0.0.0/22', 24)],
    quarantineMs: options.quarantineMs ?? 0,
    reserved: options.reserved ?? [],
    now: clock.now,
  });
  const events = new RecordingEvents();
  const observer = new CountingObserver();
  const { logger, lines } = memoryLogger();
  const requeued: { name: string; afterMs: number | undefined }[] = [];
  const reconciler = new Reconciler({
    allocator,
    lister: cluster,
    writer: cluster,
    events,
    logger,
    clock,
    observer,
    requeue: (name, afterMs) => void requeued.push({ name, afterMs }),
    ...(options.fieldManager !== undefined ? { fieldManager: options.fieldManager } : {}),
  });
  return { cluster, allocator, reconciler, events, observer, lines, requeued, clock };
}

/** Subnets in use per range, quarantined and reserved ones included. */
export function used(allocator: ClusterAllocator): number {
  return allocator.usage().reduce((sum, u) => sum + u.used, 0);
}
