// npm run bench:e2e [-- --nodes 1000,5000] [--big]: raw client, upstream kube-controller-manager and
// podcidr-allocator allocating the same fat Nodes on a local API server; prints a table, writes JSON.

import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { bundleProgram } from '../../bundle.js';
import { startControlPlane } from '../../lib/control-plane.js';
import { clusterFromKubeconfig } from './api.js';
import { ALL_CONTESTANTS, CONTESTANTS, type ContestantName, type Limits, REPO } from './contestants.js';
import { runCase, type CaseResult } from './run-case.js';
import { formatTable } from './table.js';

const argv = await yargs(hideBin(process.argv))
  .option('nodes', { type: 'string', default: '1000,5000', describe: 'comma-separated node counts' })
  .option('big', { type: 'boolean', default: false, describe: 'also run 50,000 nodes' })
  .option('limits', { type: 'string', default: 'equal,lifted', describe: 'equal (qps 20/burst 30), lifted (10000/10000)' })
  .option('contestants', { type: 'string', default: CONTESTANTS.join(','), describe: ALL_CONTESTANTS.join(',') })
  .option('create-concurrency', { type: 'number', default: 32 })
  .option('workers', { type: 'number', default: 30, describe: 'patches in flight, all contestants' })
  .option('from-source', { type: 'boolean', default: false, describe: 'run ours through tsx instead of a build' })
  .option('ours-entry', { type: 'string', describe: 'a built main.js to run as ours (e.g. an older build to compare)' })
  .option('ours-node-args', { type: 'string', describe: "space-separated node flags for ours; default the image's and the Deployment's" })
  .option('out', { type: 'string', describe: 'JSON results path; default bench-results/e2e-<time>.json' })
  .strict()
  .parse();

const LIMITS: Record<string, Limits> = {
  equal: { name: 'equal', qps: 20, burst: 30 },
  lifted: { name: 'lifted', qps: 10_000, burst: 10_000 },
};
const CLUSTER_CIDR = '10.0.0.0/8';
const MASK = 24;

const counts = argv.nodes.split(',').map(Number).filter((n) => n > 0);
if (argv.big && !counts.includes(50_000)) counts.push(50_000);
const limits = argv.limits.split(',').map((name) => {
  const l = LIMITS[name];
  if (l === undefined) throw new Error(`unknown --limits ${name}`);
  return l;
});
const contestants = argv.contestants.split(',').map((name) => {
  if (!(ALL_CONTESTANTS as readonly string[]).includes(name)) throw new Error(`unknown contestant ${name}`);
  return name as ContestantName;
});
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outDir = join(REPO, 'bench-results');
const logDir = join(outDir, `e2e-${stamp}`);
const outPath = argv.out ?? join(outDir, `e2e-${stamp}.json`);
await mkdir(logDir, { recursive: true });
const log = (line: string): void => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

const oursEntry = argv['ours-entry'] ?? (argv['from-source'] ? undefined : await buildOurs());
const results: (CaseResult & { loadAvgBefore: number[]; loadAvgAfter: number[] })[] = [];

for (const nodes of counts) {
  for (const limit of limits) {
    for (const name of contestants) {
      // A fresh control plane per contestant: the same empty etcd and watch cache for each, no
      // delete storm or compaction from the previous one running under the next one's clock.
      const cp = await startControlPlane({
        maxRequestsInflight: 4000,
        maxMutatingRequestsInflight: 2000,
        etcdQuotaBytes: 8 * 2 ** 30,
        log,
      });
      const loadAvgBefore = loadavg();
      try {
        const result = await runCase({
          cluster: clusterFromKubeconfig(cp.kubeconfigPath),
          nodes,
          prefix: `bench-${name}`,
          runLabel: `${name}-${limit.name}-${nodes}`,
          createConcurrency: argv['create-concurrency'],
          timeoutMs: Math.max(180_000, (4 * nodes * 1000) / limit.qps + 120_000),
          contestant: {
            name,
            limits: limit,
            clusterCidr: CLUSTER_CIDR,
            nodeCidrMaskSize: MASK,
            workers: argv.workers,
            binDir: cp.binDir,
            oursEntry,
            oursNodeArgs: argv['ours-node-args']?.split(' ').filter((a) => a !== ''),
            logPath: join(logDir, `${name}-${limit.name}-${nodes}.log`),
          },
          log,
        });
        results.push({ ...result, loadAvgBefore, loadAvgAfter: loadavg() });
        await writeFile(outPath, JSON.stringify({ clusterCidr: CLUSTER_CIDR, mask: MASK, results }, null, 2));
      } finally {
        await cp.stop();
      }
    }
    console.log(formatTable(results.filter((r) => r.nodes === nodes && r.limits === limit.name)));
  }
}
console.log(`\nall cases:\n${formatTable(results)}`);
console.log(`results: ${outPath}\nlogs: ${logDir}`);

/** Bundles src/ once into bench-results/ as `npm run build` does, so ours runs as shipped (no tsx loader in its memory). */
async function buildOurs(): Promise<string> {
  log('bundling podcidr-allocator for the benchmark');
  return bundleProgram(join(outDir, 'e2e-build'));
}
