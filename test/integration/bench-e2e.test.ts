// The end-to-end benchmark in small: raw client, upstream kube-controller-manager and podcidr-allocator
// each allocate 200 fat Nodes at equal QPS. Figures are printed; only complete allocation is asserted.
// Ours runs as shipped: the bundle that `npm run build` writes.

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BenchApi, clusterFromKubeconfig, type Cluster } from '../../hack/bench/e2e/api.js';
import type { ContestantName } from '../../hack/bench/e2e/contestants.js';
import { BENCH_LABEL } from '../../hack/bench/e2e/fat-node.js';
import { bundleProgram } from '../../hack/bundle.js';
import { runCase, type CaseResult } from '../../hack/bench/e2e/run-case.js';
import { formatTable } from '../../hack/bench/e2e/table.js';
import { controlPlane, describeWithControlPlane } from './harness.js';

const NODES = 200;
const CLUSTER_CIDR = '10.0.0.0/8';

describeWithControlPlane('bench:e2e at 200 nodes', () => {
  const results: CaseResult[] = [];
  let cluster: Cluster;
  let binDir: string;
  let logDir: string;
  let api: BenchApi;
  let oursEntry: string;
  const id = Date.now().toString(36);

  beforeAll(async () => {
    const cp = controlPlane();
    if (!cp.available) throw new Error(cp.reason);
    cluster = clusterFromKubeconfig(cp.kubeconfigPath);
    binDir = cp.binDir;
    logDir = await mkdtemp(join(tmpdir(), 'bench-e2e-'));
    oursEntry = await bundleProgram(join(logDir, 'bundle'));
    api = new BenchApi(cluster);
  }, 60_000);

  afterAll(async () => {
    console.log(`bench:e2e, ${NODES} nodes, qps 20 / burst 30 (shared control plane):\n${formatTable(results)}`);
    for (const r of results) await api.deleteNodes(`${BENCH_LABEL}=${label(r.contestant as ContestantName)}`);
    api.close();
    await rm(logDir, { recursive: true, force: true });
  });

  const label = (name: ContestantName): string => `ci-${name}-${id}`;

  async function run(name: ContestantName): Promise<CaseResult> {
    const result = await runCase({
      cluster,
      nodes: NODES,
      prefix: `bench-${name}-${id}`,
      runLabel: label(name),
      createConcurrency: 16,
      timeoutMs: 120_000,
      contestant: {
        name,
        limits: { name: 'equal', qps: 20, burst: 30 },
        clusterCidr: CLUSTER_CIDR,
        nodeCidrMaskSize: 24,
        workers: 30,
        binDir,
        oursEntry,
        logPath: join(logDir, `${name}.log`),
      },
    });
    results.push(result);
    await expectDistinctPodCIDRs(label(name));
    // The next contestant starts from a cluster without these nodes (their CIDRs would collide with raw's).
    await api.deleteNodes(`${BENCH_LABEL}=${label(name)}`);
    return result;
  }

  /** Every benchmark node holds exactly one podCIDR, and no two hold the same one. */
  async function expectDistinctPodCIDRs(runLabel: string): Promise<void> {
    const res = await api.send('GET', `/api/v1/nodes?labelSelector=${encodeURIComponent(`${BENCH_LABEL}=${runLabel}`)}`);
    const items = (JSON.parse(res.body) as { items: { spec?: { podCIDRs?: string[] } }[] }).items;
    const cidrs = items.flatMap((n) => n.spec?.podCIDRs ?? []);
    expect(items.length).toBe(NODES + 2);
    expect(cidrs.length).toBe(items.length);
    expect(new Set(cidrs).size).toBe(cidrs.length);
  }

  it('the raw client patches every node', { timeout: 300_000 }, async () => {
    const r = await run('raw');
    expect(r.allocated).toBe(NODES);
    expect(r.startupAllocated).toBe(true);
  });

  it.skipIf(!existsSync(join(controlPlane().available ? defaultBin() : '', 'kube-controller-manager')))(
    'upstream kube-controller-manager allocates every node',
    { timeout: 300_000 },
    async () => {
      const r = await run('upstream');
      expect(r.allocated).toBe(NODES);
      expect(r.startupAllocated).toBe(true);
    },
  );

  it('podcidr-allocator allocates every node, also after a restart among them', { timeout: 300_000 }, async () => {
    const r = await run('ours');
    expect(r.allocated).toBe(NODES);
    expect(r.startupAllocated).toBe(true);
  });
});

function defaultBin(): string {
  const cp = controlPlane();
  return cp.available ? cp.binDir : '';
}
