// Measures the heap the Node informer's cache needs for many Nodes, against keeping whole Nodes.
// Run: node --expose-gc --import tsx hack/bench/node-informer-memory.ts [nodes]; prints one line per figure.

import type { V1Node } from '@kubernetes/client-node';
import { pino } from 'pino';
import { NodeInformer } from '../../src/controller/node-informer.js';
import { type NodeListOptions, type NodePage, type NodeSource } from '../../src/controller/ports.js';
import { toNodeInfo } from '../../src/kube/node-info.js';

const count = Number(process.argv[2] ?? 50_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

/** A Node as a cloud cluster's API server returns it: a dozen labels, managedFields, images. */
function syntheticNode(i: number): V1Node {
  const name = `ip-10-${(i >> 16) & 255}-${(i >> 8) & 255}-${i & 255}.eu-west-1.compute.internal`;
  const cidr = `10.${(i >> 8) & 255}.${i & 255}.0/24`;
  return JSON.parse(
    JSON.stringify({
      metadata: {
        name,
        uid: `6f1c2a8e-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
        resourceVersion: String(1_000_000 + i),
        creationTimestamp: '2024-05-01T10:00:00Z',
        labels: {
          'beta.kubernetes.io/arch': 'amd64',
          'beta.kubernetes.io/instance-type': 'm6i.2xlarge',
          'beta.kubernetes.io/os': 'linux',
          'failure-domain.beta.kubernetes.io/region': 'eu-west-1',
          'failure-domain.beta.kubernetes.io/zone': `eu-west-1${'abc'[i % 3]}`,
          'kubernetes.io/arch': 'amd64',
          'kubernetes.io/hostname': name,
          'kubernetes.io/os': 'linux',
          'node.kubernetes.io/instance-type': 'm6i.2xlarge',
          'topology.kubernetes.io/region': 'eu-west-1',
          'topology.kubernetes.io/zone': `eu-west-1${'abc'[i % 3]}`,
          'node-pool': `pool-${i % 20}`,
        },
        managedFields: [
          { manager: 'kubelet', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:labels': {} } } },
          { manager: 'podcidr-allocator', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:podCIDR': {}, 'f:podCIDRs': { '.': {}, [`v:"${cidr}"`]: {} } } } },
          { manager: 'kubelet', operation: 'Update', apiVersion: 'v1', subresource: 'status', fieldsType: 'FieldsV1', fieldsV1: { 'f:status': { 'f:conditions': {}, 'f:images': {} } } },
        ],
      },
      spec: { podCIDR: cidr, podCIDRs: [cidr], providerID: `aws:///eu-west-1a/i-${i.toString(16).padStart(17, '0')}` },
      status: {
        capacity: { cpu: '8', memory: '32386544Ki', pods: '58' },
        allocatable: { cpu: '7910m', memory: '31369712Ki', pods: '58' },
        conditions: ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready'].map((type) => ({
          type,
          status: type === 'Ready' ? 'True' : 'False',
          lastHeartbeatTime: '2024-05-01T10:00:00Z',
          lastTransitionTime: '2024-05-01T10:00:00Z',
          reason: `Kubelet${type}`,
          message: `kubelet reports ${type}`,
        })),
        addresses: [
          { type: 'InternalIP', address: `10.1.${(i >> 8) & 255}.${i & 255}` },
          { type: 'Hostname', address: name },
        ],
        images: Array.from({ length: 25 }, (_, k) => ({
          names: [`registry.example.com/team/app-${k}@sha256:${k.toString(16).padStart(64, '0')}`, `registry.example.com/team/app-${k}:v1.${k}`],
          sizeBytes: 100_000_000 + k,
        })),
        nodeInfo: { kubeletVersion: 'v1.34.4', osImage: 'Bottlerocket', containerRuntimeVersion: 'containerd://1.7.0' },
      },
    }),
  ) as V1Node;
}

/** Serves synthetic pages; Nodes are generated per page, as the real source parses them per page. */
class SyntheticSource implements NodeSource {
  async list(options: NodeListOptions): Promise<NodePage> {
    const start = Number(options.continueToken ?? 0);
    const end = Math.min(count, start + options.limit);
    const nodes = [];
    for (let i = start; i < end; i++) nodes.push(toNodeInfo(syntheticNode(i)));
    return { nodes, resourceVersion: '2000000', continueToken: end < count ? String(end) : undefined };
  }

  watch(): Promise<void> {
    return new Promise(() => undefined);
  }
}

function heapMiB(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

const base = heapMiB();
const informer = new NodeInformer({ source: new SyntheticSource(), log: pino({ level: 'silent' }), pageSize: 500 });
informer.start();
await informer.waitForSync();
const slim = heapMiB() - base;
console.log(`slim NodeInfo cache: ${count} nodes, ${slim.toFixed(1)} MiB heap, ${((slim * 2 ** 20) / count).toFixed(0)} B/node`);
await informer.stop();

const before = heapMiB();
const whole: V1Node[] = [];
for (let i = 0; i < count; i++) whole.push(syntheticNode(i));
const full = heapMiB() - before;
console.log(`whole Nodes (what makeInformer keeps): ${count} nodes, ${full.toFixed(1)} MiB heap, ${((full * 2 ** 20) / count).toFixed(0)} B/node`);
console.log(`ratio: ${(full / slim).toFixed(1)}x`);
if (whole.length !== count || informer.size() !== count) throw new Error('count mismatch');
