// Helpers for the controller's integration tests: the allocator as a child process on the shared control
// plane, nodes created in bounded parallel, their podCIDRs and the Events the controller wrote about them.
import * as k8s from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { ControllerProcess, type LogLine } from '../../hack/lib/controller-process.js';
import { contains, overlaps, parseCidr } from '../../src/cidr/index.js';
import { eventually } from '../support/eventually.js';
import { apiError, controlPlane, kubeClients, TestScope, type KubeClients } from './harness.js';

export type { LogLine } from '../../hack/lib/controller-process.js';
export { ControllerProcess } from '../../hack/lib/controller-process.js';

/** Field manager of the controller's patches (src/cli/run.ts FIELD_MANAGER). */
export const FIELD_MANAGER = 'podcidr-allocator';

/** Controllers started by startController and not yet stopped; stopControllers() ends them. */
const running = new Set<ControllerProcess>();

/**
 * Starts `run --leader-elect=false` against the shared control plane with the given flags. Its
 * ConfigMaps (stored quarantine, appended ranges) live in `namespace`, so no other file's leak in.
 * options.kubeconfig points it elsewhere (e.g. through a SlowApiProxy).
 */
export async function startController(
  namespace: string,
  args: readonly string[],
  options: { kubeconfig?: string } = {},
): Promise<ControllerProcess> {
  const cp = controlPlane();
  if (!cp.available) throw new Error(`no control plane: ${cp.reason}`);
  const flags = ['--leader-elect=false', '--leader-elect-resource-namespace', namespace, ...args];
  const proc = await ControllerProcess.start({ kubeconfig: options.kubeconfig ?? cp.kubeconfigPath, args: flags });
  running.add(proc);
  return proc;
}

/** Stops one controller; expects a clean exit 0. */
export async function stopController(proc: ControllerProcess): Promise<number | null> {
  running.delete(proc);
  return proc.stop();
}

/** For afterEach: no controller outlives its test, even a failed one. Returns the exit codes. */
export async function stopControllers(): Promise<(number | null)[]> {
  return Promise.all([...running].map((p) => stopController(p)));
}

/** A namespace of the scope's own for the controller's ConfigMaps; scope.cleanup() does not remove it. */
export async function createNamespace(clients: KubeClients, scope: TestScope): Promise<string> {
  await clients.core.createNamespace({ body: { metadata: { name: scope.id, labels: { ...scope.labels } } } });
  return scope.id;
}

export async function deleteNamespace(clients: KubeClients, name: string): Promise<void> {
  await clients.core.deleteNamespace({ name });
}

export interface ControllerTestSetupOptions {
  /** Prefix of the namespace that holds this file's controllers' ConfigMaps. */
  readonly namespacePrefix: string;
  /** Prefix of each test's scope: newScope(name) makes `${scopePrefix}-${name}`. */
  readonly scopePrefix: string;
  /** Whether afterEach asserts that every controller of the test stopped with exit 0. */
  readonly expectCleanExit: boolean;
}

export interface ControllerTestSetup {
  readonly clients: KubeClients;
  readonly namespace: string;
  /** The scope of the running test, set by newScope. */
  readonly scope: TestScope;
  newScope(name: string): TestScope;
}

/**
 * The hooks a controller test file needs: clients and a namespace of its own in beforeAll; after each
 * test, its controllers stopped and its nodes deleted; afterAll removes the rest. Call inside describe.
 */
export function useControllerTestSetup(options: ControllerTestSetupOptions): ControllerTestSetup {
  let clients: KubeClients | undefined;
  let namespace: string | undefined;
  let scope: TestScope | undefined;
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not set yet`);
    return value;
  };

  beforeAll(async () => {
    clients = kubeClients();
    namespace = await createNamespace(clients, new TestScope(options.namespacePrefix));
  });

  afterEach(async () => {
    const codes = await stopControllers();
    await deleteScopeNodes(need(clients, 'clients'), need(scope, 'scope'));
    // The first SIGTERM is a graceful stop.
    if (options.expectCleanExit) expect(codes.every((c) => c === 0), `exit codes ${codes.join(', ')}`).toBe(true);
  });

  afterAll(async () => {
    await need(scope, 'scope').cleanup(need(clients, 'clients'));
    await deleteNamespace(need(clients, 'clients'), need(namespace, 'namespace'));
  });

  return {
    get clients() {
      return need(clients, 'clients');
    },
    get namespace() {
      return need(namespace, 'namespace');
    },
    get scope() {
      return need(scope, 'scope');
    },
    newScope(name: string): TestScope {
      scope = new TestScope(`${options.scopePrefix}-${name}`);
      return scope;
    },
  };
}

/** Runs fn over items with at most `limit` calls in flight; results in input order. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Creates a node of the scope; podCIDRs set on create when given (podCIDR = the first). */
export async function createNode(
  clients: KubeClients,
  scope: TestScope,
  base: string,
  options: { podCIDRs?: string[]; finalizers?: string[] } = {},
): Promise<k8s.V1Node> {
  const body = scope.node(base);
  if (options.finalizers && body.metadata) body.metadata.finalizers = options.finalizers;
  if (options.podCIDRs) body.spec = { podCIDR: options.podCIDRs[0], podCIDRs: options.podCIDRs };
  return clients.core.createNode({ body });
}

export function nodeName(node: k8s.V1Node): string {
  const name = node.metadata?.name;
  if (name === undefined) throw new Error('node without a name');
  return name;
}

/** Waits until every named node carries podCIDRs; returns them by name. */
export async function waitForPodCIDRs(
  clients: KubeClients,
  scope: TestScope,
  names: readonly string[],
  timeoutMs = 60_000,
): Promise<Map<string, string[]>> {
  return eventually(
    async () => {
      const all = await scopeCIDRs(clients, scope);
      return names.every((n) => (all.get(n) ?? []).length > 0) ? all : undefined;
    },
    { timeoutMs, intervalMs: 250 },
  );
}

/** podCIDRs of every node of the scope (an empty list for a node without), by name. */
export async function scopeCIDRs(clients: KubeClients, scope: TestScope): Promise<Map<string, string[]>> {
  const list = await clients.core.listNode({ labelSelector: scope.selector });
  return new Map(list.items.map((n) => [nodeName(n), n.spec?.podCIDRs ?? []]));
}

export async function readNode(clients: KubeClients, name: string): Promise<k8s.V1Node> {
  return clients.core.readNode({ name });
}

/**
 * Deletes every node of the scope and waits until none is left. Finalizers a failed test left on its
 * nodes are removed too: a node that outlived its file would be seen by every later file's controller.
 */
export async function deleteScopeNodes(clients: KubeClients, scope: TestScope): Promise<void> {
  await clients.core.deleteCollectionNode({ labelSelector: scope.selector });
  for (const node of (await clients.core.listNode({ labelSelector: scope.selector })).items) {
    if (!node.metadata?.finalizers?.length) continue;
    const body = [{ op: 'remove', path: '/metadata/finalizers' }];
    await clients.core.patchNode({ name: node.metadata.name ?? '', body }).catch((err: unknown) => {
      if (apiError(err).code !== 404) throw err;
    });
  }
  await eventually(async () => ((await clients.core.listNode({ labelSelector: scope.selector })).items.length === 0 ? true : undefined));
}

export async function deleteNode(clients: KubeClients, name: string): Promise<void> {
  await clients.core.deleteNode({ name });
}

/** Events about the node in namespace default (optionally with one reason), as core/v1 shows them. */
export async function nodeEvents(clients: KubeClients, node: string, reason?: string): Promise<k8s.CoreV1Event[]> {
  const fields = [`involvedObject.name=${node}`, ...(reason ? [`reason=${reason}`] : [])];
  const list = await clients.core.listNamespacedEvent({ namespace: 'default', fieldSelector: fields.join(',') });
  return list.items;
}

/** Waits for an Event with this reason about the node. */
export async function waitForEvent(clients: KubeClients, node: string, reason: string, timeoutMs = 30_000): Promise<k8s.CoreV1Event> {
  return eventually(async () => (await nodeEvents(clients, node, reason))[0], { timeoutMs, intervalMs: 200 });
}

/** Waits for a controller log line about the node with this message. */
export function waitForNodeLog(proc: ControllerProcess, node: string, msg: string, timeoutMs = 30_000): Promise<LogLine> {
  return proc.waitForLog((l) => l.node === node && l.msg === msg, timeoutMs);
}

/** Field managers that wrote to the node. */
export function managers(node: k8s.V1Node): string[] {
  return (node.metadata?.managedFields ?? []).map((m) => m.manager ?? '');
}

export function isInside(range: string, cidr: string): boolean {
  return contains(parseCidr(range), parseCidr(cidr));
}

/** Pairs of CIDRs (with their holders) that share addresses; empty when all are disjoint. */
export function overlappingPairs(byNode: Map<string, string[]>): string[] {
  const all = [...byNode].flatMap(([node, cidrs]) => cidrs.map((text) => ({ node, text, cidr: parseCidr(text) })));
  const found: string[] = [];
  // Sorted by family and start, each CIDR can only overlap its successors until one starts past its end.
  all.sort((a, b) => (a.cidr.family === b.cidr.family ? compareBig(a.cidr.base, b.cidr.base) : a.cidr.family < b.cidr.family ? -1 : 1));
  for (let i = 0; i < all.length; i++) {
    const a = all[i];
    for (let j = i + 1; a && j < all.length; j++) {
      const b = all[j];
      if (!b || b.cidr.family !== a.cidr.family || !overlaps(a.cidr, b.cidr)) break;
      found.push(`${a.node} ${a.text} / ${b.node} ${b.text}`);
    }
  }
  return found;
}

function compareBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The value of one series in a Prometheus text exposition, or undefined when absent. */
export function metricValue(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
