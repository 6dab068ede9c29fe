// `npm run bench:allocator`: the same allocator scenarios in TypeScript and in upstream's Go cidrset,
// printed as one table of ops/s and ratios. A benchmark that prints figures, never a pass/fail test.

// Usage: tsx hack/bench/allocator/bench.ts [--json out.json] [--seed N] [--scale F] [--rounds N] [--no-upstream] [--only pools]
// --only pools runs just the node-group pool rounds (pools-bench.ts), which follow the others otherwise.
// --scale multiplies operation counts (0.1 for a quick look); --rounds (default 3) alternates the sides. The Go program is built into
// ~/.cache/podcidr-allocator/bench/ (never into the repository).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, homedir, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CidrSet } from '../../../src/allocator/index.js';
import { reconcilerMemory } from './reconciler-memory.js';
import { churn, churnDualStack, fill, occupy, randomSubnets, type Metering, type ScenarioResult } from './scenarios.js';
import { parseRange } from '../../../src/allocator/range-spec.js';
import { printPoolRounds, type PoolRounds } from './pools-bench.js';

interface Scenario {
  readonly label: string;
  /** Our side, with the metrics the controller ships. */
  readonly ts: () => Promise<ScenarioResult>;
  /** Arguments for the Go program. */
  readonly go: readonly string[];
}

interface Row {
  readonly label: string;
  readonly ours: ScenarioResult;
  readonly upstream?: ScenarioResult;
  readonly upstreamError?: string;
}

const HACK_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const GO_BINARY = join(process.env.PODCIDR_ALLOCATOR_CACHE ?? join(homedir(), '.cache/podcidr-allocator'), 'bench/cidrset-go');

interface Options {
  json?: string;
  seed: number;
  scale: number;
  rounds: number;
  upstream: boolean;
  only?: 'pools';
}

function parseArgs(argv: readonly string[]): Options {
  const options: Options = { json: undefined, seed: 2463534242, scale: 1, rounds: 3, upstream: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') options.json = argv[++i];
    else if (arg === '--seed') options.seed = Number(argv[++i]);
    else if (arg === '--scale') options.scale = Number(argv[++i]);
    else if (arg === '--rounds') options.rounds = Number(argv[++i]);
    else if (arg === '--no-upstream') options.upstream = false;
    else if (arg === '--only') {
      if (argv[++i] !== 'pools') throw new Error('--only takes pools');
      options.only = 'pools';
    }
    else throw new Error(`unknown argument ${arg}`);
  }
  if (!Number.isInteger(options.seed) || options.seed <= 0 || options.seed > 0xffffffff) {
    throw new Error('--seed must be an integer in 1..2^32-1');
  }
  if (!(options.scale > 0)) throw new Error('--scale must be positive');
  if (!Number.isInteger(options.rounds) || options.rounds < 1) throw new Error('--rounds must be a positive integer');
  return options;
}

function buildGo(): string | undefined {
  const built = spawnSync('go', ['build', '-o', GO_BINARY, './bench/cidrset-go'], { cwd: HACK_DIR, encoding: 'utf8' });
  if (built.error !== undefined) return `go build failed: ${built.error.message}`;
  if (built.status !== 0) return `go build failed: ${built.stderr.trim()}`;
  return undefined;
}

function runGo(args: readonly string[]): ScenarioResult | string {
  const run = spawnSync(GO_BINARY, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (run.status !== 0) return `exit ${run.status}: ${run.stderr.trim()}`;
  const parsed = JSON.parse(run.stdout) as ScenarioResult & { error?: string };
  return parsed.error ?? parsed;
}

function scenarios(seed: number, scale: number, dir: string): Scenario[] {
  const metering = 'production';
  const churnOps = Math.max(1000, Math.round(1_000_000 * scale));
  const tightOps = Math.max(200, Math.round(20_000 * scale));
  const v4 = ['10.0.0.0/8', 24] as const;
  const v6 = ['fd00::/48', 64] as const;
  const v6Large = ['fd00::/44', 64] as const;
  const at = (capacity: number, fraction: number): number => Math.floor(capacity * fraction);
  const occupyFile = (name: string, texts: readonly string[]): string => {
    const file = join(dir, name);
    writeFileSync(file, `${texts.join('\n')}\n`);
    return file;
  };
  const v4Texts = randomSubnets(...v4, 50_000, seed);
  const v6Texts = randomSubnets(...v6, 50_000, seed);
  const v4File = occupyFile('occupy-v4.txt', v4Texts);
  const v6File = occupyFile('occupy-v6.txt', v6Texts);
  const churnArgs = (c: readonly [string, number], held: number, ops: number) => [
    '-scenario', 'churn', '-cluster', c[0], '-mask', String(c[1]), '-held', String(held),
    '-ops', String(ops), '-seed', String(seed), '-reps', '3',
  ];
  return [
    {
      label: '(a) fill all 65,536 /24 of a /8',
      ts: () => fill(...v4, 10, metering),
      go: ['-scenario', 'fill', '-cluster', v4[0], '-mask', String(v4[1]), '-reps', '10'],
    },
    {
      label: `(b) 90% IPv4 /8→/24: ${churnOps.toLocaleString('en')} release+allocate`,
      ts: () => churn(...v4, at(65_536, 0.9), churnOps, seed, 3, metering),
      go: churnArgs(v4, at(65_536, 0.9), churnOps),
    },
    {
      label: `(b) 90% IPv6 /48→/64: ${churnOps.toLocaleString('en')} release+allocate`,
      ts: () => churn(...v6, at(65_536, 0.9), churnOps, seed, 3, metering),
      go: churnArgs(v6, at(65_536, 0.9), churnOps),
    },
    {
      label: `(c) 99.99% IPv4 /8→/24: ${tightOps.toLocaleString('en')} release+allocate`,
      ts: () => churn(...v4, at(65_536, 0.9999), tightOps, seed, 3, metering),
      go: churnArgs(v4, at(65_536, 0.9999), tightOps),
    },
    {
      label: `(c) 99.99% IPv6 /44→/64 (2^20): ${tightOps.toLocaleString('en')} release+allocate`,
      ts: () => churn(...v6Large, at(2 ** 20, 0.9999), tightOps, seed, 3, metering),
      go: churnArgs(v6Large, at(2 ** 20, 0.9999), tightOps),
    },
    {
      label: '(d) occupy 50,000 IPv4 CIDR strings (restart)',
      ts: () => occupy(...v4, v4Texts, 5, metering),
      go: ['-scenario', 'occupy', '-cluster', v4[0], '-mask', String(v4[1]), '-file', v4File, '-reps', '5'],
    },
    {
      label: '(d) occupy 50,000 IPv6 CIDR strings (restart)',
      ts: () => occupy(...v6, v6Texts, 5, metering),
      go: ['-scenario', 'occupy', '-cluster', v6[0], '-mask', String(v6[1]), '-file', v6File, '-reps', '5'],
    },
  ];
}

function faster(best: ScenarioResult | undefined, next: ScenarioResult): ScenarioResult {
  if (best !== undefined && best.checksum !== next.checksum) throw new Error('a scenario gave two different results');
  return best === undefined || next.bestNs < best.bestNs ? next : best;
}

function formatRate(r: ScenarioResult | undefined): string {
  if (r === undefined) return 'n/a';
  return Math.round(r.opsPerSecond).toLocaleString('en');
}

function formatNs(r: ScenarioResult | undefined): string {
  if (r === undefined) return 'n/a';
  const ns = r.bestNs / r.ops;
  return ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(0)} ns`;
}

function printTable(rows: readonly Row[]): void {
  const header = ['scenario', 'upstream ops/s', 'per op', 'ours ops/s', 'per op', 'ours/upstream', 'same result'];
  const lines = rows.map((row) => [
    row.label,
    formatRate(row.upstream),
    formatNs(row.upstream),
    formatRate(row.ours),
    formatNs(row.ours),
    row.upstream === undefined ? 'n/a' : `${(row.ours.opsPerSecond / row.upstream.opsPerSecond).toFixed(1)}×`,
    row.upstream === undefined ? 'n/a' : row.upstream.checksum === row.ours.checksum ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const render = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ');
  console.log(render(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const line of lines) console.log(render(line));
  for (const row of rows) {
    if (row.upstreamError !== undefined) console.log(`upstream n/a for ${row.label}: ${row.upstreamError}`);
  }
}

/**
 * What the metrics cost in (b) IPv4 (200,000 ops at scale 1): as shipped, without metrics, and with the
 * same series updated through prom-client on every event (why the shipped observer tallies instead).
 * The three alternate within each round so that load from other processes hits them alike.
 */
async function printMetricsNote(seed: number, scale: number, rounds: number): Promise<void> {
  const ops = Math.max(1000, Math.round(200_000 * scale));
  const held = Math.floor(65_536 * 0.9);
  const meterings = ['production', 'none', 'prom-client'] as const;
  const best = new Map<Metering, ScenarioResult>();
  for (let round = 0; round < rounds; round++) {
    for (const metering of meterings) {
      best.set(metering, faster(best.get(metering), await churn('10.0.0.0/8', 24, held, ops, seed, 3, metering)));
    }
  }
  console.log(
    `note: ours runs with upstream's cidrset metrics as shipped (tallied per range, handed to prom-client at ` +
      `scrape). (b) IPv4 per op, ${ops.toLocaleString('en')} ops: ${formatNs(best.get('production'))} as shipped, ` +
      `${formatNs(best.get('none'))} without metrics, ${formatNs(best.get('prom-client'))} with prom-client ` +
      `inc()/observe() on every event.`,
  );
}

/**
 * Dual-stack allocate (one subnet per family, all or nothing) against IPv4 alone, in (b)'s shape:
 * 200,000 release+allocate rounds at scale 1 on IPv4 /8→/24 plus IPv6 /48→/64, 90% held. Upstream
 * has no dual-stack cidrset; the two sides alternate within each round.
 */
async function printDualStackNote(seed: number, scale: number, rounds: number): Promise<void> {
  const ops = Math.max(1000, Math.round(200_000 * scale));
  const held = Math.floor(65_536 * 0.9);
  const v6 = parseRange('fd00::/48', 64);
  let single: ScenarioResult | undefined;
  let dual: ScenarioResult | undefined;
  for (let round = 0; round < rounds; round++) {
    single = faster(single, await churn('10.0.0.0/8', 24, held, ops, seed, 3, 'production'));
    dual = faster(dual, await churnDualStack('10.0.0.0/8', 24, v6, held, ops, seed, 3, 'production'));
  }
  const ratio = single === undefined || dual === undefined ? 'n/a' : `${(single.opsPerSecond / dual.opsPerSecond).toFixed(2)}×`;
  console.log(
    `note: dual-stack IPv4+IPv6 release+allocate of a pair, ${ops.toLocaleString('en')} ops: ${formatNs(dual)} per op, ` +
      `${ratio} IPv4 alone (${formatNs(single)}).`,
  );
}

/** Memory of one range holding 2^24 subnets (IPv6 /40 cut into /64): the bitmap and its summaries. */
function printMemoryNote(): void {
  const before = process.memoryUsage().arrayBuffers;
  const set = new CidrSet('fd00::/40', 64);
  const bytes = process.memoryUsage().arrayBuffers - before;
  console.log(
    `note: a range of ${set.capacity.toLocaleString('en')} subnets (${set.clusterCIDR} with /64 nodes) takes ` +
      `${(bytes / 2 ** 20).toFixed(2)} MiB of bitmap (bits/8 = ${(set.capacity / 8 / 2 ** 20).toFixed(2)} MiB).`,
  );
}

/** Heap the reconciler keeps for 50,000 Nodes (one podCIDR each), against the NodeInfo list it reads. */
async function printReconcilerMemoryNote(): Promise<void> {
  const m = await reconcilerMemory(50_000);
  const ratio = (bytes: number): string => `${(bytes / m.nodeInfoBytes).toFixed(2)}×`;
  console.log(
    `note: the reconciler of ${m.nodes.toLocaleString('en')} nodes keeps ${m.rebuiltBytes.toFixed(0)} B a node after a ` +
      `rebuild (${ratio(m.rebuiltBytes)} the NodeInfo list, ${m.nodeInfoBytes.toFixed(0)} B a node) and ` +
      `${m.allocatedBytes.toFixed(0)} B a node after allocating to them (${ratio(m.allocatedBytes)}).`,
  );
}

/** The allocator table against upstream and its notes. */
async function allocatorRounds(options: Options): Promise<Row[]> {
  const goProblem = options.upstream ? buildGo() : 'skipped (--no-upstream)';
  if (goProblem !== undefined) console.log(`upstream: ${goProblem}`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-allocator-'));
  const rows: Row[] = [];
  try {
    for (const scenario of scenarios(options.seed, options.scale, dir)) {
      // Rounds alternate the two sides so that load from other processes hits both alike; the
      // fastest run of each side counts.
      let upstream: ScenarioResult | undefined;
      let upstreamError = goProblem;
      let ours: ScenarioResult | undefined;
      for (let round = 0; round < options.rounds; round++) {
        if (upstreamError === undefined) {
          const outcome = runGo(scenario.go);
          if (typeof outcome === 'string') upstreamError = outcome;
          else upstream = faster(upstream, outcome);
        }
        ours = faster(ours, await scenario.ts());
        process.stderr.write('.');
      }
      if (ours === undefined) throw new Error('no rounds ran');
      rows.push({ label: scenario.label, ours, upstream: upstreamError === undefined ? upstream : undefined, upstreamError });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.stderr.write('\n');
  printTable(rows);
  await printMetricsNote(options.seed, options.scale, options.rounds);
  await printDualStackNote(options.seed, options.scale, options.rounds);
  printMemoryNote();
  await printReconcilerMemoryNote();
  return rows;
}

/** Maps as plain objects, for --json. */
function jsonPools(pools: PoolRounds): unknown {
  return JSON.parse(JSON.stringify(pools, (_, value: unknown) => (value instanceof Map ? Object.fromEntries(value) : value)));
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const [load1] = loadavg();
  console.log(
    `node ${process.version}, ${cpus().length} CPU(s) (${cpus()[0]?.model ?? 'unknown'}), load average ${load1?.toFixed(2)}; ` +
      `seed ${options.seed}, scale ${options.scale}, ${options.rounds} round(s)`,
  );
  const rows = options.only === 'pools' ? [] : await allocatorRounds(options);
  const pools = printPoolRounds(options.seed, options.scale, options.rounds);
  if (options.json !== undefined) {
    const report = { seed: options.seed, scale: options.scale, rounds: options.rounds, loadAverage: loadavg(), rows, pools: jsonPools(pools) };
    writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`wrote ${options.json}`);
  }
}

await main();
