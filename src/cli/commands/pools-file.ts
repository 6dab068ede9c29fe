// ClusterCIDR objects from a YAML file (`plan -f`): documents, `kind: List` and ClusterCIDRList flattened.
// Each object is checked by the controller's own poolOf, so plan refuses exactly what the controller would.

import { loadAll } from 'js-yaml';
import { poolOf } from '../../controller/cluster-cidr.js';
import type { PoolDefinition } from '../../controller/pool-allocator.js';

export const CLUSTER_CIDR_API_VERSION = 'networking.x-k8s.io/v1';

export type PoolFileReading = { readonly pools: readonly PoolDefinition[] } | { readonly problems: readonly string[] };

/** The pools a file describes, or every problem in it, each naming the object and the field. */
export function readPoolFile(text: string, source: string): PoolFileReading {
  let documents: unknown[];
  try {
    documents = loadAll(text);
  } catch (err) {
    // js-yaml's message spans several lines (it quotes the text); its first line says where.
    const first = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
    return { problems: [`${source}: not YAML: ${first}`] };
  }
  const problems: string[] = [];
  const pools: PoolDefinition[] = [];
  const names = new Set<string>();
  flatten(documents).forEach((object, i) => {
    const reading = readObject(object, source, i + 1);
    if ('problems' in reading) {
      problems.push(...reading.problems);
      return;
    }
    if (names.has(reading.pool.name)) {
      problems.push(`${source}: ClusterCIDR ${JSON.stringify(reading.pool.name)}: metadata.name: appears twice`);
      return;
    }
    names.add(reading.pool.name);
    pools.push(reading.pool);
  });
  if (problems.length > 0) return { problems };
  if (pools.length === 0) return { problems: [`${source}: no ClusterCIDR objects`] };
  return { pools };
}

/** Objects of every document in order; List and ClusterCIDRList give their items, empty documents nothing. */
function flatten(documents: readonly unknown[]): unknown[] {
  return documents.flatMap((doc): unknown[] => {
    if (doc === null || doc === undefined) return [];
    const kind = isRecord(doc) ? doc['kind'] : undefined;
    if ((kind === 'List' || kind === 'ClusterCIDRList') && isRecord(doc) && Array.isArray(doc['items'])) {
      return flatten(doc['items'] as unknown[]);
    }
    return [doc];
  });
}

/** One object; problems start with its name, or with its place in the file when it has none. */
function readObject(object: unknown, source: string, place: number): { pool: PoolDefinition } | { problems: string[] } {
  if (!isRecord(object)) return { problems: [`${source}: object ${place}: not an object`] };
  const metadata = object['metadata'];
  const name = isRecord(metadata) ? metadata['name'] : undefined;
  const what = object['kind'] === 'ClusterCIDR' ? 'ClusterCIDR' : 'object';
  const where = typeof name === 'string' && name !== '' ? `${source}: ${what} ${JSON.stringify(name)}` : `${source}: object ${place}`;
  const problems: string[] = [];
  if (object['kind'] !== 'ClusterCIDR') problems.push(`kind: must be ClusterCIDR, got ${JSON.stringify(object['kind'])}`);
  else if (object['apiVersion'] !== CLUSTER_CIDR_API_VERSION) {
    problems.push(`apiVersion: must be ${CLUSTER_CIDR_API_VERSION}, got ${JSON.stringify(object['apiVersion'])}`);
  }
  if (typeof name !== 'string' || name === '') problems.push('metadata.name: required');
  if (object['kind'] === 'ClusterCIDR') {
    const spec = object['spec'];
    const reading = poolOf({ name: String(name ?? ''), uid: '', resourceVersion: '', generation: 0, finalizers: [], spec });
    if ('pool' in reading && problems.length === 0) return { pool: reading.pool };
    if ('problems' in reading) problems.push(...reading.problems);
  }
  return { problems: problems.map((p) => `${where}: ${p}`) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
