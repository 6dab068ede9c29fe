// The node-group pool rounds of `npm run bench:allocator` (alone with `--only pools`): packing, the cost
// of SharedPools per verb, and 100 pools with selectors against the flags alone, each with its baseline.

import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FRAGMENTATION_MASKS, fragmentation, sharedCost, type CostFigures, type FillFigures, type FragmentationFigures } from './pools.js';
import type { SelectorCase, SelectorFigures } from './pool-selectors.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'pool-selectors.ts');
const CHURN_FRACTION = 0.3;

export interface PoolRounds {
  readonly fragmentation: FragmentationFigures;
  readonly cost: CostFigures;
  readonly selectors: Record<SelectorCase, SelectorFigures>;
}

function bySize(figures: ReadonlyMap<number, number>, format: (n: number) => string): string {
  return FRAGMENTATION_MASKS.map((mask) => `/${mask} ${format(figures.get(mask) ?? 0)}`).join(', ');
}

function fillText(fill: FillFigures): string {
  const placed = [...fill.placed.values()].reduce((a, b) => a + b, 0);
  return (
    `holds ${fill.nodes.toLocaleString('en')} nodes, ${placed.toLocaleString('en')} placed in this fill ` +
    `(${bySize(fill.placed, String)}), ${fill.addresses.toLocaleString('en')} addresses = ` +
    `${fill.fill.toFixed(4)} of the /16; each size first refused at fill ${bySize(fill.firstRefusedAt, (n) => n.toFixed(4))}`
  );
}

function printFragmentation(seed: number): FragmentationFigures {
  const figures = fragmentation(seed, CHURN_FRACTION);
  console.log(
    `pools (1) fragmentation, seed ${seed}: /22../26 pools sharing 10.0.0.0/16, a random size per node until ` +
      `every pool is full (ideal fill 1.0): ${fillText(figures.first)}`,
  );
  console.log(
    `pools (1) with churn, seed ${seed}: released ${figures.released} random nodes ` +
      `(${Math.round(CHURN_FRACTION * 100)}%) and filled again: ${fillText(figures.refill)}`,
  );
  return figures;
}

function ns(n: number): string {
  return n >= 10_000 ? `${(n / 1000).toFixed(1)} µs` : `${n.toFixed(0)} ns`;
}

function printCost(seed: number, scale: number, rounds: number): CostFigures {
  const n = Math.max(1000, Math.round(20_000 * scale));
  const figures = sharedCost(n, seed, rounds);
  const { shared, single } = figures;
  console.log(
    `pools (2) cost, ${n.toLocaleString('en')} allocations then as many releases (releaseUnheld), best of ${rounds}: ` +
      `SharedPools of /22../26 over 10.0.0.0/8 (random pool each) ${ns(shared.allocateNs)} per allocate, ` +
      `${ns(shared.releaseNs)} per release; one ClusterAllocator /8→/24 (baseline) ${ns(single.allocateNs)} and ` +
      `${ns(single.releaseNs)}; ratio ${(shared.allocateNs / single.allocateNs).toFixed(1)}× and ` +
      `${(shared.releaseNs / single.releaseNs).toFixed(1)}× the baseline.`,
  );
  return figures;
}

function runChild(kind: SelectorCase, nodes: number): SelectorFigures {
  // The parent's flags carry tsx's loader into the child.
  const run = spawnSync(process.execPath, [...process.execArgv, CHILD, kind, String(nodes)], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${kind} case exited ${run.status}: ${run.stderr.trim()}`);
  return JSON.parse(run.stdout) as SelectorFigures;
}

/** The least of each figure over the rounds: load from other processes only ever adds. */
function least(best: SelectorFigures | undefined, next: SelectorFigures): SelectorFigures {
  if (best === undefined) return next;
  return {
    ...best,
    ns: Math.min(best.ns, next.ns),
    cpuSeconds: Math.min(best.cpuSeconds, next.cpuSeconds),
    rssBytes: Math.min(best.rssBytes, next.rssBytes),
    heapBytes: Math.min(best.heapBytes, next.heapBytes),
  };
}

function printSelectors(scale: number, rounds: number): Record<SelectorCase, SelectorFigures> {
  const nodes = Math.max(1000, Math.round(50_000 * scale));
  const best: Partial<Record<SelectorCase, SelectorFigures>> = {};
  for (let round = 0; round < rounds; round++) {
    for (const kind of ['flags', 'pools'] as const) best[kind] = least(best[kind], runChild(kind, nodes));
  }
  const { flags, pools } = best;
  if (flags === undefined || pools === undefined) throw new Error('no rounds ran');
  const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  const rate = (f: SelectorFigures): number => f.nodes / (f.ns / 1e9);
  const line = (label: string, f: SelectorFigures): string =>
    `  ${label}: ${Math.round(rate(f)).toLocaleString('en')} allocations/s (${ns(f.ns / f.nodes)} each), ` +
    `${f.cpuSeconds.toFixed(3)} CPU s, RSS +${mib(f.rssBytes)}, heap +${mib(f.heapBytes)}`;
  console.log(
    `pools (3) ${nodes.toLocaleString('en')} nodes through PoolAllocator, each case in its own process, least of ${rounds}:`,
  );
  console.log(line('flags only, 10.0.0.0/8 at /24 (baseline)', flags));
  console.log(line('100 pools, nodeSelector pool-group In [gN], 10.2N.0.0/15 at /24', pools));
  const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');
  console.log(
    `  pools/baseline: time ${ratio(pools.ns, flags.ns)}, CPU ${ratio(pools.cpuSeconds, flags.cpuSeconds)}, ` +
      `RSS ${ratio(pools.rssBytes, flags.rssBytes)}, heap ${ratio(pools.heapBytes, flags.heapBytes)}`,
  );
  return { flags, pools };
}

export function printPoolRounds(seed: number, scale: number, rounds: number): PoolRounds {
  return {
    fragmentation: printFragmentation(seed),
    cost: printCost(seed, scale, rounds),
    selectors: printSelectors(scale, rounds),
  };
}
