// Node-group pools for the chaos run: the ClusterCIDR CRD, two pools of different node sizes over one
// shared IPv4 range that --cluster-cidr covers too, a seeded pool label per node, and their removal.
import * as k8s from '@kubernetes/client-node';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatCidr, makeCidr, overlaps, parseCidr, subnetsOf, type Cidr } from '../../src/cidr/index.js';
import { sleep } from './churn.js';
import type { NodeCidrs, PoolSizes } from './invariants.js';

export const POOL_LABEL = 'chaos.podcidr-allocator.io/pool';
const CRD_NAME = 'clustercidrs.networking.x-k8s.io';
const RESOURCE = { group: 'networking.x-k8s.io', version: 'v1', plural: 'clustercidrs' } as const;
/** Label values: pool A (/24), pool B (/26), and nodes neither selects, which only --cluster-cidr serves. */
const LABELS = [
  { value: 'a', weight: 0.45 },
  { value: 'b', weight: 0.45 },
  { value: 'none', weight: 0.1 },
] as const;

export interface PoolPlan {
  readonly range: string;
  /** --node-cidr-mask-size-ipv4 of the flags' pool over the same range: a third size, served last. */
  readonly fallbackPrefix: number;
  readonly pools: readonly { readonly name: string; readonly label: string; readonly perNodeHostBits: number }[];
  readonly sizes: PoolSizes;
}

/**
 * Every node touches at most one /24 of the range whatever its size, so a /17 serves 128 nodes in
 * any mix: the churn's live nodes always fit, and the fill at the end has an exact lower bound.
 */
export function planPools(runId: string, range: string): PoolPlan {
  const fallbackPrefix = 25;
  return {
    range,
    fallbackPrefix,
    pools: [
      { name: `chaos-${runId}-a`, label: 'a', perNodeHostBits: 8 },
      { name: `chaos-${runId}-b`, label: 'b', perNodeHostBits: 6 },
    ],
    sizes: new Map([
      ['a', [24, fallbackPrefix]],
      ['b', [26, fallbackPrefix]],
      ['none', [fallbackPrefix]],
    ]),
  };
}

export function pickPoolLabel(random: () => number): string {
  let r = random();
  for (const { value, weight } of LABELS) {
    if (r < weight) return value;
    r -= weight;
  }
  return 'none';
}

/** Creates the CRD from manifests/ once per control plane and waits until it is served. */
export async function installCrd(kc: k8s.KubeConfig, repo: string): Promise<void> {
  const apiext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const file = join(repo, 'manifests/components/clustercidr/crd.yaml');
  const docs: unknown[] = k8s.loadAllYaml(await readFile(file, 'utf8'));
  const crd = docs.find((d): d is k8s.V1CustomResourceDefinition => (d as k8s.KubernetesObject | null)?.kind === 'CustomResourceDefinition');
  if (crd === undefined) throw new Error(`no CustomResourceDefinition in ${file}`);
  try {
    await apiext.createCustomResourceDefinition({ body: crd });
  } catch (err) {
    if (!(err instanceof k8s.ApiException && err.code === 409)) throw err;
  }
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  for (let i = 0; i < 120; i++) {
    if (await custom.listClusterCustomObject({ ...RESOURCE }).then(() => true, () => false)) return;
    await sleep(250);
  }
  throw new Error(`${CRD_NAME} not served 30s after it was created`);
}

export class Pools {
  readonly #plan: PoolPlan;
  readonly #custom: k8s.CustomObjectsApi;

  constructor(kc: k8s.KubeConfig, plan: PoolPlan) {
    this.#plan = plan;
    this.#custom = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  async create(): Promise<void> {
    for (const pool of this.#plan.pools) {
      const nodeSelector = { nodeSelectorTerms: [{ matchExpressions: [{ key: POOL_LABEL, operator: 'In', values: [pool.label] }] }] };
      const body = {
        apiVersion: 'networking.x-k8s.io/v1',
        kind: 'ClusterCIDR',
        metadata: { name: pool.name },
        spec: { perNodeHostBits: pool.perNodeHostBits, ipv4: this.#plan.range, nodeSelector },
      };
      await this.#custom.createClusterCustomObject({ ...RESOURCE, body });
    }
  }

  /** Deletes the pools and waits for the leader to drop its finalizer; the names still there after ms. */
  async delete(ms: number): Promise<string[]> {
    for (const pool of this.#plan.pools) await this.#custom.deleteClusterCustomObject({ ...RESOURCE, name: pool.name }).catch(ignore404);
    const deadline = Date.now() + ms;
    let left = await this.#left();
    while (left.length > 0 && Date.now() < deadline) {
      await sleep(250);
      left = await this.#left();
    }
    return left;
  }

  /** For a run that broke off with no controller left: strips the finalizers so the pools go. */
  async remove(): Promise<void> {
    const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
    for (const pool of this.#plan.pools) {
      await this.#custom.patchClusterCustomObject({ ...RESOURCE, name: pool.name, body: { metadata: { finalizers: [] } } }, merge).catch(ignore404);
      await this.#custom.deleteClusterCustomObject({ ...RESOURCE, name: pool.name }).catch(ignore404);
    }
  }

  async #left(): Promise<string[]> {
    const left: string[] = [];
    for (const pool of this.#plan.pools) {
      const found = await this.#custom.getClusterCustomObject({ ...RESOURCE, name: pool.name }).then(
        () => true,
        (err: unknown) => !(err instanceof k8s.ApiException && err.code === 404),
      );
      if (found) left.push(pool.name);
    }
    return left;
  }
}

/**
 * A pool label whose every allowed size has no aligned block free of the nodes' addresses: a node
 * with it must wait. Undefined when each label still has room somewhere.
 */
export function labelWithoutRoom(plan: PoolPlan, nodes: readonly NodeCidrs[]): string | undefined {
  for (const [label, prefixes] of plan.sizes) if (prefixes.every((p) => freeBlocks(plan, nodes, p) === 0)) return label;
  return undefined;
}

/** Aligned blocks of size prefix in the range that share no address with any node's podCIDRs. */
export function freeBlocks(plan: PoolPlan, nodes: readonly NodeCidrs[], prefix: number): number {
  const held = nodes.flatMap((n) => n.podCIDRs.map((t) => parseCidr(t)));
  let free = 0;
  for (const block of subnetsOf(parseCidr(plan.range), prefix)) if (!held.some((h) => overlaps(h, block))) free++;
  return free;
}

/** A subnet of size prefix inside cidr, not at its start: a planted conflict no equal-string test sees. */
export function insideOf(cidr: Cidr, prefix: number): string {
  return formatCidr(makeCidr(cidr, cidr.base + (1n << BigInt(cidr.bits - prefix)), prefix));
}

function ignore404(err: unknown): void {
  if (!(err instanceof k8s.ApiException && err.code === 404)) throw err;
}
