// What the handoff tests share: Nodes about a kubelet's size, a successor that reads the cluster at a
// big cluster's pace through a SlowApiProxy, and a SIGKILL that the harness then forgets.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { eventually } from '../support/eventually.js';
import { scopeCIDRs, stopController, type ControllerProcess, type ControllerTestSetup } from './controller-harness.js';
import { SlowApiProxy } from './slow-api-proxy.js';
import type * as k8s from '@kubernetes/client-node';

/** About a kubelet's Node (images, conditions): a replay of a term is a few megabytes. */
const PADDING = 'x'.repeat(24_000);
/** The list takes this long (as about 80,000 such Nodes do); the watch passes 16 KiB every 10 ms (1.6 MB/s). */
const BIG_CLUSTER_PACE = { listDelayMs: 10_000, watchPieceBytes: 16_384, watchPieceMs: 10 };

/** A SlowApiProxy at a big cluster's pace for the whole file; its kubeconfig once beforeAll ran. */
export function useBigClusterProxy(setup: ControllerTestSetup, prefix: string): () => string | undefined {
  let dir = '';
  let proxy: SlowApiProxy | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
    proxy = await SlowApiProxy.start(setup.clients.kc, dir, BIG_CLUSTER_PACE);
  });
  afterAll(async () => {
    await proxy?.close();
    await rm(dir, { recursive: true, force: true });
  });
  return () => proxy?.kubeconfigPath;
}

export function createFatNode(setup: ControllerTestSetup, base: string): Promise<k8s.V1Node> {
  const body = setup.scope.node(base);
  body.metadata = { ...body.metadata, annotations: { 'example.com/padding': PADDING } };
  return setup.clients.core.createNode({ body });
}

export async function nodesWithPodCIDRs(setup: ControllerTestSetup): Promise<number> {
  const all = await scopeCIDRs(setup.clients, setup.scope);
  return [...all.values()].filter((cidrs) => cidrs.length > 0).length;
}

export async function sigkill(proc: ControllerProcess): Promise<void> {
  if (proc.pid !== undefined) process.kill(proc.pid, 'SIGKILL');
  await eventually(async () => (proc.exitCode === undefined ? undefined : true), { timeoutMs: 10_000, intervalMs: 20 });
  // Already dead: this only takes it off the harness's list.
  await stopController(proc).catch(() => undefined);
}

/** `<prefix>-000`, `<prefix>-001`, …: name order is creation order. */
export function names(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
}
