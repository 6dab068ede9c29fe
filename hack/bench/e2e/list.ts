// npm run bench:list [-- --nodes 50000]: how long one full Node list takes, the floor under a restart,
// and ours' startup on the same Nodes in the same rounds. Fat Nodes holding podCIDRs, then protobuf
// lists in pages of several sizes, with and without decoding; then ours started, timed to a new node.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { createKubeClient, type KubeClient } from '../../../src/kube/client.js';
import { loadKubeConfig } from '../../../src/kube/config.js';
import { NodeListDecoder, PROTOBUF_CONTENT_TYPE } from '../../../src/kube/node-protobuf.js';
import { startControlPlane } from '../../lib/control-plane.js';
import { bundleProgram } from '../../bundle.js';
import { BenchApi, clusterFromKubeconfig } from './api.js';
import { REPO } from './contestants.js';
import { fatNodeJson } from './fat-node.js';
import { timeStartup, type StartupResult } from './startup.js';

const argv = await yargs(hideBin(process.argv))
  .option('nodes', { type: 'number', default: 50_000 })
  .option('pages', { type: 'string', default: '500,5000,0', describe: 'page sizes; 0 lists in one page' })
  .option('rounds', { type: 'number', default: 2, describe: 'times each list is repeated, in rounds' })
  .option('startup', { type: 'boolean', default: true, describe: "each round, also time ours' startup to a new node" })
  .strict()
  .parse();

const OUT_DIR = join(REPO, 'bench-results');
const STAMP = new Date().toISOString().replace(/[:.]/g, '-');
await mkdir(OUT_DIR, { recursive: true });
const log = (line: string): void => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
const cp = await startControlPlane({ maxRequestsInflight: 4000, maxMutatingRequestsInflight: 2000, etcdQuotaBytes: 8 * 2 ** 30, log });
const api = new BenchApi(clusterFromKubeconfig(cp.kubeconfigPath), 32);
try {
  const created = performance.now();
  await api.createNodes(0, argv.nodes, 32, (i) => withPodCIDR(fatNodeJson(`listed-${i}`, i, 'list'), i));
  log(`created ${argv.nodes} nodes in ${((performance.now() - created) / 1000).toFixed(1)} s`);
  const client = createKubeClient(await loadKubeConfig({ kubeconfig: cp.kubeconfigPath }, { env: {} }), { qps: 10_000, burst: 10_000 });
  // Warm-up: the connection and the API server's first-request costs stay out of the figures.
  await client.getStreamed('/api/v1/nodes', { query: { limit: 1 }, accept: PROTOBUF_CONTENT_TYPE }, () => undefined);
  const oursEntry = argv.startup ? await bundleProgram(join(OUT_DIR, 'list-build')) : undefined;
  const startups: StartupResult[] = [];
  const floors: number[] = [];
  console.log('round  page size  decode  pages  nodes  MB received  seconds');
  for (let round = 1; round <= argv.rounds; round++) {
    for (const pageSize of argv.pages.split(',').map(Number)) {
      // Undecoded pages give no continue token, so only the one-page list is timed both ways.
      for (const decode of pageSize === 0 ? [false, true] : [true]) {
        const r = await listAll(client, pageSize, decode);
        if (!decode) floors.push(r.seconds);
        const cells = [round, pageSize || 'all', decode ? 'yes' : 'no', r.pages, r.nodes, (r.bytes / 1e6).toFixed(0), r.seconds.toFixed(2)];
        console.log(cells.join('  '));
      }
    }
    if (oursEntry !== undefined) {
      const logPath = join(OUT_DIR, `list-${STAMP}-startup-${round}.log`);
      startups.push(await timeStartup({ api, kubeconfigPath: cp.kubeconfigPath, binDir: cp.binDir, oursEntry, logPath, probe: `listed-probe-${round}` }));
    }
  }
  printStartups(startups, floors);
} finally {
  api.close();
  await cp.stop();
}

/** Nodes that already hold a podCIDR, as after a restart: no allocator needed to set them up. */
function withPodCIDR(json: string, i: number): string {
  const node = JSON.parse(json) as { spec: Record<string, unknown> };
  const cidr = `10.${(i >> 8) & 255}.${i & 255}.0/24`;
  node.spec.podCIDR = cidr;
  node.spec.podCIDRs = [cidr];
  return JSON.stringify(node);
}

/** Without decoding the bytes are only counted: what is left is the API server and the transfer. */
async function listAll(client: KubeClient, pageSize: number, decode: boolean) {
  const started = performance.now();
  let continueToken: string | undefined;
  let pages = 0;
  let nodes = 0;
  let bytes = 0;
  do {
    const decoder = new NodeListDecoder();
    const query = { limit: pageSize > 0 ? pageSize : undefined, continue: continueToken };
    const response = await client.getStreamed('/api/v1/nodes', { query, accept: PROTOBUF_CONTENT_TYPE }, (chunk) => {
      bytes += chunk.byteLength;
      if (decode) decoder.push(chunk);
    });
    if (response.status !== 200) throw new Error(`list nodes: HTTP ${response.status}`);
    pages += 1;
    if (decode) {
      const list = decoder.finish();
      nodes += list.nodes.length;
      continueToken = list.continueToken;
    }
  } while (continueToken !== undefined);
  return { pages, nodes, bytes, seconds: (performance.now() - started) / 1000 };
}

/** Ours' startup next to the round's undecoded one-page list, the bytes' floor. */
function printStartups(startups: readonly StartupResult[], floors: readonly number[]): void {
  if (startups.length === 0) return;
  console.log('\nround  ours: new node allocated  configured  synced  rebuilt  peak RSS  CPU  list floor  startup/floor');
  startups.forEach((s, i) => {
    const floor = floors[i] ?? NaN;
    const at = (t: number | undefined): string => (t === undefined ? '-' : `${t.toFixed(2)} s`);
    const cells = [i + 1, at(s.allocatedSeconds), at(s.phases.configured), at(s.phases.synced), at(s.phases.rebuilt),
      `${s.peakRssMb.toFixed(0)} MB`, `${s.cpuSeconds.toFixed(1)} s`, `${floor.toFixed(2)} s`, ((s.allocatedSeconds ?? NaN) / floor).toFixed(2)];
    console.log(cells.join('  '));
  });
}
