// Three controller processes on a real API server: one leader at a time, fast hand-over on SIGTERM,
// takeover after SIGKILL, a frozen leader that never writes once resumed, and no duplicates through failovers.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { contains, parseCidr } from '../../src/cidr/index.js';
import { LeaderElector } from '../../src/leader/elector.js';
import type { KubeClient } from '../../src/kube/client.js';
import { createKubeLeaseClient } from '../../src/leader/kube-lease-client.js';
import { sleep, systemClock } from '../../src/time.js';
import { eventually } from '../support/eventually.js';
import { TestScope, controlPlane, describeWithControlPlane, kubeClients, ourClient, type KubeClients } from './harness.js';
import {
  FAST,
  HaNodes,
  LeaderSampler,
  ReplicaSet,
  expectDisjointInRange,
  leaseHolder,
  type Timings,
} from './replicas.js';

const NAMESPACE = 'default';
const CLUSTER_CIDR = '10.200.0.0/16';
const MASK = 24;
const LEASE_MS = 4_000;
const RETRY_MS = 500;

describeWithControlPlane('three replicas on one Lease', () => {
  let c: KubeClients;
  let nodes: HaNodes;
  const scope = new TestScope('ha');
  const sets: ReplicaSet[] = [];
  const leases: string[] = [];

  let ours: KubeClient;
  beforeAll(async () => {
    c = kubeClients();
    ours = await ourClient();
    nodes = new HaNodes(c, scope);
  });
  afterEach(async () => {
    await Promise.all(sets.splice(0).map((s) => s.stopAll()));
    await nodes.deleteAll();
  });
  afterAll(async () => {
    for (const name of leases) {
      await c.coordination.deleteNamespacedLease({ name, namespace: NAMESPACE }).catch(() => undefined);
    }
    await scope.cleanup(c);
  });

  function replicas(timings: Timings = FAST, extraArgs: string[] = []): { set: ReplicaSet; lease: { namespace: string; name: string } } {
    const cp = controlPlane();
    if (!cp.available) throw new Error(cp.reason);
    const lease = { namespace: NAMESPACE, name: scope.name('lease') };
    leases.push(lease.name);
    const set = new ReplicaSet(scope.name('r'), {
      kubeconfig: cp.kubeconfigPath,
      clusterCidr: CLUSTER_CIDR,
      nodeCidrMaskSize: MASK,
      lease,
      timings,
      extraArgs,
    });
    sets.push(set);
    return { set, lease };
  }

  /** Node LIST requests the API server has answered, every page counted (watches are WATCH), by its own metrics. */
  async function nodeListRequests(): Promise<number> {
    const cp = controlPlane();
    if (!cp.available) throw new Error(cp.reason);
    const { stdout } = await promisify(execFile)(join(cp.binDir, 'kubectl'), ['--kubeconfig', cp.kubeconfigPath, 'get', '--raw', '/metrics'], {
      maxBuffer: 256 * 1024 * 1024,
    });
    let total = 0;
    for (const line of stdout.split('\n')) {
      const series = line.startsWith('apiserver_request_total{') && line.includes('resource="nodes"') && line.includes('subresource=""');
      if (series && line.includes('verb="LIST"')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return total;
  }

  async function holderBecomes(lease: { namespace: string; name: string }, identity: (h: string) => boolean, timeoutMs: number): Promise<number> {
    let holder: string | undefined;
    return eventually(
      async () => {
        holder = await leaseHolder(c, lease);
        return holder !== undefined && identity(holder) ? Date.now() : undefined;
      },
      { timeoutMs, intervalMs: 20, message: () => `lease holder still ${holder} after ${timeoutMs} ms` },
    );
  }

  it('keeps exactly one leader at a time, before, during and after a hand-over', async () => {
    const { set, lease } = replicas();
    await set.start(3);
    const first = await set.leader();
    expect(await leaseHolder(c, lease)).toBe(first.identity);

    const sampler = new LeaderSampler();
    sampler.start(() => set.alive, () => leaseHolder(c, lease));
    await sleep(systemClock, 3_000);
    first.signal('SIGTERM');
    expect((await first.exited).code).toBe(0);
    expect(first.logs('released leader lease')).toHaveLength(1);
    const second = await set.leader();
    await sleep(systemClock, 3_000);
    await sampler.stop();

    expect(sampler.overlaps()).toEqual([]);
    expect(sampler.leaders().map((r) => r.name).sort()).toEqual([first.name, second.name].sort());
    expect(second).not.toBe(first);
    expect(await leaseHolder(c, lease)).toBe(second.identity);
    expect(sampler.leaseReadsWhileLed()).toBeGreaterThan(10);
    const rounds = Math.min(...[...sampler.samples.values()].map((s) => s.length));
    console.log(`one leader at a time: ${rounds}+ gauge samples per replica, ${sampler.holders.length} Lease reads, no overlap`);
  });

  it('hands over within about one retry period after SIGTERM and allocates a new node within 3 s', async () => {
    const { set, lease } = replicas();
    await set.start(3);
    const old = await set.leader();

    const signalledAt = Date.now();
    old.signal('SIGTERM');
    const node = await nodes.create('after-term');
    const takenAt = await holderBecomes(lease, (h) => h !== '' && h !== old.identity, LEASE_MS * 2);
    const allocatedAt = await nodes.waitForPodCIDR(node, 10_000);
    const exit = await old.exited;

    console.log(`SIGTERM takeover: lease taken ${takenAt - signalledAt} ms, new node allocated ${allocatedAt - signalledAt} ms after the signal`);
    expect(exit.code).toBe(0);
    expect(old.logs('released leader lease')).toHaveLength(1);
    // About one retry period (plus the drain of the old term), well short of a lease duration.
    expect(takenAt - signalledAt).toBeLessThanOrEqual(1.2 * RETRY_MS + 1_500);
    expect(allocatedAt - signalledAt).toBeLessThanOrEqual(3_000);
  });

  it('writes an empty holder into the Lease when the only replica stops on SIGTERM', async () => {
    const { set, lease } = replicas();
    const [only] = await set.start(1);
    if (only === undefined) throw new Error('no replica started');
    await set.leader();
    only.signal('SIGTERM');
    expect((await only.exited).code).toBe(0);

    const spec = (await c.coordination.readNamespacedLease(lease)).spec;
    expect(spec?.holderIdentity ?? '').toBe('');
    expect(spec?.leaseDurationSeconds).toBe(1);
  });

  it('lists the nodes once from a cold start to the first allocation, and a standby once more when it takes over', async () => {
    const { set } = replicas();
    // Nothing else lists nodes meanwhile: the test creates and reads them one by one.
    const listsBefore = await nodeListRequests();
    const [first] = await set.start(1);
    if (first === undefined) throw new Error('no replica started');
    expect(await set.leader()).toBe(first);
    const cold = await nodes.create('cold-start');
    await nodes.waitForPodCIDR(cold, 10_000);
    // The informer's first list started after the Lease was held, so the term rebuilt from it.
    expect(await nodeListRequests()).toBe(listsBefore + 1);
    expect(first.logs('listed nodes')).toHaveLength(1);
    expect((await first.metric('podcidr_allocator_informer_relists_total')).value).toBe(1);

    const [standby] = await set.start(1);
    if (standby === undefined) throw new Error('no standby started');
    await standby.waitForLog((l) => l.msg === 'node cache synced');
    expect(standby.logs('listed nodes')).toHaveLength(1);
    first.signal('SIGTERM');
    expect((await first.exited).code).toBe(0);
    expect(await set.leader()).toBe(standby);
    const next = await nodes.create('after-takeover');
    await nodes.waitForPodCIDR(next, 10_000);
    // Its warm cache rested on a list from before the term: one relist, started after the takeover.
    expect(standby.logs('node watch ended for a newer list; relisting')).toHaveLength(1);
    expect(standby.logs('listed nodes')).toHaveLength(2);
  });

  it('takes over after SIGKILL of the leader within lease duration plus 2 s', async () => {
    const { set } = replicas();
    await set.start(3);
    const old = await set.leader();

    const killedAt = Date.now();
    old.signal('SIGKILL');
    const node = await nodes.create('after-kill');
    const allocatedAt = await nodes.waitForPodCIDR(node, LEASE_MS + 10_000);
    console.log(`SIGKILL takeover (lease ${LEASE_MS} ms, retry ${RETRY_MS} ms): new node allocated ${allocatedAt - killedAt} ms after the kill`);
    expect(allocatedAt - killedAt).toBeLessThanOrEqual(LEASE_MS + 2_000);
  });

  it('ends five failovers amid node churn with disjoint podCIDRs inside the range and none leaked', async () => {
    const { set } = replicas();
    await set.start(3);
    let leader = await set.leader();
    const churn = new Churn(nodes);
    churn.start();
    const takeovers: string[] = [];
    for (const kind of ['SIGTERM', 'SIGKILL', 'SIGTERM', 'SIGKILL', 'SIGTERM'] as const) {
      await sleep(systemClock, 1_500);
      const signalledAt = Date.now();
      leader.signal(kind);
      const replacement = set.start(1);
      expect((await leader.exited).code).toBe(kind === 'SIGTERM' ? 0 : null);
      // Under load a renewal is often in flight at SIGTERM; the lease must be released all the same.
      if (kind === 'SIGTERM') expect(leader.logs('released leader lease'), `${leader.name} released`).toHaveLength(1);
      leader = await set.leader(LEASE_MS * 5);
      takeovers.push(`${kind} ${Date.now() - signalledAt} ms`);
      await replacement;
    }
    // The last leader lives through churn of its own, so its count is tested after creates and deletes.
    await sleep(systemClock, 3_000);
    const { created, deleted } = await churn.stop();

    const remaining = await nodes.list();
    for (const node of remaining) await nodes.waitForPodCIDR(node.metadata?.name ?? '', 20_000);
    const final = await nodes.list();
    expectDisjointInRange(final, CLUSTER_CIDR);
    expect(final.filter((n) => n.spec?.podCIDR !== undefined)).toHaveLength(created - deleted);
    // The controller sees every node of the shared API server, so it counts whatever holds a range here.
    const range = parseCidr(CLUSTER_CIDR);
    const everyNode = (await c.core.listNode()).items;
    const holding = everyNode.filter((n) => n.spec?.podCIDR !== undefined && contains(range, parseCidr(n.spec.podCIDR))).length;
    const inUse = async (): Promise<number> => {
      const [used, quarantined, reserved] = await Promise.all(
        ['used', 'quarantined', 'reserved'].map(async (k) => (await leader.metric(`podcidr_allocator_range_${k}_cidrs`)).value ?? NaN),
      );
      return (used ?? NaN) - (quarantined ?? NaN) - (reserved ?? NaN);
    };
    await eventually(async () => ((await inUse()) === holding ? true : undefined), { timeoutMs: 10_000 }).catch(() => undefined);
    console.log(
      `churn through 5 failovers (leader seen again after ${takeovers.join(', ')}): ${created} nodes created, ${deleted} deleted, ` +
        `${holding} hold a podCIDR, final leader counts ${await inUse()} in use`,
    );
    expect(await inUse()).toBe(holding);
  });

  it('a leader frozen past its lease and resumed exits 1 without a single patch', async () => {
    const { set, lease } = replicas();
    await set.start(3);
    const frozen = await set.leader();
    const before = await nodes.create('before');
    await nodes.waitForPodCIDR(before, 10_000);
    // The API server may show the patch before the leader has handled its response; that response,
    // logged after SIGCONT, would be a write sent while leading, not one after the loss.
    await eventually(async () => (frozen.logs('assigned podCIDRs').some((l) => l.fields.node === before) ? true : undefined), {
      timeoutMs: 10_000,
    });

    frozen.signal('SIGSTOP');
    await holderBecomes(lease, (h) => h !== '' && h !== frozen.identity, LEASE_MS * 3);
    const successor = await set.leader();
    // With the successor and the spare gone, nothing but the frozen replica could patch new nodes.
    for (const r of set.alive) if (r !== frozen) r.signal('SIGKILL');
    await Promise.all(set.all.filter((r) => r !== frozen).map((r) => r.exited));
    const waiting: string[] = [];
    for (let i = 0; i < 5; i += 1) waiting.push(await nodes.create('while-frozen'));
    await sleep(systemClock, 500);

    const resumedAt = Date.now();
    frozen.signal('SIGCONT');
    const exit = await frozen.exited;
    await sleep(systemClock, 500);

    expect(successor).not.toBe(frozen);
    expect(exit.code).toBe(1);
    expect(frozen.logs('leaderelection lost; exiting so that no stale work survives')).toHaveLength(1);
    expect(frozen.logs('assigned podCIDRs', resumedAt)).toEqual([]);
    // Refused before sending: by the term's end (TermEndedError) or the lease fence (WriteFencedError).
    const sent = frozen
      .logs('podCIDRs patch failed', resumedAt)
      .filter((l) => !/TermEndedError|WriteFencedError/.test(String(JSON.stringify(l.fields.err))));
    expect(sent).toEqual([]);
    for (const name of waiting) {
      const node = await c.core.readNode({ name });
      expect(node.spec?.podCIDR, `${name} patched after the takeover`).toBeUndefined();
      expect((node.metadata?.managedFields ?? []).map((f) => f.manager)).not.toContain('podcidr-allocator');
    }
    console.log(`frozen leader resumed: exited ${exit.code} after ${exit.at - resumedAt} ms, no patch`);

    // A fresh replica allocates what the frozen one must not have.
    await set.start(1);
    for (const name of waiting) await nodes.waitForPodCIDR(name, 20_000);
    expectDisjointInRange(await nodes.list(), CLUSTER_CIDR);
  });

  it('a leader frozen with patches still queued and resumed after a takeover patches no node', async () => {
    // The successor is an elector in this test that writes nothing, so any podCIDR that appears
    // after the takeover was written by the frozen replica. 10 requests per second, no burst: the
    // frozen leader holds patches queued 100 ms apart, due before its renew loop's next timer.
    const { set, lease } = replicas(FAST, ['--kube-api-qps', '10', '--kube-api-burst', '1']);
    const [frozen] = await set.start(1);
    if (frozen === undefined) throw new Error('no replica started');
    await set.leader();
    let takenAt = 0;
    const successor = new LeaderElector({
      lock: lease,
      identity: `${scope.id}-successor`,
      leaseDurationMs: LEASE_MS,
      renewDeadlineMs: 3_000,
      retryPeriodMs: RETRY_MS,
      releaseOnCancel: true,
      client: createKubeLeaseClient(ours, { requestTimeoutMs: 1_500 }),
      logger: pino({ level: 'silent' }),
      onStartedLeading: () => {
        takenAt = Date.now();
      },
    });
    const campaign = successor.run();
    try {
      const queued = await Promise.all(Array.from({ length: 30 }, () => nodes.create('queued')));
      await frozen.waitForLog((l) => l.msg === 'assigned podCIDRs', 20_000);
      await sleep(systemClock, 200);
      frozen.signal('SIGSTOP');
      await eventually(() => (takenAt > 0 ? true : undefined), { timeoutMs: LEASE_MS * 3, intervalMs: 20 });
      const buffered = await Promise.all(Array.from({ length: 30 }, () => nodes.create('while-frozen')));
      const before = await podCIDRs(nodes);

      const resumedAt = Date.now();
      frozen.signal('SIGCONT');
      const exit = await frozen.exited;
      await sleep(systemClock, 1_000);
      const after = await podCIDRs(nodes);
      const held = [...before.values()].filter((cidr) => cidr !== undefined).length;
      console.log(
        `frozen leader resumed ${resumedAt - takenAt} ms after the takeover with ${queued.length - held} nodes unallocated: ` +
          `exited ${exit.code} after ${exit.at - resumedAt} ms, ${countChanged(before, after)} nodes patched after resuming`,
      );
      expect(exit.code).toBe(1);
      expect(frozen.logs('leaderelection lost; exiting so that no stale work survives')).toHaveLength(1);
      expect(held).toBeLessThan(queued.length);
      expect(after).toEqual(before);
      expect(buffered.every((name) => after.get(name) === undefined)).toBe(true);
    } finally {
      await successor.stop();
      await campaign;
    }

    // A fresh replica takes over the released lease and allocates the rest, without duplicates.
    await set.start(1);
    for (const node of await nodes.list()) await nodes.waitForPodCIDR(node.metadata?.name ?? '', 30_000);
    expectDisjointInRange(await nodes.list(), CLUSTER_CIDR);
  });
});

/** Each scope node's podCIDR (undefined when it has none), by name. */
async function podCIDRs(nodes: HaNodes): Promise<Map<string, string | undefined>> {
  const list = await nodes.list();
  return new Map(list.map((n) => [n.metadata?.name ?? '', n.spec?.podCIDR]));
}

function countChanged(before: Map<string, string | undefined>, after: Map<string, string | undefined>): number {
  return [...after].filter(([name, cidr]) => before.get(name) !== cidr).length;
}

/** Creates a node every 150 ms and deletes a random earlier one every third round, until stopped. */
class Churn {
  #created = 0;
  #deleted = 0;
  readonly #live: string[] = [];
  #stopped = false;
  #loop: Promise<void> | undefined;

  constructor(private readonly nodes: HaNodes) {}

  start(): void {
    this.#loop = (async () => {
      for (let round = 1; !this.#stopped; round += 1) {
        this.#live.push(await this.nodes.create('churn'));
        this.#created += 1;
        if (round % 3 === 0) await this.#deleteOne();
        await sleep(systemClock, 150);
      }
    })();
  }

  async stop(): Promise<{ created: number; deleted: number }> {
    this.#stopped = true;
    await this.#loop;
    return { created: this.#created, deleted: this.#deleted };
  }

  async #deleteOne(): Promise<void> {
    const [name] = this.#live.splice(Math.floor(Math.random() * this.#live.length), 1);
    if (name === undefined) return;
    await this.nodes.delete(name);
    this.#deleted += 1;
  }
}
