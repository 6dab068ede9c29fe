// A controller (ours or upstream) started on a cluster that already holds Nodes, timed from spawn to a
// new node allocated, with the phases ours' log shows on the way (configured, node cache synced,
// allocations rebuilt).

import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { BenchApi } from './api.js';
import { startContestant, untilIdle } from './contestants.js';
import { fatNodeJson } from './fat-node.js';

export interface StartupOptions {
  readonly api: BenchApi;
  readonly kubeconfigPath: string;
  readonly binDir: string;
  /** Default ours. */
  readonly contestant?: 'ours' | 'upstream';
  readonly oursEntry?: string;
  readonly logPath: string;
  /** Name of the new node created at spawn; it must not exist yet. */
  readonly probe: string;
  readonly timeoutMs?: number;
}

export interface StartupResult {
  /** Spawn to the probe holding a podCIDR; undefined when it did not within the timeout. */
  readonly allocatedSeconds: number | undefined;
  /** Spawn to each of ours' log lines, in seconds; none for upstream, whose log is not JSON. */
  readonly phases: { configured?: number; synced?: number; rebuilt?: number };
  readonly peakRssMb: number;
  readonly cpuSeconds: number;
}

const PHASES = {
  configuration: 'configured',
  'node cache synced': 'synced',
  'rebuilt podCIDR allocations from nodes': 'rebuilt',
} as const;

export async function timeStartup(o: StartupOptions): Promise<StartupResult> {
  let allocatedAt: number | undefined;
  let done!: () => void;
  const allocated = new Promise<void>((resolve) => (done = resolve));
  const watch = o.api.watchAllocated({ fieldSelector: `metadata.name=${o.probe}` }, () => {
    allocatedAt = performance.now();
    done();
  });
  await watch.ready;
  const proc = startContestant({
    name: o.contestant ?? 'ours',
    kubeconfigPath: o.kubeconfigPath,
    limits: { name: 'lifted', qps: 10_000, burst: 10_000 },
    clusterCidr: '10.0.0.0/8',
    nodeCidrMaskSize: 24,
    workers: 30,
    binDir: o.binDir,
    oursEntry: o.oursEntry,
    logPath: o.logPath,
  });
  const spawnedAt = performance.now();
  const spawnedWall = Date.now();
  try {
    await o.api.createNode(fatNodeJson(o.probe, 0, 'list-probe'));
    await Promise.race([allocated, new Promise((resolve) => setTimeout(resolve, o.timeoutMs ?? 120_000))]);
    await untilIdle(proc);
  } finally {
    watch.stop();
    proc.usage();
    await proc.stop();
  }
  const allocatedSeconds = allocatedAt === undefined ? undefined : (allocatedAt - spawnedAt) / 1000;
  const { peakRssMb, cpuSeconds } = proc.usage();
  return { allocatedSeconds, phases: await phasesOf(o.logPath, spawnedWall), peakRssMb, cpuSeconds };
}

/** Seconds from spawn to the first log line of each phase, from the log's own timestamps. */
async function phasesOf(logPath: string, spawnedWall: number): Promise<StartupResult['phases']> {
  const phases: Record<string, number> = {};
  for (const line of (await readFile(logPath, 'utf8')).split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; time?: string };
    const phase = PHASES[entry.msg as keyof typeof PHASES] as string | undefined;
    if (phase === undefined || phases[phase] !== undefined || entry.time === undefined) continue;
    phases[phase] = (Date.parse(entry.time) - spawnedWall) / 1000;
  }
  return phases;
}
