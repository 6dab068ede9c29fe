// A leader cut off from the API server (through a loopback proxy that goes silent) while a standby
// still reaches it: the leader stops within its renew deadline and exits 1, the standby takes over.

import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sleep, systemClock } from '../../src/time.js';
import { TestScope, controlPlane, describeWithControlPlane, kubeClients, type KubeClients } from './harness.js';
import { FAST, HaNodes, ReplicaSet, expectDisjointInRange, leaseHolder } from './replicas.js';

const CLUSTER_CIDR = '10.202.0.0/16';
const LEASE_MS = 4_000;
const RENEW_MS = 3_000;
const RETRY_MS = 500;

/** Forwards loopback TCP to the API server until partition(): then no byte moves, in either direction. */
class PartitionProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #partitioned = false;

  constructor(target: { host: string; port: number }) {
    this.#server = createServer((client) => {
      this.#track(client);
      if (this.#partitioned) {
        client.pause();
        return;
      }
      const upstream = connect(target.port, target.host);
      this.#track(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `https://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Open connections stay open but silent; new ones are accepted and never answered. */
  partition(): void {
    this.#partitioned = true;
    for (const socket of this.#sockets) {
      socket.unpipe();
      socket.pause();
    }
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }
}

describeWithControlPlane('a leader partitioned from the API server', () => {
  let c: KubeClients;
  let nodes: HaNodes;
  let proxy: PartitionProxy;
  let set: ReplicaSet | undefined;
  const scope = new TestScope('ha-partition');
  const lease = { namespace: 'default', name: scope.name('lease') };

  beforeAll(() => {
    c = kubeClients();
    nodes = new HaNodes(c, scope);
  });
  afterAll(async () => {
    await set?.stopAll();
    await proxy.close();
    await nodes.deleteAll();
    await c.coordination.deleteNamespacedLease(lease).catch(() => undefined);
  });

  it('stops within its renew deadline, exits 1 with /healthz answering until then, and the standby takes over', async () => {
    const cp = controlPlane();
    if (!cp.available) throw new Error(cp.reason);
    const url = new URL(cp.server);
    proxy = new PartitionProxy({ host: url.hostname, port: Number(url.port) });
    const proxied = await proxy.listen();
    set = new ReplicaSet(scope.name('r'), {
      kubeconfig: cp.kubeconfigPath,
      clusterCidr: CLUSTER_CIDR,
      nodeCidrMaskSize: 24,
      lease,
      timings: FAST,
    });
    const [cut] = await set.start(1, { server: proxied });
    if (cut === undefined) throw new Error('no replica started');
    expect(await set.leader()).toBe(cut);
    const [standby] = await set.start(1);
    if (standby === undefined) throw new Error('no standby started');
    const before = await nodes.create('before');
    await nodes.waitForPodCIDR(before, 10_000);

    const partitionedAt = Date.now();
    proxy.partition();
    const health: number[] = [];
    while (cut.alive) {
      health.push((await cut.healthz().catch(() => ({ status: 0 }))).status);
      await sleep(systemClock, 100);
    }
    const exit = await cut.exited;
    const node = await nodes.create('after');
    const allocatedAt = await nodes.waitForPodCIDR(node, LEASE_MS * 3);

    const lost = cut.logs('leader election lost')[0];
    console.log(
      `partitioned leader exited ${exit.code} ${exit.at - partitionedAt} ms after the partition ` +
        `(renew deadline ${RENEW_MS} ms); standby allocated a new node ${allocatedAt - partitionedAt} ms after it`,
    );
    expect(exit.code).toBe(1);
    expect(lost?.fields.reason).toMatch(/no successful renewal within 3s/);
    expect(exit.at - partitionedAt).toBeLessThanOrEqual(RENEW_MS + RETRY_MS + 1_000);
    // Liveness tolerates lease duration + 20 s without renewal; the process is gone long before.
    expect(health.filter((s) => s !== 200 && s !== 0)).toEqual([]);
    expect(await leaseHolder(c, lease)).toBe(standby.identity);
    const took = await standby.waitForLog((l) => l.msg === 'became leader', 1_000);
    expect(took.receivedAt).toBeGreaterThan(exit.at);
    expectDisjointInRange(await nodes.list(), CLUSTER_CIDR);
  });
});
