import { describe, expect, it } from 'vitest';
import {
  abortableSleep,
  LeaderElectionConfigError,
  LeaderElector,
  LeadershipEndedError,
  validateLeaderElection,
  type LeaderElectorOptions,
  type RunOutcome,
} from '../../../src/leader/elector.js';
import { ManualClock } from '../../support/manual-clock.js';
import { FakeLeaseStore, memoryLogger, microTime, type FakeLeaseClient } from './fakes.js';

const lock = { namespace: 'kube-system', name: 'podcidr-allocator' };
const LEASE = 15_000;
const RENEW = 10_000;
const RETRY = 2_000;

interface Candidate {
  readonly elector: LeaderElector;
  readonly client: FakeLeaseClient;
  /** Callbacks and signal aborts, in the order they happened. */
  readonly events: string[];
  /** How run() ended, once it has. */
  readonly outcome: RunOutcome | undefined;
  /** The signal given to onStartedLeading. */
  readonly signal: AbortSignal | undefined;
}

function candidate(
  store: FakeLeaseStore,
  identity: string,
  overrides: Partial<LeaderElectorOptions> = {},
): Candidate {
  const client = store.client(identity);
  const events: string[] = [];
  const state: { outcome?: RunOutcome; signal?: AbortSignal } = {};
  const elector = new LeaderElector({
    lock,
    identity,
    leaseDurationMs: LEASE,
    renewDeadlineMs: RENEW,
    retryPeriodMs: RETRY,
    client,
    logger: memoryLogger().logger,
    clock: store.clock,
    sleep: store.clock.sleep,
    random: () => 0,
    onStartedLeading: (signal) => {
      state.signal = signal;
      events.push('started');
      signal.addEventListener('abort', () => events.push('aborted'));
    },
    onStoppedLeading: () => events.push(`stopped(signal aborted: ${String(state.signal?.aborted)})`),
    onNewLeader: (id) => events.push(`leader:${id}`),
    ...overrides,
  });
  void elector.run().then((outcome) => {
    state.outcome = outcome;
  });
  return {
    elector,
    client,
    events,
    get outcome() {
      return state.outcome;
    },
    get signal() {
      return state.signal;
    },
  };
}

function setup(): { clock: ManualClock; store: FakeLeaseStore } {
  const clock = new ManualClock();
  return { clock, store: new FakeLeaseStore(clock) };
}

describe('validateLeaderElection', () => {
  it('accepts the core components’ 15s / 10s / 2s', () => {
    expect(validateLeaderElection({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })).toEqual([]);
  });

  it.each([
    ['lease duration not above renew deadline', 10_000, 10_000, 2_000, '--leader-elect-lease-duration (10s) must be greater than --leader-elect-renew-deadline (10s)'],
    ['renew deadline equal to 1.2 × retry period', 15_000, 6_000, 5_000, '--leader-elect-renew-deadline (6s) must be greater than 1.2 × --leader-elect-retry-period (1.2 × 5s = 6s)'],
    ['renew deadline below the retry period', 15_000, 1_000, 2_000, '--leader-elect-renew-deadline (1s) must be greater than 1.2 × --leader-elect-retry-period'],
    ['a zero lease duration', 0, 10_000, 2_000, '--leader-elect-lease-duration must be greater than zero (got 0s)'],
    ['a negative retry period', 15_000, 10_000, -1, '--leader-elect-retry-period must be greater than zero'],
    ['a NaN renew deadline', 15_000, Number.NaN, 2_000, '--leader-elect-renew-deadline must be greater than zero (got NaN)'],
  ])('rejects %s', (_name, leaseDurationMs, renewDeadlineMs, retryPeriodMs, expected) => {
    const problems = validateLeaderElection({ leaseDurationMs, renewDeadlineMs, retryPeriodMs });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(expected);
  });

  it('reports every problem at once', () => {
    const problems = validateLeaderElection({
      leaseDurationMs: 15_000,
      renewDeadlineMs: 0,
      retryPeriodMs: 0,
      identity: '',
    });
    expect(problems).toEqual([
      '--leader-elect-renew-deadline must be greater than zero (got 0s)',
      '--leader-elect-retry-period must be greater than zero (got 0s)',
      'leader election identity must not be empty',
    ]);
  });

  it('makes the constructor throw a typed error that names the flags and the rule', () => {
    const { store } = setup();
    const build = (): LeaderElector =>
      new LeaderElector({
        lock,
        identity: 'a',
        leaseDurationMs: 10_000,
        renewDeadlineMs: 15_000,
        retryPeriodMs: 2_000,
        client: store.client('a'),
        logger: memoryLogger().logger,
        onStartedLeading: () => undefined,
      });
    expect(build).toThrow(LeaderElectionConfigError);
    expect(build).toThrow(/--leader-elect-lease-duration \(10s\) must be greater than --leader-elect-renew-deadline \(15s\)/);
  });

  it('refuses an empty identity at construction', () => {
    const { store } = setup();
    expect(() => candidate(store, '')).toThrow(/identity must not be empty/);
  });
});

describe('acquiring', () => {
  it('creates an absent lease and starts leading', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a');
    await clock.advance(0);

    expect(a.elector.isLeader()).toBe(true);
    expect(a.elector.leader()).toBe('a');
    expect(a.events).toEqual(['leader:a', 'started']);
    const spec = store.spec(lock);
    expect(spec).toEqual({
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      acquireTime: microTime(clock.wallNow()),
      renewTime: microTime(clock.wallNow()),
      leaseTransitions: 0,
    });
    expect(spec?.renewTime).toMatch(/\.\d{6}Z$/);
  });

  it('takes a lease that nobody holds at once, counting a transition', async () => {
    const { clock, store } = setup();
    store.put(lock, { holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 4 });
    const a = candidate(store, 'a');
    await clock.advance(0);

    expect(a.elector.isLeader()).toBe(true);
    expect(store.spec(lock)).toMatchObject({ holderIdentity: 'a', leaseTransitions: 5, leaseDurationSeconds: 15 });
  });

  it('writes the lease duration rounded up to whole seconds', async () => {
    const { clock, store } = setup();
    candidate(store, 'a', { leaseDurationMs: 1_500, renewDeadlineMs: 1_000, retryPeriodMs: 500 });
    await clock.advance(0);
    expect(store.spec(lock)?.leaseDurationSeconds).toBe(2);
  });

  it.each([
    ['an hour in the past', -3_600_000],
    ['an hour in the future', 3_600_000],
    ['just now', 0],
  ])(
    'waits out the lease duration by its own observation when the holder’s renewTime is %s',
    async (_when, skewMs) => {
      const { clock, store } = setup();
      const stamp = microTime(new Date(clock.wallNow().getTime() + skewMs));
      store.put(lock, {
        holderIdentity: 'old',
        leaseDurationSeconds: 15,
        acquireTime: stamp,
        renewTime: stamp,
        leaseTransitions: 2,
      });
      const b = candidate(store, 'b');

      await clock.advanceTo(LEASE - 1);
      expect(b.elector.isLeader()).toBe(false);
      expect(b.elector.leader()).toBe('old');
      expect(store.spec(lock)?.holderIdentity).toBe('old');

      // The first retry at or after 15 s of observation takes it (retries every 2 s here).
      await clock.advanceTo(LEASE + 1.2 * RETRY);
      expect(b.elector.isLeader()).toBe(true);
      expect(store.spec(lock)).toMatchObject({ holderIdentity: 'b', leaseTransitions: 3 });
      expect(b.events).toEqual(['leader:old', 'leader:b', 'started']);
    },
  );

  it('never takes a lease whose holder keeps renewing it', async () => {
    const { clock, store } = setup();
    const renewBy = (at: number): void =>
      store.put(lock, {
        holderIdentity: 'old',
        leaseDurationSeconds: 15,
        renewTime: microTime(new Date(clock.wallBase + at)),
        leaseTransitions: 0,
      });
    renewBy(0);
    const b = candidate(store, 'b');
    for (let t = 5_000; t <= 120_000; t += 5_000) {
      await clock.advanceTo(t);
      renewBy(t);
    }
    expect(b.elector.isLeader()).toBe(false);
    expect(store.spec(lock)?.holderIdentity).toBe('old');
    expect(store.writes.filter((w) => w.by === 'b')).toEqual([]);
  });

  describe('onFirstAttempt', () => {
    const first = (events: string[]): Partial<LeaderElectorOptions> => ({
      onFirstAttempt: (acquired) => events.push(`first attempt: ${String(acquired)}`),
    });

    it('reports an acquired lease once, before leading starts', async () => {
      const { clock, store } = setup();
      const events: string[] = [];
      const a: Candidate = candidate(store, 'a', {
        onFirstAttempt: (acquired) => events.push(`first attempt: ${String(acquired)}, leading: ${String(a.events.includes('started'))}`),
      });
      await clock.advance(RETRY * 5);
      expect(a.elector.isLeader()).toBe(true);
      expect(events).toEqual(['first attempt: true, leading: false']);
    });

    it('reports a lease held by another once, though the candidate keeps trying', async () => {
      const { clock, store } = setup();
      store.put(lock, { holderIdentity: 'old', leaseDurationSeconds: 3600, leaseTransitions: 0 });
      const events: string[] = [];
      const b = candidate(store, 'b', first(events));
      await clock.advance(RETRY * 5);
      expect(b.client.requests.length).toBeGreaterThan(1);
      expect(events).toEqual(['first attempt: false']);
    });

    it('reports a failed first attempt as not acquired', async () => {
      const { clock, store } = setup();
      const client = store.client('b');
      client.link = 'down';
      const events: string[] = [];
      candidate(store, 'b', { ...first(events), client });
      await clock.advance(0);
      expect(events).toEqual(['first attempt: false']);
    });

    it('reports a first attempt abandoned at the renew deadline as not acquired', async () => {
      const { clock, store } = setup();
      const client = store.client('b');
      client.link = 'hang';
      const events: string[] = [];
      candidate(store, 'b', { ...first(events), client });
      await clock.advance(RENEW - 1);
      expect(events).toEqual([]);
      await clock.advance(1);
      expect(events).toEqual(['first attempt: false']);
    });

    it('reports nothing when stop() cuts the first attempt short', async () => {
      const { clock, store } = setup();
      const client = store.client('b');
      client.link = 'hang';
      const events: string[] = [];
      const b = candidate(store, 'b', { ...first(events), client });
      await clock.advance(1_000);
      const stopped = b.elector.stop();
      await clock.advance(0);
      await stopped;
      expect(b.outcome).toBe('stopped');
      expect(events).toEqual([]);
    });
  });

  it('restarts its expiry clock when it sees the record change', async () => {
    const { clock, store } = setup();
    const spec = { holderIdentity: 'old', leaseDurationSeconds: 15, leaseTransitions: 0 };
    store.put(lock, { ...spec, renewTime: microTime(clock.wallNow()) });
    const b = candidate(store, 'b');
    await clock.advanceTo(9_000);
    store.put(lock, { ...spec, renewTime: microTime(clock.wallNow()) });

    // Seen at the 10 s retry, so the lease is valid until 25 s by b's observation.
    await clock.advanceTo(10_000 + LEASE - 1);
    expect(b.elector.isLeader()).toBe(false);
    await clock.advanceTo(10_000 + LEASE + 1.2 * RETRY);
    expect(b.elector.isLeader()).toBe(true);
  });

  it('tries again the moment the observed lease expires instead of at its next retry', async () => {
    const { clock, store } = setup();
    store.put(lock, { holderIdentity: 'old', leaseDurationSeconds: 15, leaseTransitions: 0 });
    const b = candidate(store, 'b');

    // Retries fall at 0, 2, …, 14 s; the next one would be 16 s, but the lease expires at 15 s.
    await clock.advanceTo(LEASE);
    expect(b.elector.isLeader()).toBe(false);
    await clock.advanceTo(LEASE + 1);
    expect(b.elector.isLeader()).toBe(true);
    const reads = b.client.requests.filter((r) => r.verb === 'get').map((r) => r.at);
    expect(reads.slice(-2)).toEqual([7 * RETRY, LEASE + 1]);
  });

  it('spreads retries between one and 1.2 retry periods', async () => {
    for (const [random, wait] of [
      [0, RETRY],
      [0.5, 1.1 * RETRY],
      [0.999, 1.1998 * RETRY],
    ] as const) {
      const { clock, store } = setup();
      store.put(lock, { holderIdentity: 'old', leaseDurationSeconds: 15, leaseTransitions: 0 });
      const b = candidate(store, 'b', { random: () => random });
      await clock.advance(3 * RETRY);
      const reads = b.client.requests.filter((r) => r.verb === 'get').map((r) => r.at);
      expect(reads.slice(0, 3)).toEqual([0, wait, 2 * wait]);
    }
  });

  it('lets exactly one of two racing candidates win an absent lease', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a');
    const b = candidate(store, 'b');
    await clock.advance(0);

    expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean)).toHaveLength(1);
    expect(store.writes.filter((w) => w.verb === 'create')).toEqual([
      expect.objectContaining({ ok: true }),
      expect.objectContaining({ ok: false }),
    ]);

    await clock.advance(60_000);
    expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean)).toHaveLength(1);
    expect(store.spec(lock)?.leaseTransitions).toBe(0);
  });

  it('lets exactly one of two racing candidates take over an expired lease', async () => {
    const { clock, store } = setup();
    store.put(lock, { holderIdentity: 'old', leaseDurationSeconds: 15, leaseTransitions: 7 });
    const a = candidate(store, 'a');
    const b = candidate(store, 'b');
    // Both read the same resourceVersion before either writes.
    a.client.latencyMs = 50;
    b.client.latencyMs = 50;

    await clock.advance(30_000);
    expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean)).toHaveLength(1);
    expect(store.conflicts).toBeGreaterThanOrEqual(1);
    expect(store.spec(lock)?.leaseTransitions).toBe(8);
  });
});

describe('renewing', () => {
  it('renews every retry period, keeping acquireTime and the transition count', async () => {
    const { clock, store } = setup();
    store.put(lock, { holderIdentity: '', leaseTransitions: 1 });
    const a = candidate(store, 'a');
    await clock.advance(0);
    const acquired = store.spec(lock);

    await clock.advanceTo(RETRY);
    const renewed = store.spec(lock);
    expect(renewed?.renewTime).toBe(microTime(clock.wallNow()));
    expect(renewed?.acquireTime).toBe(acquired?.acquireTime);
    expect(renewed?.leaseTransitions).toBe(2);

    await clock.advanceTo(10 * RETRY);
    expect(store.writes.filter((w) => w.by === 'a' && w.ok)).toHaveLength(11);
    expect(store.spec(lock)?.leaseTransitions).toBe(2);
    expect(a.elector.isLeader()).toBe(true);
    expect(a.events).toEqual(['leader:a', 'started']);
  });

  it('keeps leading after a renewal loses a race to an unrelated write', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a');
    await clock.advance(0);
    // Same record, new resourceVersion (say, a label was added): the fast path gets a 409.
    const spec = store.spec(lock);
    if (spec === undefined) throw new Error('lease missing');
    store.put(lock, spec);

    await clock.advanceTo(RETRY);
    expect(store.writes.at(-2)).toMatchObject({ by: 'a', ok: false });
    expect(store.writes.at(-1)).toMatchObject({ by: 'a', ok: true });
    expect(a.elector.isLeader()).toBe(true);
  });
});

describe('holdsLease, checked right before each write', () => {
  it('is true while leading within the renew deadline of the last successful renewal', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a');
    expect(a.elector.holdsLease()).toBe(false);
    await clock.advance(0);
    expect(a.elector.holdsLease()).toBe(true);
    await clock.advanceTo(5 * RETRY);
    expect(a.elector.holdsLease()).toBe(true);
  });

  it('turns false once the renew deadline passed, even before the renew loop has noticed', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a');
    await clock.advance(0);
    // A paused process: time moves on, but no timer of ours has run yet.
    clock.jump(RENEW);
    expect(a.elector.isLeader()).toBe(true);
    expect(a.elector.holdsLease()).toBe(false);
  });
});

describe('losing leadership', () => {
  it('aborts the signal, then calls onStoppedLeading, when no renewal succeeds within the renew deadline', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a');
    await clock.advance(0);
    a.client.link = 'down';

    await clock.advanceTo(RENEW - 1);
    expect(a.elector.isLeader()).toBe(true);
    await clock.advanceTo(RENEW);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.outcome).toBe('lost');
    expect(a.events).toEqual(['leader:a', 'started', 'aborted', 'stopped(signal aborted: true)']);
    expect(a.signal?.reason).toBeInstanceOf(LeadershipEndedError);
  });

  it('stops at the renew deadline even while a renewal request hangs', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a');
    await clock.advance(0);
    a.client.link = 'hang';

    await clock.advanceTo(RENEW - 1);
    expect(a.elector.isLeader()).toBe(true);
    await clock.advanceTo(RENEW);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.events.slice(-2)).toEqual(['aborted', 'stopped(signal aborted: true)']);
  });

  it('counts the deadline from the last successful renewal', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a');
    await clock.advanceTo(3 * RETRY);
    a.client.link = 'down';

    await clock.advanceTo(3 * RETRY + RENEW - 1);
    expect(a.elector.isLeader()).toBe(true);
    await clock.advanceTo(3 * RETRY + RENEW);
    expect(a.elector.isLeader()).toBe(false);
  });

  it('survives failed renewals when one succeeds before the deadline', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a');
    await clock.advance(0);
    a.client.link = 'down';
    await clock.advanceTo(RENEW - RETRY - 1_000);
    a.client.link = 'up';

    await clock.advanceTo(5 * RENEW);
    expect(a.elector.isLeader()).toBe(true);
    expect(a.events).toEqual(['leader:a', 'started']);
  });

  it('stops at once when a renewal finds another holder', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a');
    await clock.advance(0);
    store.put(lock, { holderIdentity: 'intruder', leaseDurationSeconds: 15, leaseTransitions: 1 });

    await clock.advanceTo(RETRY);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.outcome).toBe('lost');
    expect(a.events).toEqual([
      'leader:a',
      'started',
      'aborted',
      'stopped(signal aborted: true)',
      'leader:intruder',
    ]);
  });

  it('writes nothing more to the lease after losing it', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a', { releaseOnCancel: true });
    await clock.advance(0);
    a.client.link = 'down';
    await clock.advanceTo(RENEW);
    a.client.link = 'up';
    const writes = store.writes.length;

    await clock.advance(60_000);
    await a.elector.stop();
    expect(store.writes.length).toBe(writes);
    expect(store.spec(lock)?.holderIdentity).toBe('a');
  });
});

describe('health', () => {
  it('reports a leader healthy while it renews, and unhealthy once stuck beyond lease duration plus tolerance', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a');
    await clock.advance(30_000);
    expect(a.elector.isHealthy()).toBe(true);

    const lastRenewal = clock.now();
    clock.jump(LEASE + 20_000);
    expect(a.elector.check()).toEqual({ ok: true });
    clock.jump(1);
    const result = a.elector.check();
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(/failed to renew leadership on lease kube-system\/podcidr-allocator/);
    expect(clock.now() - lastRenewal).toBe(LEASE + 20_001);
    expect(a.elector.check(60_000).ok).toBe(true);
  });

  it('always reports a candidate that does not lead as healthy', async () => {
    const { clock, store } = setup();
    store.put(lock, { holderIdentity: 'old', leaseDurationSeconds: 3_600, leaseTransitions: 0 });
    const b = candidate(store, 'b');
    await clock.advance(10_000);
    clock.jump(3_600_000);
    expect(b.elector.isLeader()).toBe(false);
    expect(b.elector.isHealthy()).toBe(true);
  });
});

describe('stopping', () => {
  it('releases the lease so that a standby takes it on its next retry', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a', { releaseOnCancel: true });
    await clock.advance(0);
    const b = candidate(store, 'b');
    await clock.advanceTo(5_000);
    expect(b.elector.isLeader()).toBe(false);

    const stopped = a.elector.stop();
    await clock.advance(0);
    await stopped;
    expect(a.outcome).toBe('stopped');
    expect(a.events).toEqual(['leader:a', 'started', 'aborted', 'stopped(signal aborted: true)']);
    expect(store.spec(lock)).toEqual({
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: microTime(clock.wallNow()),
      renewTime: microTime(clock.wallNow()),
      leaseTransitions: 0,
    });

    await clock.advanceTo(5_000 + 1.2 * RETRY);
    expect(b.elector.isLeader()).toBe(true);
    expect(store.spec(lock)).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1, leaseDurationSeconds: 15 });
  });

  it('leaves the lease in place when releaseOnCancel is off', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a');
    await clock.advance(0);
    const stopped = a.elector.stop();
    await clock.advance(0);
    await stopped;
    expect(a.events.slice(-2)).toEqual(['aborted', 'stopped(signal aborted: true)']);
    expect(store.spec(lock)?.holderIdentity).toBe('a');
  });

  it('still releases when a renewal that stopping abandoned landed on the server after all', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a', { releaseOnCancel: true });
    await clock.advance(0);
    // The server applied a renewal whose answer never reached us: same holder, newer resourceVersion.
    const held = store.spec(lock);
    store.put(lock, { ...held, renewTime: microTime(clock.wallNow()) });

    const stopped = a.elector.stop();
    await clock.advance(0);
    await stopped;
    expect(store.spec(lock)).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 0 });
  });

  it('does not release a lease that changed since its last renewal', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a', { releaseOnCancel: true });
    await clock.advance(0);
    store.put(lock, { holderIdentity: 'c', leaseDurationSeconds: 15, leaseTransitions: 1 });

    const stopped = a.elector.stop();
    await clock.advance(0);
    await stopped;
    expect(store.spec(lock)).toMatchObject({ holderIdentity: 'c', leaseTransitions: 1 });
  });

  it('waits for the work to finish before releasing', async () => {
    const { clock, store } = setup();
    const order: string[] = [];
    const a = candidate(store, 'a', {
      releaseOnCancel: true,
      onStartedLeading: (signal) =>
        new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => {
            void clock.sleep(1_000, new AbortController().signal).then(() => {
              order.push(`work done, holder ${store.spec(lock)?.holderIdentity ?? '-'}`);
              resolve();
            });
          });
        }),
      onStoppedLeading: () => order.push(`stopped, holder ${store.spec(lock)?.holderIdentity ?? '-'}`),
    });
    await clock.advanceTo(RETRY);
    const stopped = a.elector.stop();
    await clock.advance(1_000);
    await stopped;
    expect(order).toEqual(['work done, holder a', 'stopped, holder ']);
  });

  it('leaves the lease to expire when the work does not finish within the renew deadline', async () => {
    const { clock, store } = setup();
    const a = candidate(store, 'a', {
      releaseOnCancel: true,
      onStartedLeading: () => new Promise<void>(() => undefined),
    });
    await clock.advance(0);
    const stopped = a.elector.stop();
    await clock.advance(RENEW);
    await stopped;
    expect(a.outcome).toBe('stopped');
    expect(store.spec(lock)?.holderIdentity).toBe('a');
  });

  it('stops a candidate that never led without calling onStoppedLeading', async () => {
    const { clock, store } = setup();
    store.put(lock, { holderIdentity: 'old', leaseDurationSeconds: 15, leaseTransitions: 0 });
    const b = candidate(store, 'b', { releaseOnCancel: true });
    await clock.advance(3_000);
    const stopped = b.elector.stop();
    await clock.advance(0);
    await stopped;
    expect(b.outcome).toBe('stopped');
    expect(b.events).toEqual(['leader:old']);
    expect(store.spec(lock)?.holderIdentity).toBe('old');
  });
});

describe('abortableSleep', () => {
  it('resolves as soon as its signal aborts, and at once when already aborted', async () => {
    const ctrl = new AbortController();
    const long = abortableSleep(3_600_000, ctrl.signal);
    ctrl.abort();
    await long;
    await abortableSleep(3_600_000, ctrl.signal);
    expect(ctrl.signal.aborted).toBe(true);
  });
});
