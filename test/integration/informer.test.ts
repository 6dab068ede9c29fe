// The Node informer against a real kube-apiserver, reached through a loopback TCP proxy the tests can
// cut or stall: it lists, follows adds/updates/deletes, and recovers from broken and silent connections.
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { NodeInformer, type NodeInformerOptions } from '../../src/controller/node-informer.js';
import type { NodeInfo } from '../../src/controller/ports.js';
import { createKubeClient, type KubeClient } from '../../src/kube/client.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { KubeNodeSource } from '../../src/kube/node-source.js';
import { ProtobufNodeSource } from '../../src/kube/protobuf-node-source.js';
import { sleep, systemClock } from '../../src/time.js';
import { eventually } from '../support/eventually.js';
import {
  TestScope,
  controlPlane,
  describeWithControlPlane,
  kubeClients,
  type KubeClients,
} from './harness.js';

/** Forwards loopback TCP to the API server; can cut every connection or freeze them silently. */
class CuttableProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  readonly #frozen = new Set<[Socket, Socket]>();
  #port = 0;

  constructor(
    private readonly target: { host: string; port: number },
  ) {
    this.#server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      const pair: [Socket, Socket] = [client, upstream];
      this.#pairs.add(pair);
      client.pipe(upstream);
      upstream.pipe(client);
      const drop = (): void => {
        this.#pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.#port = (this.#server.address() as AddressInfo).port;
    return `https://127.0.0.1:${this.#port}`;
  }

  /** Resets every open connection, as a restarted API server or a broken network would. */
  cutAll(): number {
    const n = this.#pairs.size;
    for (const [client, upstream] of this.#pairs) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    this.#pairs.clear();
    return n;
  }

  /** Stops moving bytes on the connections open now, keeping them open: a silent hang. */
  freezeAll(): void {
    for (const [client, upstream] of this.#pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
      this.#frozen.add([client, upstream]);
    }
    this.#pairs.clear();
  }

  /**
   * Closes the frozen connections. Left open, an idle one stays in the client's pool and the next
   * test's list may be sent on it and hang until the request timeout.
   */
  dropFrozen(): void {
    for (const [client, upstream] of this.#frozen) {
      client.destroy();
      upstream.destroy();
    }
    this.#frozen.clear();
  }

  async close(): Promise<void> {
    this.cutAll();
    this.dropFrozen();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

interface Seen {
  readonly events: string[];
  readonly restarts: string[];
}

describeWithControlPlane.each(['protobuf', 'json'] as const)('the Node informer (%s) on a real API server', (encoding) => {
  let admin: KubeClients;
  let proxy: CuttableProxy;
  let client: KubeClient;
  const scope = new TestScope(`informer-${encoding}`);
  const informers: NodeInformer[] = [];

  beforeAll(async () => {
    admin = kubeClients();
    const cp = controlPlane();
    if (!cp.available) throw new Error(cp.reason);
    const url = new URL(cp.server);
    proxy = new CuttableProxy({ host: url.hostname, port: Number(url.port) });
    const master = await proxy.listen();
    client = createKubeClient(await loadKubeConfig({ kubeconfig: cp.kubeconfigPath, master }, { env: {} }), {
      qps: 50,
      burst: 100,
    });
  });

  afterEach(async () => {
    await Promise.all(informers.splice(0).map((i) => i.stop()));
    proxy.dropFrozen();
  });

  afterAll(async () => {
    await proxy?.close();
    await scope.cleanup(admin, []);
  });

  function start(options: Partial<NodeInformerOptions> = {}): { informer: NodeInformer; seen: Seen } {
    const seen: Seen = { events: [], restarts: [] };
    const informer = new NodeInformer({
      source:
        encoding === 'json'
          ? new KubeNodeSource({ client, labelSelector: scope.selector })
          : new ProtobufNodeSource({ client, labelSelector: scope.selector }),
      log: pino({ level: 'silent' }),
      pageSize: 2,
      initialBackoffMs: 200,
      maxBackoffMs: 1000,
      observer: { onWatchRestart: (reason) => seen.restarts.push(reason) },
      ...options,
    });
    informer.addHandlers({
      add: (n) => seen.events.push(`add ${n.name}`),
      update: (_o, n) => seen.events.push(`update ${n.name}`),
      delete: (n) => seen.events.push(`delete ${n.name}`),
    });
    informers.push(informer);
    informer.start();
    return { informer, seen };
  }

  async function createNode(base: string, labels: Record<string, string> = {}): Promise<string> {
    const body = scope.node(base);
    body.metadata = { ...body.metadata, labels: { ...body.metadata?.labels, ...labels } };
    await admin.core.createNode({ body });
    return body.metadata.name ?? '';
  }

  async function waitFor(seen: Seen, event: string): Promise<void> {
    await eventually(async () => (seen.events.includes(event) ? true : undefined), { timeoutMs: 20_000 });
  }

  it('lists existing nodes across pages and becomes synced', async () => {
    const names = [await createNode('pre'), await createNode('pre'), await createNode('pre')];
    const { informer, seen } = start();
    expect(await informer.waitForSync(AbortSignal.timeout(20_000))).toBe(true);
    for (const name of names) {
      expect(informer.get(name)).toMatchObject({ name, podCIDRs: [] });
      expect(seen.events).toContain(`add ${name}`);
    }
    expect(informer.list().length).toBeGreaterThanOrEqual(3);
  });

  it('follows adds, updates and deletes through the watch', async () => {
    const { informer, seen } = start();
    await informer.waitForSync(AbortSignal.timeout(20_000));
    const name = await createNode('live');
    await waitFor(seen, `add ${name}`);
    await admin.core.patchNode(
      { name, body: { spec: { podCIDR: '10.210.0.0/24', podCIDRs: ['10.210.0.0/24'] } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
    await waitFor(seen, `update ${name}`);
    expect(informer.get(name)?.podCIDRs).toEqual(['10.210.0.0/24']);
    const deleted = new Promise<NodeInfo>((resolve) => informer.addHandlers({ delete: resolve }));
    await admin.core.deleteNode({ name });
    expect((await deleted).name).toBe(name);
    expect(informer.get(name)).toBeUndefined();
  });

  it('keeps going after every connection to the API server is cut, and misses nothing meanwhile', async () => {
    const { informer, seen } = start();
    await informer.waitForSync(AbortSignal.timeout(20_000));
    const before = await createNode('before-cut');
    await waitFor(seen, `add ${before}`);
    expect(proxy.cutAll()).toBeGreaterThan(0);
    // Changes made while the watch is down arrive once it is back (watch from the last resourceVersion).
    const during = await createNode('during-cut');
    await admin.core.deleteNode({ name: before });
    await waitFor(seen, `add ${during}`);
    await waitFor(seen, `delete ${before}`);
    expect(seen.restarts.length).toBeGreaterThan(0);
    expect(informer.get(during)).toBeDefined();
  });

  it('restarts a watch that went silent once the watchdog fires', async () => {
    const { informer, seen } = start({ watchdogMs: 1500 });
    await informer.waitForSync(AbortSignal.timeout(20_000));
    proxy.freezeAll();
    await eventually(async () => (seen.restarts.includes('stalled') ? true : undefined), { timeoutMs: 20_000 });
    const after = await createNode('after-stall');
    await waitFor(seen, `add ${after}`);
  });

  it('keeps a quiet watch open past the client library\'s 30 s inactivity limit', async () => {
    const { informer, seen } = start();
    expect(await informer.waitForSync(AbortSignal.timeout(20_000))).toBe(true);
    // Nothing in this scope changes: before the limit was raised, k8s.Watch ended such a watch after 30 s.
    await sleep(systemClock, 40_000);
    expect(seen.restarts).toEqual([]);
  }, 60_000);

  it('stops for good: no list or watch after stop()', async () => {
    const { informer, seen } = start();
    await informer.waitForSync(AbortSignal.timeout(20_000));
    await informer.stop();
    const name = await createNode('after-stop');
    await sleep(systemClock, 1000);
    expect(seen.events).not.toContain(`add ${name}`);
    expect(informer.get(name)).toBeUndefined();
  });
});
