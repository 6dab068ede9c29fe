// The Kubernetes client against a real kube-apiserver: kubeconfig loading, the node writer's patch and
// its error kinds, the client-wide token bucket, and de-duplicated events.k8s.io/v1 Events.
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PatchError, type NodeInfo } from '../../src/controller/ports.js';
import { createKubeClient, jsonBody, type KubeClient } from '../../src/kube/client.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { KubeEventSink } from '../../src/kube/event-sink.js';
import { KubeNodeWriter } from '../../src/kube/node-writer.js';
import { sleep, systemClock } from '../../src/time.js';
import { eventually } from '../support/eventually.js';
import {
  TestScope,
  controlPlane,
  describeWithControlPlane,
  kubeClients,
  type KubeClients,
} from './harness.js';

const MICROTIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

describeWithControlPlane('the Kubernetes client on a real API server', () => {
  let admin: KubeClients;
  let client: KubeClient;
  const requests: string[] = [];
  const scope = new TestScope('client');
  const eventNodes: string[] = [];

  function kubeconfigPath(): string {
    const cp = controlPlane();
    if (!cp.available) throw new Error(cp.reason);
    return cp.kubeconfigPath;
  }

  async function newClient(options: Partial<Parameters<typeof createKubeClient>[1]> = {}): Promise<KubeClient> {
    return createKubeClient(await loadKubeConfig({ kubeconfig: kubeconfigPath() }, { env: {} }), {
      qps: 100,
      burst: 100,
      ...options,
    });
  }

  async function eventsAbout(nodes: string[]): Promise<k8s.EventsV1Event[]> {
    const all = await admin.events.listNamespacedEvent({ namespace: 'default' });
    return all.items.filter((e) => nodes.includes(e.regarding?.name ?? ''));
  }

  async function createNode(base: string): Promise<string> {
    const body = scope.node(base);
    await admin.core.createNode({ body });
    return body.metadata?.name ?? '';
  }

  beforeAll(async () => {
    admin = kubeClients();
    client = await newClient({ onRequest: (verb, code) => requests.push(`${verb} ${code}`) });
  });

  afterAll(async () => {
    await scope.cleanup(admin, []);
    for (const event of await eventsAbout(eventNodes)) {
      const name = event.metadata?.name;
      if (name) await admin.events.deleteNamespacedEvent({ name, namespace: 'default' }).catch(() => undefined);
    }
  });

  it('reaches the API server through the kubeconfig and reports each request', async () => {
    const before = requests.length;
    const list = jsonBody<{ kind: string }>(await client.request('GET', '/api/v1/nodes', { query: { limit: 1 } }));
    expect(list.kind).toBe('NodeList');
    expect(requests.slice(before)).toEqual(['GET 200']);
    expect(client.userAgent).toMatch(/^podcidr-allocator\/\d+\.\d+\.\d+/);
  });

  it('patches podCIDR and podCIDRs in one strategic-merge patch owned by podcidr-allocator', async () => {
    const name = await createNode('patch');
    const writer = new KubeNodeWriter(client);
    await writer.patchPodCIDRs(name, ['10.200.1.0/24', 'fd00:200:0:1::/64']);
    const node = await admin.core.readNode({ name });
    expect(node.spec?.podCIDR).toBe('10.200.1.0/24');
    expect(node.spec?.podCIDRs).toEqual(['10.200.1.0/24', 'fd00:200:0:1::/64']);
    const fresh = await writer.getNode(name);
    expect(fresh).toMatchObject({ name, podCIDRs: ['10.200.1.0/24', 'fd00:200:0:1::/64'] });
    expect(fresh?.podCIDRManager).toBe('podcidr-allocator');
  });

  it('accepts the same patch twice but maps a patch to different CIDRs to conflict', async () => {
    const name = await createNode('conflict');
    const writer = new KubeNodeWriter(client);
    await writer.patchPodCIDRs(name, ['10.200.2.0/24']);
    await writer.patchPodCIDRs(name, ['10.200.2.0/24']);
    const err = await writer.patchPodCIDRs(name, ['10.200.3.0/24']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PatchError);
    expect(err).toMatchObject({ failure: 'conflict' });
    expect((err as Error).message).toMatch(/^patch node .* podCIDRs \[10\.200\.3\.0\/24\]: HTTP 422 Invalid: /);
    expect((await admin.core.readNode({ name })).spec?.podCIDRs).toEqual(['10.200.2.0/24']);
  });

  it('maps a missing node to not-found and reads it as undefined', async () => {
    const writer = new KubeNodeWriter(client);
    const name = scope.name('missing');
    await expect(writer.patchPodCIDRs(name, ['10.200.4.0/24'])).rejects.toMatchObject({ failure: 'not-found' });
    expect(await writer.getNode(name)).toBeUndefined();
  });

  it('maps a request that outlives its timeout to timeout', async () => {
    const name = await createNode('slow');
    const hasty = await newClient({ requestTimeoutMs: 1 });
    const err = await new KubeNodeWriter(hasty).patchPodCIDRs(name, ['10.200.5.0/24']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PatchError);
    expect(err).toMatchObject({ failure: 'timeout' });
  });

  it('holds a burst of requests to the token bucket and completes every one', async () => {
    const seen: number[] = [];
    const limited = await newClient({ qps: 5, burst: 3, onRequest: () => seen.push(performance.now()) });
    const started = performance.now();
    const all = Promise.all(Array.from({ length: 13 }, () => limited.request('GET', '/api/v1/nodes', { query: { limit: 1 } })));
    await sleep(systemClock, 300);
    // At most the burst plus what 0.3 s of refill allows (1.5 tokens), with room for a slow start.
    expect(seen.length).toBeLessThanOrEqual(5);
    await all;
    expect(seen).toHaveLength(13);
    // 10 requests beyond the burst at 5 qps cannot finish in less than 2 s.
    expect(performance.now() - started).toBeGreaterThanOrEqual(1900);
  });

  it('records Events with a MicroTime eventTime and writes a repeated one once per window', async () => {
    const name = await createNode('events');
    eventNodes.push(name);
    const node = await admin.core.readNode({ name });
    const info: NodeInfo = { name, uid: node.metadata?.uid ?? '', resourceVersion: '', podCIDRs: [] };
    const sink = new KubeEventSink({
      api: client,
      log: pino({ level: 'silent' }),
      identity: 'client-test_1',
      windowMs: 1500,
    });
    for (let i = 0; i < 5; i++) sink.emit(info, 'Warning', 'CIDRNotAvailable', `Node ${name} status is now: CIDRNotAvailable`);
    await sink.flush();
    const list = () => eventsAbout([name]);
    const first = await list();
    expect(first).toHaveLength(1);
    const event = first[0];
    expect(event).toMatchObject({
      reason: 'CIDRNotAvailable',
      type: 'Warning',
      reportingController: 'podcidr-allocator',
      reportingInstance: 'client-test_1',
      regarding: { kind: 'Node', name, uid: info.uid },
    });
    // MicroTime is not in the client's type map: it comes back as the server's string.
    expect(String(event?.eventTime as unknown)).toMatch(MICROTIME);

    await sleep(systemClock, 1600);
    sink.emit(info, 'Warning', 'CIDRNotAvailable', `Node ${name} status is now: CIDRNotAvailable`);
    await sink.flush();
    const second = await eventually(async () => {
      const items = await list();
      return items.length === 2 ? items : undefined;
    });
    const repeated = second.find((e) => e.series !== undefined);
    expect(repeated?.series?.count).toBe(5);
    expect(String(repeated?.series?.lastObservedTime as unknown)).toMatch(MICROTIME);
  });

  it('loads the harness kubeconfig with --master pointing at the same server', async () => {
    const cp = controlPlane();
    if (!cp.available) throw new Error(cp.reason);
    const access = await loadKubeConfig({ kubeconfig: cp.kubeconfigPath, master: cp.server }, { env: {} });
    const viaMaster = createKubeClient(access, { qps: 10, burst: 10 });
    const version = jsonBody<{ gitVersion: string }>(await viaMaster.request('GET', '/version'));
    expect(version.gitVersion).toBe(cp.version);
  });
});
