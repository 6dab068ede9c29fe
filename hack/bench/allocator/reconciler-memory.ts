// The heap the reconciler keeps per Node, for `npm run bench:allocator`: after a rebuild from Nodes that
// carry one podCIDR each, and after allocating to as many new Nodes, against the NodeInfo list itself.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { ClusterAllocator } from '../../../src/allocator/index.js';
import type { NodeInfo, NodeLister, NodeWriter } from '../../../src/controller/ports.js';
import { Reconciler } from '../../../src/controller/reconciler.js';
import { parseRange } from '../../../src/allocator/range-spec.js';

export interface ReconcilerMemory {
  readonly nodes: number;
  /** Heap of the NodeInfo list (the informer's cache holds as much anyway), bytes per node. */
  readonly nodeInfoBytes: number;
  /** Heap the reconciler (and its allocator) adds after a rebuild from Nodes with podCIDRs, bytes per node. */
  readonly rebuiltBytes: number;
  /** Heap it adds after allocating to Nodes without podCIDRs (every patch lands), bytes per node. */
  readonly allocatedBytes: number;
}

/** The heap after a full collection; gc is reached without --expose-gc on the command line. */
function collectedHeap(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Node texts as the informer builds them: distinct strings on the heap, not literals. */
function nodeInfos(count: number, withPodCIDR: boolean): NodeInfo[] {
  const nodes: NodeInfo[] = [];
  for (let i = 0; i < count; i++) {
    const podCIDRs = withPodCIDR ? [`10.${(i >> 8) & 255}.${i & 255}.0/24`] : [];
    nodes.push({
      name: `ip-10-${(i >> 16) & 255}-${(i >> 8) & 255}-${i & 255}.eu-west-1.compute.internal`,
      uid: `6f1c2a8e-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
      resourceVersion: String(1_000_000 + i),
      podCIDRs,
    });
  }
  return nodes;
}

function reconcilerOf(nodes: readonly NodeInfo[]): Reconciler {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const lister: NodeLister = { get: (name) => byName.get(name), list: () => [...nodes] };
  const writer: NodeWriter = { patchPodCIDRs: async () => {}, getNode: async (name) => byName.get(name) };
  return new Reconciler({
    allocator: new ClusterAllocator({ ranges: [parseRange('10.0.0.0/8', 24)] }),
    lister,
    writer,
    events: { emit: () => {} },
    logger: pino({ level: 'silent' }),
    clock: { now: () => 0 },
    announceRebuild: false,
  });
}

async function added(withPodCIDR: boolean, count: number): Promise<{ info: number; reconciler: number }> {
  const empty = collectedHeap();
  const nodes = nodeInfos(count, withPodCIDR);
  const listed = collectedHeap();
  const reconciler = reconcilerOf(nodes);
  reconciler.rebuild(nodes);
  if (!withPodCIDR) for (const node of nodes) await reconciler.sync(node.name);
  const held = collectedHeap();
  // Both stay reachable until the heap was read.
  if (!reconciler.assigned(nodes[count - 1] ?? nodes[0] ?? { name: '', uid: '' })) throw new Error('nothing was held');
  return { info: (listed - empty) / count, reconciler: (held - listed) / count };
}

export async function reconcilerMemory(count: number): Promise<ReconcilerMemory> {
  const rebuilt = await added(true, count);
  const allocated = await added(false, count);
  return { nodes: count, nodeInfoBytes: rebuilt.info, rebuiltBytes: rebuilt.reconciler, allocatedBytes: allocated.reconciler };
}
