// One contestant on one cluster: warm-up node, N nodes created at once, then a restart with the N
// nodes in place. Measures by watching the API server, never by asking the contestant.

import { performance } from 'node:perf_hooks';
import { BenchApi, type Cluster } from './api.js';
import { type ContestantOptions, startContestant, untilIdle, type Running } from './contestants.js';
import { BENCH_LABEL, fatNodeJson } from './fat-node.js';

export interface CaseOptions {
  readonly cluster: Cluster;
  readonly nodes: number;
  /** Node names are `<prefix>-<i>`; nodes carry BENCH_LABEL=<runLabel>. */
  readonly prefix: string;
  readonly runLabel: string;
  /** Creates in flight from the bench's own client. */
  readonly createConcurrency: number;
  /** Everything but the cluster's kubeconfig and the selector, which this case fills in. */
  readonly contestant: Omit<ContestantOptions, 'kubeconfigPath' | 'labelSelector'>;
  /** Gives up waiting for allocation after this long. */
  readonly timeoutMs: number;
  readonly log?: (line: string) => void;
}

export interface CaseResult {
  readonly contestant: string;
  readonly limits: string;
  readonly nodes: number;
  /** Nodes seen with a podCIDR (must equal nodes). */
  readonly allocated: number;
  /** Process start on an empty cluster → warm-up node allocated. */
  readonly coldStartSeconds: number;
  /** First create sent → last create answered. */
  readonly createSeconds: number;
  /** First create sent → every node holding a podCIDR. */
  readonly allocateSeconds: number;
  readonly nodesPerSecond: number;
  readonly peakRssMb: number;
  readonly cpuSeconds: number;
  /** Restarted with the N nodes in place: process start → a new node allocated. */
  readonly startupSeconds: number;
  readonly startupPeakRssMb: number;
  readonly startupAllocated: boolean;
}

const WARMUP = 'warmup';
const PROBE = 'probe';

export async function runCase(o: CaseOptions): Promise<CaseResult> {
  const log = o.log ?? (() => undefined);
  const api = new BenchApi(o.cluster, o.createConcurrency);
  const selector = `${BENCH_LABEL}=${o.runLabel}`;
  const body = (i: number, name = `${o.prefix}-${i}`): string => fatNodeJson(name, i, o.runLabel);
  const start = (): Running =>
    startContestant({ ...o.contestant, kubeconfigPath: o.cluster.kubeconfigPath, labelSelector: selector });
  try {
    // Cold start and readiness in one: the warm-up node is allocated only once the contestant works.
    let proc = start();
    const started = performance.now();
    const warmName = `${o.prefix}-${WARMUP}-${o.nodes}`;
    const warm = await allocateOne(api, o, warmName, body(o.nodes, warmName), proc);
    if (warm === undefined) throw new Error(`${o.contestant.name}: warm-up node not allocated within ${o.timeoutMs} ms`);
    const coldStartSeconds = (warm - started) / 1000;
    log(`${o.contestant.name}: ready after ${coldStartSeconds.toFixed(2)} s; creating ${o.nodes} nodes`);

    const main = await allocateMany(api, o, selector, body, proc);
    const usage = proc.usage();
    await proc.stop();
    log(`${o.contestant.name}: ${main.allocated}/${o.nodes} allocated in ${main.allocateSeconds.toFixed(2)} s (created in ${main.createSeconds.toFixed(2)} s), peak RSS ${usage.peakRssMb.toFixed(0)} MB`);

    proc = start();
    const restarted = performance.now();
    const probeName = `${o.prefix}-${PROBE}-${o.nodes + 1}`;
    const probe = await allocateOne(api, o, probeName, body(o.nodes + 1, probeName), proc);
    const startupSeconds = ((probe ?? performance.now()) - restarted) / 1000;
    await untilIdle(proc);
    const startupUsage = proc.usage();
    await proc.stop();
    log(`${o.contestant.name}: restart with ${o.nodes} nodes: new node allocated after ${startupSeconds.toFixed(2)} s, peak RSS ${startupUsage.peakRssMb.toFixed(0)} MB`);
    return {
      contestant: o.contestant.name,
      limits: o.contestant.limits.name,
      nodes: o.nodes,
      allocated: main.allocated,
      coldStartSeconds,
      createSeconds: main.createSeconds,
      allocateSeconds: main.allocateSeconds,
      nodesPerSecond: main.allocated / main.allocateSeconds,
      peakRssMb: usage.peakRssMb,
      cpuSeconds: usage.cpuSeconds,
      startupSeconds,
      startupPeakRssMb: startupUsage.peakRssMb,
      startupAllocated: probe !== undefined,
    };
  } finally {
    api.close();
  }
}

/** Creates one node right away; resolves when it holds a podCIDR, undefined on timeout or if the contestant died. */
async function allocateOne(api: BenchApi, o: CaseOptions, name: string, json: string, proc: Running): Promise<number | undefined> {
  let at = 0;
  let done!: () => void;
  const allocated = new Promise<void>((r) => (done = r));
  const watch = api.watchAllocated({ fieldSelector: `metadata.name=${name}` }, () => {
    at = performance.now();
    done();
  });
  try {
    await watch.ready;
    await api.createNode(json);
    return (await until(allocated, o.timeoutMs, proc)) ? at : undefined;
  } finally {
    watch.stop();
  }
}

async function allocateMany(
  api: BenchApi,
  o: CaseOptions,
  selector: string,
  body: (i: number) => string,
  proc: Running,
): Promise<{ allocated: number; createSeconds: number; allocateSeconds: number }> {
  const names = new Set(Array.from({ length: o.nodes }, (_, i) => `${o.prefix}-${i}`));
  let allocated = 0;
  let lastAt = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const watch = api.watchAllocated({ labelSelector: selector }, (name) => {
    if (!names.has(name)) return;
    allocated += 1;
    lastAt = performance.now();
    if (allocated === o.nodes) done();
  });
  try {
    await watch.ready;
    const t0 = performance.now();
    await api.createNodes(0, o.nodes, o.createConcurrency, body);
    const createSeconds = (performance.now() - t0) / 1000;
    await until(all, o.timeoutMs, proc);
    return { allocated, createSeconds, allocateSeconds: ((allocated === o.nodes ? lastAt : performance.now()) - t0) / 1000 };
  } finally {
    watch.stop();
  }
}

/** Resolves true when p settles in time, false on timeout or when the contestant exits. */
async function until(p: Promise<void>, timeoutMs: number, proc: Running): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  let settled = false;
  void p.then(() => (settled = true));
  while (!settled) {
    if (proc.exited() || performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}
