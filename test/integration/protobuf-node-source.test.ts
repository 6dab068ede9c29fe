// The protobuf Node source against a real kube-apiserver: what it lists and watches equals what the
// JSON source reads from the same Nodes, including podCIDRs, owners, deletion, labels (kept for a node without podCIDRs) and a fat status (read by neither).
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { NodeInfo, NodeSource, NodeWatchEventType } from '../../src/controller/ports.js';
import { createKubeClient, type KubeClient } from '../../src/kube/client.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { KubeNodeSource } from '../../src/kube/node-source.js';
import { ProtobufNodeSource } from '../../src/kube/protobuf-node-source.js';
import { eventually } from '../support/eventually.js';
import {
  TestScope,
  controlPlane,
  describeWithControlPlane,
  kubeClients,
  type KubeClients,
} from './harness.js';

const SMP = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);

describeWithControlPlane('the protobuf Node source on a real API server', () => {
  let admin: KubeClients;
  let client: KubeClient;
  let json: NodeSource;
  let protobuf: NodeSource;
  const scope = new TestScope('protobuf-source');
  const finalized: string[] = [];

  beforeAll(async () => {
    admin = kubeClients();
    const cp = controlPlane();
    if (!cp.available) throw new Error(cp.reason);
    client = createKubeClient(await loadKubeConfig({ kubeconfig: cp.kubeconfigPath }, { env: {} }), { qps: 100, burst: 100 });
    json = new KubeNodeSource({ client, labelSelector: scope.selector });
    protobuf = new ProtobufNodeSource({ client, labelSelector: scope.selector });
  });

  afterAll(async () => {
    for (const name of finalized) {
      await admin.core.patchNode({ name, body: { metadata: { finalizers: null } } }, SMP).catch(() => undefined);
    }
    await scope.cleanup(admin, []);
  });

  /** A Node like a kubelet's: labels, a status with images, podCIDRs set by a named field manager. */
  async function createNode(base: string, options: { cidrs?: string[]; manager?: string; finalizer?: boolean } = {}): Promise<string> {
    const body = scope.node(base);
    const name = body.metadata?.name ?? '';
    body.metadata = {
      ...body.metadata,
      labels: { ...body.metadata?.labels, 'kubernetes.io/hostname': name, 'topology.kubernetes.io/zone': 'zone-a' },
      annotations: { 'example.com/status': '{"status":{"x":1}}' },
      finalizers: options.finalizer ? ['example.com/hold'] : undefined,
    };
    body.spec = { providerID: `test:///${name}`, taints: [{ key: 'example.com/t', effect: 'NoSchedule' }] };
    await admin.core.createNode({ body });
    await admin.core.patchNodeStatus(
      {
        name,
        body: {
          status: {
            images: Array.from({ length: 20 }, (_, i) => ({ names: [`registry.example/${base}/image-${i}:v1`], sizeBytes: 1000 + i })),
            addresses: [{ type: 'InternalIP', address: '192.0.2.10' }],
          },
        },
      },
      SMP,
    );
    if (options.cidrs) {
      await admin.core.patchNode(
        { name, body: { spec: { podCIDR: options.cidrs[0], podCIDRs: options.cidrs } }, fieldManager: options.manager },
        SMP,
      );
    }
    if (options.finalizer) finalized.push(name);
    return name;
  }

  async function listAll(source: NodeSource): Promise<{ nodes: NodeInfo[]; pages: number }> {
    const nodes: NodeInfo[] = [];
    let continueToken: string | undefined;
    let pages = 0;
    do {
      const page = await source.list({ limit: 2, continueToken, signal: AbortSignal.timeout(20_000) });
      nodes.push(...page.nodes);
      continueToken = page.continueToken;
      pages += 1;
    } while (continueToken !== undefined);
    return { nodes: nodes.sort((a, b) => a.name.localeCompare(b.name)), pages };
  }

  it('lists, page by page, exactly what the JSON source lists', async () => {
    await createNode('plain');
    await createNode('single', { cidrs: ['10.77.1.0/24'], manager: 'other-ipam' });
    await createNode('dual', { cidrs: ['10.77.2.0/24', 'fd00:77:0:2::/64'], manager: 'podcidr-allocator' });
    const held = await createNode('held', { cidrs: ['10.77.3.0/24'], finalizer: true });
    await admin.core.deleteNode({ name: held });

    const fromProtobuf = await listAll(protobuf);
    const fromJson = await listAll(json);
    expect(fromProtobuf.pages).toBe(2);
    expect(fromProtobuf.nodes).toHaveLength(4);
    expect(fromProtobuf.nodes).toEqual(fromJson.nodes);
    const byName = new Map(fromProtobuf.nodes.map((n) => [n.name.replace(/-\d+$/, '').split('-').at(-1), n]));
    expect(byName.get('dual')).toMatchObject({ podCIDRs: ['10.77.2.0/24', 'fd00:77:0:2::/64'], podCIDRManager: 'podcidr-allocator' });
    expect(byName.get('single')).toMatchObject({ podCIDRs: ['10.77.1.0/24'], podCIDRManager: 'other-ipam' });
    expect(byName.get('held')?.deletionTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const plain = byName.get('plain');
    expect(plain).toEqual({
      name: plain?.name,
      uid: expect.any(String),
      resourceVersion: expect.any(String),
      podCIDRs: [],
      deletionTimestamp: undefined,
      podCIDRManager: undefined,
      labels: expect.objectContaining({ 'kubernetes.io/hostname': plain?.name, 'topology.kubernetes.io/zone': 'zone-a' }),
    });
  });

  it('watches the same events, in the same order, as the JSON source', async () => {
    const { resourceVersion } = await protobuf.list({ limit: 1, signal: AbortSignal.timeout(20_000) });
    const seen = { json: [] as string[], protobuf: [] as string[] };
    const stops: AbortController[] = [];
    for (const [key, source] of [['json', json], ['protobuf', protobuf]] as const) {
      const stop = new AbortController();
      stops.push(stop);
      await source.watch(
        { resourceVersion, timeoutSeconds: 60, signal: stop.signal },
        {
          onEvent: (type: NodeWatchEventType, node: NodeInfo) => seen[key].push(describeEvent(type, node)),
          onBookmark: () => undefined,
          onClose: () => undefined,
        },
      );
    }
    try {
      const name = await createNode('watched');
      await admin.core.patchNode({ name, body: { spec: { podCIDR: '10.77.9.0/24', podCIDRs: ['10.77.9.0/24'] } } }, SMP);
      await admin.core.deleteNode({ name });
      await eventually(async () => (seen.protobuf.some((e) => e.startsWith('DELETED')) ? true : undefined), { timeoutMs: 20_000 });
      await eventually(async () => (seen.json.length === seen.protobuf.length ? true : undefined), { timeoutMs: 20_000 });
      expect(seen.protobuf).toEqual(seen.json);
      expect(seen.protobuf.some((e) => e.includes('10.77.9.0/24'))).toBe(true);
    } finally {
      for (const stop of stops) stop.abort();
    }
  });
});

function describeEvent(type: string, node: NodeInfo): string {
  return `${type} ${node.name} [${node.podCIDRs.join(',')}] ${node.podCIDRManager ?? '-'} ${node.resourceVersion}`;
}
