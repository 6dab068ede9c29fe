// The "raw" contestant: watches Nodes and patches each one without a podCIDR with a precomputed CIDR,
// over plain keep-alive HTTPS (resuming its watch when the server ends it). No allocator, no cache, no checks: what the API server itself allows.
// Run: tsx hack/bench/e2e/raw.ts <kubeconfig> <qps> <burst> <workers> [labelSelector]

import { TokenBucket } from '../../../src/time.js';
import { BenchApi, clusterFromKubeconfig } from './api.js';
import { precomputedCidr } from './fat-node.js';

const [kubeconfig, qpsText, burstText, workersText, labelSelector] = process.argv.slice(2);
if (kubeconfig === undefined || qpsText === undefined || burstText === undefined || workersText === undefined) {
  throw new Error('usage: raw.ts <kubeconfig> <qps> <burst> <workers> [labelSelector]');
}
const workers = Number(workersText);
const api = new BenchApi(clusterFromKubeconfig(kubeconfig), workers);
const bucket = new TokenBucket(Number(qpsText), Number(burstText));

const queue: string[] = [];
const queued = new Set<string>();
const idle: (() => void)[] = [];

function enqueue(name: string): void {
  if (queued.has(name)) return;
  queued.add(name);
  queue.push(name);
  idle.shift()?.();
}

/** Node names end in their number; the CIDR is the number-th /24, as the bench precomputed it. */
function cidrOf(name: string): string {
  const n = /-(\d+)$/.exec(name)?.[1];
  if (n === undefined) throw new Error(`node ${name} has no trailing number`);
  return precomputedCidr(Number(n));
}

async function worker(): Promise<void> {
  for (;;) {
    const name = queue.shift();
    if (name === undefined) {
      await new Promise<void>((r) => idle.push(r));
      continue;
    }
    const cidr = cidrOf(name);
    await bucket.take();
    const body = JSON.stringify({ spec: { podCIDR: cidr, podCIDRs: [cidr] } });
    const res = await api.send('PATCH', `/api/v1/nodes/${name}?fieldManager=bench-raw`, body, 'application/strategic-merge-patch+json');
    if (res.status !== 200) {
      process.stderr.write(`patch ${name}: HTTP ${res.status}\n`);
      queued.delete(name);
    }
  }
}

await bucket.take();
// A bare client reads only what it needs from each event line: no full parse of a kubelet-sized Node.
const watch = api.watchNodes(labelSelector ? { labelSelector } : {}, (line) => {
  if (line.includes('"podCIDR":"') || !/^\{"type":"(ADDED|MODIFIED)"/.test(line)) return;
  const name = /"metadata":\{"name":"([^"]+)"/.exec(line)?.[1];
  if (name !== undefined) enqueue(name);
});
await watch.ready;
process.stdout.write('raw: watching\n');
await Promise.all(Array.from({ length: workers }, () => worker()));
