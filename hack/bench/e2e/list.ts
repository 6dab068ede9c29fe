// npm run bench:list [-- --nodes 50000]: how long one full Node list takes, the floor under a restart,
// and the controllers' startup on the same Nodes in the same rounds. Fat Nodes holding podCIDRs, then
// protobuf lists in pages of several sizes, with and without decoding, once read by curl and once as
// metadata alone; then ours and upstream started, each timed to a new node. The API server's CPU is
// shown for each list.

import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { createKubeClient, type KubeClient } from '../../../src/kube/client.js';
import { loadKubeConfig } from '../../../src/kube/config.js';
import { NodeListDecoder, PROTOBUF_CONTENT_TYPE } from '../../../src/kube/node-protobuf.js';
import { startControlPlane, type ControlPlane } from '../../lib/control-plane.js';
import { bundleProgram } from '../../bundle.js';
import { BenchApi, clusterFromKubeconfig } from './api.js';
import { readUsage, REPO } from './contestants.js';
import { fatNodeJson } from './fat-node.js';
import { timeStartup, type StartupResult } from './startup.js';

const argv = await yargs(hideBin(process.argv))
  .option('nodes', { type: 'number', default: 50_000 })
  .option('pages', { type: 'string', default: '500,5000,0', describe: 'page sizes; 0 lists in one page' })
  .option('rounds', { type: 'number', default: 2, describe: 'times each list is repeated, in rounds' })
  .option('startup', { type: 'boolean', default: true, describe: 'each round, also time the controllers\' startup to a new node' })
  .option('contestants', { type: 'string', default: 'ours,upstream', describe: 'whose startup is timed: ours, upstream' })
  .option('curl', { type: 'boolean', default: true, describe: 'each round, also the one-page list read by curl into /dev/null' })
  .option('metadata', { type: 'boolean', default: true, describe: 'each round, also the one-page list of metadata alone (no spec, no status)' })
  .strict()
  .parse();

const contestants = argv.contestants.split(',').map((name) => {
  if (name !== 'ours' && name !== 'upstream') throw new Error(`--contestants: unknown contestant ${name}`);
  return name;
});
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
  const oursEntry = argv.startup && contestants.includes('ours') ? await bundleProgram(join(OUT_DIR, 'list-build')) : undefined;
  const useCurl = argv.curl && (await hasCurl());
  const startups: { round: number; contestant: string; result: StartupResult }[] = [];
  const floors: number[] = [];
  console.log('round  page size  reader  pages  nodes  MB received  seconds  API server CPU  reader CPU');
  for (let round = 1; round <= argv.rounds; round++) {
    for (const pageSize of argv.pages.split(',').map(Number)) {
      // Undecoded pages give no continue token, so only the one-page list is timed both ways.
      for (const decode of pageSize === 0 ? [false, true] : [true]) {
        const r = await measured(() => listAll(client, pageSize, decode));
        if (!decode) floors.push(r.seconds);
        printList(round, pageSize || 'all', decode ? 'ours, decoded' : 'ours, bytes only', r);
      }
    }
    if (useCurl) printList(round, 'all', 'curl', await measured(() => curlList(cp)));
    if (argv.metadata) printList(round, 'all', 'metadata only', await measured(() => listMetadata(client)));
    if (!argv.startup) continue;
    for (const contestant of contestants) {
      const logPath = join(OUT_DIR, `list-${STAMP}-startup-${contestant}-${round}.log`);
      const probe = `listed-probe-${contestant}-${round}`;
      const result = await timeStartup({ api, kubeconfigPath: cp.kubeconfigPath, binDir: cp.binDir, contestant, oursEntry, logPath, probe });
      startups.push({ round, contestant, result });
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

interface ListResult {
  readonly pages: number;
  readonly nodes: number | undefined;
  readonly bytes: number;
  /** CPU of whoever read the list: this process, or curl. */
  readonly readerCpuSeconds: number;
}

type Measured = ListResult & { seconds: number; apiServerCpuSeconds: number };

/** Wall time and the API server's CPU around one list. */
async function measured(list: () => Promise<ListResult>): Promise<Measured> {
  const apiServerCpu = (): number => {
    const pid = cp.pids().apiServer;
    return pid === undefined ? NaN : (readUsage(pid)?.cpuSeconds ?? NaN);
  };
  const cpuBefore = apiServerCpu();
  const started = performance.now();
  const r = await list();
  return { ...r, seconds: (performance.now() - started) / 1000, apiServerCpuSeconds: apiServerCpu() - cpuBefore };
}

function printList(round: number, pageSize: number | string, reader: string, r: Measured): void {
  const cells = [round, pageSize, reader, r.pages, r.nodes ?? '-', (r.bytes / 1e6).toFixed(0), r.seconds.toFixed(2),
    r.apiServerCpuSeconds.toFixed(2), r.readerCpuSeconds.toFixed(2)];
  console.log(cells.join('  '));
}

/** Without decoding the bytes are only counted: what is left is the API server and the transfer. */
async function listAll(client: KubeClient, pageSize: number, decode: boolean): Promise<ListResult> {
  const cpuBefore = process.cpuUsage();
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
  const cpu = process.cpuUsage(cpuBefore);
  return { pages, nodes: decode ? nodes : undefined, bytes, readerCpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/**
 * The Nodes' metadata alone, as PartialObjectMetadataList: what a list costs without the status, and
 * without the spec that holds the podCIDRs. Bytes only; it shows how much of the list the status is.
 */
async function listMetadata(client: KubeClient): Promise<ListResult> {
  const cpuBefore = process.cpuUsage();
  let bytes = 0;
  let head = '';
  const accept = `${PROTOBUF_CONTENT_TYPE};as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`;
  const response = await client.getStreamed('/api/v1/nodes', { query: {}, accept }, (chunk) => {
    if (bytes === 0) head = Buffer.from(chunk.subarray(0, 200)).toString('latin1');
    bytes += chunk.byteLength;
  });
  if (response.status !== 200) throw new Error(`list node metadata: HTTP ${response.status}`);
  // The envelope's type names the kind; the content type does not carry it.
  if (!head.includes('PartialObjectMetadataList')) throw new Error('list node metadata: the server sent whole Nodes');
  const cpu = process.cpuUsage(cpuBefore);
  return { pages: 1, nodes: undefined, bytes, readerCpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/** The same one-page list read by curl (OpenSSL, C) into /dev/null: the floor without Node.js. */
async function curlList(controlPlane: ControlPlane): Promise<ListResult> {
  const f = controlPlane.files;
  const args = ['-sS', '--fail', '--cacert', f.caCert, '--cert', f.adminCert, '--key', f.adminKey,
    '-H', `Accept: ${PROTOBUF_CONTENT_TYPE}`, '-o', '/dev/null', '-w', '%{size_download}\\n', `${controlPlane.server}/api/v1/nodes`];
  // bash's "times" prints the shell's CPU, then its children's (curl's), as "0m1.234s 0m0.567s".
  const out = await run('bash', ['-c', 'curl "$@" && times', 'bash', ...args]);
  const [size, , children] = out.trim().split('\n');
  const [user, system] = [...(children ?? '').matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return { pages: 1, nodes: undefined, bytes: Number(size), readerCpuSeconds: (user ?? NaN) + (system ?? NaN) };
}

async function hasCurl(): Promise<boolean> {
  try {
    await run('curl', ['--version']);
    return true;
  } catch {
    log('curl not found: its list is left out');
    return false;
  }
}

function run(file: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, (error, stdout, stderr) => (error ? reject(new Error(`${file}: ${stderr || error.message}`)) : resolve(stdout)));
  });
}

/** Each controller's startup next to the round's undecoded one-page list, the bytes' floor. */
function printStartups(startups: readonly { round: number; contestant: string; result: StartupResult }[], floors: readonly number[]): void {
  if (startups.length === 0) return;
  console.log('\nround  controller  new node allocated  configured  synced  rebuilt  peak RSS  CPU  list floor  startup/floor');
  for (const { round, contestant, result: s } of startups) {
    const floor = floors[round - 1] ?? NaN;
    const at = (t: number | undefined): string => (t === undefined ? '-' : `${t.toFixed(2)} s`);
    const cells = [round, contestant, at(s.allocatedSeconds), at(s.phases.configured), at(s.phases.synced), at(s.phases.rebuilt),
      `${s.peakRssMb.toFixed(0)} MB`, `${s.cpuSeconds.toFixed(1)} s`, `${floor.toFixed(2)} s`, ((s.allocatedSeconds ?? NaN) / floor).toFixed(2)];
    console.log(cells.join('  '));
  }
}
