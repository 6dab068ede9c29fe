// One case of the 100-pool bench in a process of its own, so that RSS and heap are that case's alone:
// `tsx pool-selectors.ts pools|flags NODES` allocates to every node and prints its figures as JSON.

import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseRange } from '../../../src/allocator/range-spec.js';
import { parseCidr } from '../../../src/cidr/index.js';
import { PoolAllocator, type PoolDefinition } from '../../../src/controller/pool-allocator.js';

export const GROUPS = 100;
const GROUP_LABEL = 'pool-group';
/** 10.0.0.0/8 cut in /15s: 512 /24 nodes a group, 100 groups; the flags' /8 holds 65,536. */
const groupRange = (g: number): string => `10.${2 * g}.0.0/15`;

export type SelectorCase = 'pools' | 'flags';

export interface SelectorFigures {
  readonly case: SelectorCase;
  readonly nodes: number;
  /** Wall time of the allocations alone. */
  readonly ns: number;
  /** process.cpuUsage over the allocations, user + system. */
  readonly cpuSeconds: number;
  /** After a full collection, against before the allocator was built; the allocations are still held. */
  readonly rssBytes: number;
  readonly heapBytes: number;
}

function definitions(): PoolDefinition[] {
  return Array.from({ length: GROUPS }, (_, g) => ({
    name: `group-${g}`,
    nodeSelector: { nodeSelectorTerms: [{ matchExpressions: [{ key: GROUP_LABEL, operator: 'In', values: [`g${g}`] }] }] },
    ipv4: parseCidr(groupRange(g)),
    perNodeHostBits: 8,
  }));
}

/** Nodes with labels as a cloud gives them, and one group each, round robin. */
function nodes(count: number): { name: string; labels: Record<string, string> }[] {
  return Array.from({ length: count }, (_, i) => {
    const name = `ip-10-${(i >> 16) & 255}-${(i >> 8) & 255}-${i & 255}.eu-west-1.compute.internal`;
    const labels = {
      'kubernetes.io/hostname': name,
      'kubernetes.io/os': 'linux',
      'node.kubernetes.io/instance-type': 'm6i.large',
      'topology.kubernetes.io/zone': `eu-west-1${'abc'[i % 3] ?? 'a'}`,
      [GROUP_LABEL]: `g${i % GROUPS}`,
    };
    return { name, labels };
  });
}

function collect(): NodeJS.MemoryUsage {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage();
}

function allocator(kind: SelectorCase): PoolAllocator {
  if (kind === 'flags') return new PoolAllocator({ flagRanges: [parseRange('10.0.0.0/8', 24)] });
  return new PoolAllocator({ flagRanges: [], pools: definitions() });
}

/** Throws unless every node got one /24 of its own group's range (any /24 of the /8 for flags). */
function check(kind: SelectorCase, list: ReturnType<typeof nodes>, got: readonly string[][]): void {
  const seen = new Set<string>();
  list.forEach((node, i) => {
    const cidr = got[i]?.[0];
    if (cidr === undefined || got[i]?.length !== 1 || seen.has(cidr)) throw new Error(`${node.name} got ${String(got[i])}`);
    seen.add(cidr);
    const g = Number(node.labels[GROUP_LABEL]?.slice(1));
    const second = Number(cidr.split('.')[1]);
    if (kind === 'pools' && (second >> 1 !== g || !cidr.endsWith('/24'))) throw new Error(`${node.name} of g${g} got ${cidr}`);
  });
}

export function runCase(kind: SelectorCase, count: number): SelectorFigures {
  const list = nodes(count);
  const before = collect();
  const pools = allocator(kind);
  const got = new Array<string[]>(count);
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) got[i] = pools.allocate(list[i]);
  const ns = Number(process.hrtime.bigint() - start);
  const used = process.cpuUsage(cpu);
  const after = collect();
  check(kind, list, got);
  return {
    case: kind,
    nodes: count,
    ns,
    cpuSeconds: (used.user + used.system) / 1e6,
    rssBytes: after.rss - before.rss,
    heapBytes: after.heapUsed - before.heapUsed,
  };
}

const [kind, count] = process.argv.slice(2);
const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain && (kind === 'pools' || kind === 'flags')) console.log(JSON.stringify(runCase(kind, Number(count))));
