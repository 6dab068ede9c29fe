// The elector and its Lease client against a real kube-apiserver: one leader, fast hand-over on
// release, and Lease fields exactly as the server stores them.
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { LeaderElector, type RunOutcome } from '../../src/leader/elector.js';
import type { KubeClient } from '../../src/kube/client.js';
import { createKubeLeaseClient } from '../../src/leader/kube-lease-client.js';
import { LeaseError, type LeaseClient, type LeaseRecord, type LeaseRef } from '../../src/leader/lease-client.js';
import { sleep, systemClock } from '../../src/time.js';
import { eventually } from '../support/eventually.js';
import { TestScope, describeWithControlPlane, kubeClients, ourClient, type KubeClients } from './harness.js';

const NAMESPACE = 'kube-system';
const LEASE_MS = 3_000;
const RENEW_MS = 2_000;
const RETRY_MS = 500;
const MICROTIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

interface Replica {
  readonly identity: string;
  readonly elector: LeaderElector;
  /** performance.now() when onStartedLeading ran, once it has. */
  readonly startedAt: number | undefined;
  readonly stoppedLeading: boolean;
  readonly outcome: Promise<RunOutcome>;
}

describeWithControlPlane('leader election on a real Lease', () => {
  let c: KubeClients;
  const scope = new TestScope('leader');
  const leases: string[] = [];
  const running: Replica[] = [];

  let ours: KubeClient;
  beforeAll(async () => {
    c = kubeClients();
    ours = await ourClient();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.elector.stop()));
  });
  afterAll(async () => {
    for (const name of leases) {
      await c.coordination.deleteNamespacedLease({ name, namespace: NAMESPACE }).catch(() => undefined);
    }
  });

  function newLease(): LeaseRef {
    const name = scope.name('lease');
    leases.push(name);
    return { namespace: NAMESPACE, name };
  }

  function leaseClient(): LeaseClient {
    return createKubeLeaseClient(ours, { requestTimeoutMs: RENEW_MS / 2 });
  }

  function replica(lock: LeaseRef, identity: string): Replica {
    const seen: { startedAt?: number; stoppedLeading: boolean } = { stoppedLeading: false };
    const elector = new LeaderElector({
      lock,
      identity,
      leaseDurationMs: LEASE_MS,
      renewDeadlineMs: RENEW_MS,
      retryPeriodMs: RETRY_MS,
      releaseOnCancel: true,
      client: leaseClient(),
      logger: pino({ level: 'silent' }),
      onStartedLeading: () => {
        seen.startedAt = performance.now();
      },
      onStoppedLeading: () => {
        seen.stoppedLeading = true;
      },
    });
    const r: Replica = {
      identity,
      elector,
      outcome: elector.run(),
      get startedAt() {
        return seen.startedAt;
      },
      get stoppedLeading() {
        return seen.stoppedLeading;
      },
    };
    running.push(r);
    return r;
  }

  async function readSpec(lock: LeaseRef): Promise<k8s.V1LeaseSpec> {
    const lease = await c.coordination.readNamespacedLease(lock);
    return lease.spec ?? {};
  }

  it('elects exactly one of two candidates and keeps it while it renews', async () => {
    const lock = newLease();
    const a = replica(lock, 'replica-a');
    const b = replica(lock, 'replica-b');

    const leader = await eventually(async () => [a, b].find((r) => r.elector.isLeader()));
    const other = leader === a ? b : a;

    for (let i = 0; i < 8; i++) {
      await sleep(systemClock, RETRY_MS / 2);
      expect(leader.elector.isLeader()).toBe(true);
      expect(other.elector.isLeader()).toBe(false);
    }
    expect(other.elector.leader()).toBe(leader.identity);

    const spec = await readSpec(lock);
    expect(spec.holderIdentity).toBe(leader.identity);
    expect(spec.leaseDurationSeconds).toBe(LEASE_MS / 1000);
    expect(spec.leaseTransitions).toBe(0);
    expect(String(spec.acquireTime)).toMatch(MICROTIME);
    expect(String(spec.renewTime)).toMatch(MICROTIME);
    expect(new Date(String(spec.renewTime)).getTime()).toBeGreaterThan(new Date(String(spec.acquireTime)).getTime());
  });

  it('hands over within about a retry period when the leader stops and releases', async () => {
    const lock = newLease();
    const a = replica(lock, 'replica-a');
    await eventually(async () => (a.elector.isLeader() ? true : undefined));
    const b = replica(lock, 'replica-b');
    await eventually(async () => (b.elector.leader() === 'replica-a' ? true : undefined));

    const stoppedAt = performance.now();
    await a.elector.stop();
    expect(await a.outcome).toBe('stopped');
    expect(a.stoppedLeading).toBe(true);

    await eventually(async () => (b.startedAt !== undefined ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
    const handOverMs = (b.startedAt ?? Number.NaN) - stoppedAt;
    console.log(`leader hand-over after release: ${handOverMs.toFixed(0)} ms (retry period ${RETRY_MS} ms)`);
    // The standby's next jittered retry (≤ 1.2 × retryPeriod) plus two requests to the server.
    expect(handOverMs).toBeLessThan(1.2 * RETRY_MS + 1_000);

    const spec = await readSpec(lock);
    expect(spec.holderIdentity).toBe('replica-b');
    expect(spec.leaseTransitions).toBe(1);
    expect(spec.leaseDurationSeconds).toBe(LEASE_MS / 1000);
  });

  it('leaves a released Lease with no holder, a one-second duration and its transition count', async () => {
    const lock = newLease();
    const a = replica(lock, 'replica-a');
    await eventually(async () => (a.elector.isLeader() ? true : undefined));
    const before = Date.now();

    await a.elector.stop();

    const spec = await readSpec(lock);
    expect(spec.holderIdentity ?? '').toBe('');
    expect(spec.leaseDurationSeconds).toBe(1);
    expect(spec.leaseTransitions).toBe(0);
    expect(String(spec.renewTime)).toMatch(MICROTIME);
    expect(spec.renewTime).toBe(spec.acquireTime);
    expect(new Date(String(spec.renewTime)).getTime()).toBeGreaterThanOrEqual(before - 1_000);
  });

  it('takes over a Lease whose holder vanished only after the lease duration', async () => {
    const lock = newLease();
    const stamp = new Date(Date.now() - 3_600_000);
    await leaseClient().create(lock, {
      holderIdentity: 'crashed-replica',
      leaseDurationSeconds: LEASE_MS / 1000,
      acquireTime: stamp,
      renewTime: stamp,
      leaseTransitions: 4,
    });
    const startedAt = performance.now();
    const b = replica(lock, 'replica-b');

    await eventually(async () => (b.startedAt !== undefined ? true : undefined), { timeoutMs: 15_000, intervalMs: 20 });
    // An hour-old renewTime does not count: b waits a full lease duration from its own first look.
    expect((b.startedAt ?? 0) - startedAt).toBeGreaterThanOrEqual(LEASE_MS);
    const spec = await readSpec(lock);
    expect(spec).toMatchObject({ holderIdentity: 'replica-b', leaseTransitions: 5 });
  });
});

describeWithControlPlane('the Lease client on a real server', () => {
  let c: KubeClients;
  const scope = new TestScope('lease-client');
  const names: string[] = [];
  let ours: KubeClient;

  beforeAll(async () => {
    c = kubeClients();
    ours = await ourClient();
  });
  afterAll(async () => {
    for (const name of names) {
      await c.coordination.deleteNamespacedLease({ name, namespace: NAMESPACE }).catch(() => undefined);
    }
  });

  function lock(): LeaseRef {
    const name = scope.name('lease');
    names.push(name);
    return { namespace: NAMESPACE, name };
  }

  const record = (holderIdentity: string): LeaseRecord => ({
    holderIdentity,
    leaseDurationSeconds: 15,
    acquireTime: new Date(),
    renewTime: new Date(),
    leaseTransitions: 0,
  });

  it('reports a missing Lease as not-found', async () => {
    const client = createKubeLeaseClient(ours, { requestTimeoutMs: 5_000 });
    await expect(client.get(lock())).rejects.toMatchObject({ failure: 'not-found' });
  });

  it('reports creating an existing Lease as a conflict', async () => {
    const client = createKubeLeaseClient(ours, { requestTimeoutMs: 5_000 });
    const ref = lock();
    await client.create(ref, record('a'));
    const err = await client.create(ref, record('b')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseError);
    expect(err).toMatchObject({ failure: 'conflict', message: expect.stringContaining('AlreadyExists') });
  });

  it('lets exactly one of two writers with the same resourceVersion succeed', async () => {
    const ref = lock();
    const one = createKubeLeaseClient(ours, { requestTimeoutMs: 5_000 });
    const two = createKubeLeaseClient(ours, { requestTimeoutMs: 5_000 });
    const created = await one.create(ref, record(''));

    const results = await Promise.allSettled([
      one.update(ref, record('a'), created.resourceVersion),
      two.update(ref, record('b'), created.resourceVersion),
    ]);

    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected');
    expect(rejected?.reason).toMatchObject({ failure: 'conflict' });
  });

  it('reads back exactly what it wrote, with the times as six-digit MicroTime', async () => {
    const client = createKubeLeaseClient(ours, { requestTimeoutMs: 5_000 });
    const ref = lock();
    const at = new Date('2025-06-07T08:09:10.123Z');
    const written = await client.create(ref, { ...record('a'), acquireTime: at, renewTime: at, leaseTransitions: 3 });
    const read = await client.get(ref);

    expect(read.raw).toBe(written.raw);
    expect(read.raw).toContain('"2025-06-07T08:09:10.123000Z"');
    expect(read.record).toEqual({
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      acquireTime: at,
      renewTime: at,
      leaseTransitions: 3,
    });
  });
});
