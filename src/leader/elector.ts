// Leader election on a coordination.k8s.io/v1 Lease, with the semantics of client-go's leaderelection.
// Guarantees: a leader stops (its signal aborts) no later than renewDeadline after the start of its
// last successful renewal, which is before any candidate may judge the lease expired.
//
// What it does NOT guarantee: that only one replica acts as leader at any instant (no fencing).
// Expiry is judged only from timestamps captured locally: a candidate restarts its own monotonic
// clock whenever the stored record changes, and never compares the holder's renewTime with its own
// clock. That tolerates any clock offset between replicas, but not clocks running at different
// rates; keep leaseDuration/renewDeadline comfortably above 1 and keep clocks synchronized. Work
// done under the lease must stop when the signal aborts and must not trust a stale cache.

import type { Logger } from 'pino';
import {
  isLeaseFailure,
  type LeaseClient,
  type LeaseRecord,
  type LeaseRef,
  type ObservedLease,
} from './lease-client.js';
import { type Clock, systemClock as processClock, wait } from '../time.js';

/** client-go's JitterFactor: renewDeadline must leave room for one jittered retry. */
export const JITTER_FACTOR = 1.2;

/** kube-controller-manager's healthz tolerance beyond the lease duration. */
export const DEFAULT_HEALTH_TOLERANCE_MS = 20_000;

export interface ElectorClock extends Pick<Clock, 'now'> {
  /** Monotonic milliseconds; judges expiry and deadlines. */
  now(): number;
  /** Wall-clock time, only for the acquireTime/renewTime stamps written to the Lease. */
  wallNow(): Date;
}

/** Resolves after ms, or as soon as signal aborts; never rejects. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

export interface LeaderElectionTimings {
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

export interface LeaderElectorOptions extends LeaderElectionTimings {
  readonly lock: LeaseRef;
  /** Unique per replica (e.g. pod name plus a random suffix); must not be empty. */
  readonly identity: string;
  readonly client: LeaseClient;
  readonly logger: Logger;
  /**
   * Called once leadership is acquired. The signal aborts the moment leadership ends; work must
   * stop then. A returned promise is awaited (up to the renew deadline) before a graceful release.
   */
  readonly onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called after the signal has aborted, when this replica was leading and stops. */
  readonly onStoppedLeading?: () => void;
  /** Called when the observed holder changes, including the first one seen and ourselves. */
  readonly onNewLeader?: (identity: string) => void;
  /**
   * Called once, when the first attempt to acquire has concluded: acquired (onStartedLeading
   * follows at once) or not (another holder, or the attempt failed). Lets a replica defer work
   * that a term would otherwise repeat, such as a first full list, until it knows it is a standby.
   */
  readonly onFirstAttempt?: (acquired: boolean) => void;
  /** On stop(), hand the lease over at once instead of letting it expire. */
  readonly releaseOnCancel?: boolean;
  readonly clock?: ElectorClock;
  readonly sleep?: Sleep;
  /** [0, 1); spreads candidates' retries. */
  readonly random?: () => number;
}

export interface HealthResult {
  readonly ok: boolean;
  readonly reason?: string;
}

/** How run() ended: stop() was called, or leadership was lost (the process should exit). */
export type RunOutcome = 'stopped' | 'lost';

const FLAG = {
  leaseDuration: '--leader-elect-lease-duration',
  renewDeadline: '--leader-elect-renew-deadline',
  retryPeriod: '--leader-elect-retry-period',
} as const;

export class LeaderElectionConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid leader election configuration: ${problems.join('; ')}`);
    this.name = 'LeaderElectionConfigError';
  }
}

/** The signal's reason when leadership ends; lets workers tell loss from shutdown. */
export class LeadershipEndedError extends Error {
  constructor(
    readonly outcome: RunOutcome,
    message: string,
  ) {
    super(message);
    this.name = 'LeadershipEndedError';
  }
}

/** Every problem with the timings (and identity, when given), as messages naming the flags. */
export function validateLeaderElection(
  config: LeaderElectionTimings & { readonly identity?: string },
): string[] {
  const problems: string[] = [];
  const { leaseDurationMs: lease, renewDeadlineMs: renew, retryPeriodMs: retry } = config;
  const positive: [string, number][] = [
    [FLAG.leaseDuration, lease],
    [FLAG.renewDeadline, renew],
    [FLAG.retryPeriod, retry],
  ];
  for (const [flag, value] of positive) {
    if (!Number.isFinite(value) || value <= 0) {
      problems.push(`${flag} must be greater than zero (got ${formatMs(value)})`);
    }
  }
  if (problems.length === 0) {
    if (lease <= renew) {
      problems.push(
        `${FLAG.leaseDuration} (${formatMs(lease)}) must be greater than ${FLAG.renewDeadline} (${formatMs(renew)})`,
      );
    }
    if (renew <= JITTER_FACTOR * retry) {
      problems.push(
        `${FLAG.renewDeadline} (${formatMs(renew)}) must be greater than ${JITTER_FACTOR} × ${FLAG.retryPeriod} (${JITTER_FACTOR} × ${formatMs(retry)} = ${formatMs(JITTER_FACTOR * retry)})`,
      );
    }
  }
  if (config.identity !== undefined && config.identity.trim() === '') {
    problems.push('leader election identity must not be empty');
  }
  return problems;
}

function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${Math.round(ms * 1000) / 1000}ms`;
}

export const systemClock: ElectorClock = {
  now: () => processClock.now(),
  wallNow: () => new Date(),
};

export const abortableSleep: Sleep = (ms, signal) => wait(processClock, ms, signal);

export class LeaderElector {
  readonly #o: LeaderElectorOptions;
  readonly #log: Logger;
  readonly #clock: ElectorClock;
  readonly #sleep: Sleep;
  readonly #random: () => number;
  /** Written to the Lease; rounded up so others never wait less than we assume. */
  readonly #leaseSeconds: number;
  readonly #stop = new AbortController();

  /** The last record read or written, with its resourceVersion for the next write. */
  #observed: ObservedLease | undefined;
  /** Monotonic time at which #observed.raw last changed: the start of the holder's term as we see it. */
  #observedTime = 0;
  /** Start (monotonic) of our last successful acquire or renew; the renew deadline counts from it. */
  #lastRenewStart = 0;
  #reportedLeader = '';
  #attempted = false;
  /** Defined exactly while this replica acts as leader. */
  #leading: AbortController | undefined;
  #work: Promise<void> | undefined;
  #run: Promise<RunOutcome> | undefined;

  constructor(options: LeaderElectorOptions) {
    const problems = validateLeaderElection(options);
    if (problems.length > 0) throw new LeaderElectionConfigError(problems);
    this.#o = options;
    this.#log = options.logger.child({ lease: describe(options.lock), identity: options.identity });
    this.#clock = options.clock ?? systemClock;
    this.#sleep = options.sleep ?? abortableSleep;
    this.#random = options.random ?? Math.random;
    this.#leaseSeconds = Math.ceil(options.leaseDurationMs / 1000);
  }

  /** Campaigns, then leads until stop() or loss. Call once; later calls return the same promise. */
  run(): Promise<RunOutcome> {
    this.#run ??= this.#campaign();
    return this.#run;
  }

  /** Stops campaigning or leading; resolves once the lease is released (if configured). */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#run;
  }

  /** True while this replica acts as leader (its signal has not aborted). */
  isLeader(): boolean {
    return this.#leading !== undefined;
  }

  /**
   * True while leading and the last successful renewal started less than renewDeadline ago, by the
   * monotonic clock. Callers check it right before each write: after the process was paused, I/O
   * callbacks can run before the renew loop notices the loss, and no other replica can have taken
   * over before that bound (leaseDuration > renewDeadline leaves room for the write's flight time).
   */
  holdsLease(): boolean {
    return this.#leading !== undefined && this.#clock.now() < this.#lastRenewStart + this.#o.renewDeadlineMs;
  }

  /** The holder last observed on the Lease; '' when none. */
  leader(): string {
    return this.#observed?.record.holderIdentity ?? '';
  }

  /** leaseTransitions of the last observed record. */
  transitions(): number {
    return this.#observed?.record.leaseTransitions ?? 0;
  }

  /**
   * A leader whose lease we have not seen renewed for leaseDuration + tolerance is unhealthy: it
   * should have stepped down long ago, so something is stuck. Non-leaders are always healthy.
   */
  check(toleranceMs: number = DEFAULT_HEALTH_TOLERANCE_MS): HealthResult {
    if (this.#leading === undefined) return { ok: true };
    const since = this.#clock.now() - this.#observedTime;
    if (since > this.#o.leaseDurationMs + toleranceMs) {
      return {
        ok: false,
        reason: `failed to renew leadership on lease ${describe(this.#o.lock)}: last renewed ${formatMs(Math.round(since))} ago`,
      };
    }
    return { ok: true };
  }

  isHealthy(): boolean {
    return this.check().ok;
  }

  async #campaign(): Promise<RunOutcome> {
    if (!(await this.#acquire())) return 'stopped';
    if (this.#stop.signal.aborted) {
      // Acquired just as we were asked to stop: hand it back without starting work.
      if (this.#o.releaseOnCancel === true) await this.#release();
      return 'stopped';
    }
    this.#startLeading();
    const outcome = await this.#renewLoop();
    if (outcome === 'stopped') await this.#stepDown();
    return outcome;
  }

  async #acquire(): Promise<boolean> {
    this.#log.info('attempting to acquire leader lease');
    while (!this.#stop.signal.aborted) {
      const acquired = await this.#attempt(this.#o.renewDeadlineMs);
      this.#reportNewLeader();
      this.#reportFirstAttempt(acquired);
      if (acquired) {
        this.#log.info({ transitions: this.transitions() }, 'successfully acquired lease');
        return true;
      }
      // client-go's JitterUntil waits up to (1 + 1.2) × retryPeriod; we cap it at 1.2 × so a
      // standby takes over a released lease within 1.2 retry periods while retries still spread.
      // A retry falling after the observed expiry moves to it: a crashed leader's successor then
      // starts up to one retry period sooner (its lease is still judged by our own clock alone).
      const wait = this.#o.retryPeriodMs * (1 + (JITTER_FACTOR - 1) * this.#random());
      await this.#sleep(Math.min(wait, this.#untilExpiry()), this.#stop.signal);
    }
    return false;
  }

  /** Returns when leadership ends: 'stopped' on stop(), 'lost' once the signal has been aborted. */
  async #renewLoop(): Promise<RunOutcome> {
    const { retryPeriodMs, renewDeadlineMs } = this.#o;
    for (;;) {
      const deadline = this.#lastRenewStart + renewDeadlineMs;
      const pause = Math.min(retryPeriodMs, deadline - this.#clock.now());
      await this.#sleep(Math.max(0, pause), this.#stop.signal);
      if (this.#stop.signal.aborted) return 'stopped';
      const start = this.#clock.now();
      if (start >= deadline) {
        this.#lose(`no successful renewal within ${formatMs(renewDeadlineMs)}`);
        return 'lost';
      }
      const renewed = await this.#attempt(deadline - start);
      const holder = this.leader();
      if (!renewed && holder !== '' && holder !== this.#o.identity) {
        // Someone else holds it: waiting out the deadline would only prolong two leaders.
        this.#lose(`lease is now held by ${holder}`);
        this.#reportNewLeader();
        return 'lost';
      }
      if (!renewed && this.#clock.now() >= deadline) {
        this.#lose(`no successful renewal within ${formatMs(renewDeadlineMs)}`);
        this.#reportNewLeader();
        return 'lost';
      }
      this.#reportNewLeader();
      if (this.#stop.signal.aborted) return 'stopped';
      if (!renewed) this.#log.warn('failed to renew lease; retrying until the renew deadline');
    }
  }

  /** One tryAcquireOrRenew, abandoned after boundMs or on stop(); never throws. */
  async #attempt(boundMs: number): Promise<boolean> {
    const start = this.#clock.now();
    const ok = await this.#bounded(boundMs, [this.#stop.signal], (signal) =>
      this.#tryAcquireOrRenew(signal),
    );
    if (ok === true) this.#lastRenewStart = start;
    return ok === true;
  }

  /**
   * Runs op with a signal that aborts after boundMs (by the injected clock) or when any of links
   * aborts. Resolves undefined when abandoned; op must not change state once its signal aborted.
   */
  async #bounded<T>(
    boundMs: number,
    links: AbortSignal[],
    op: (signal: AbortSignal) => Promise<T>,
  ): Promise<T | undefined> {
    const request = new AbortController();
    const timer = new AbortController();
    const abort = (): void => request.abort(new Error('leader election request abandoned'));
    for (const link of links) link.addEventListener('abort', abort, { once: true });
    const expired = this.#sleep(boundMs, timer.signal).then(() => {
      if (!timer.signal.aborted) abort();
      return undefined;
    });
    try {
      if (links.some((l) => l.aborted)) abort();
      return await Promise.race([op(request.signal), expired]);
    } finally {
      timer.abort();
      for (const link of links) link.removeEventListener('abort', abort);
    }
  }

  /** client-go's tryAcquireOrRenew: true when we hold the lease after this call. */
  async #tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { client, lock, identity } = this.#o;
    const now = this.#clock.now();
    const wall = this.#clock.wallNow();
    const desired: LeaseRecord = {
      holderIdentity: identity,
      leaseDurationSeconds: this.#leaseSeconds,
      acquireTime: wall,
      renewTime: wall,
      leaseTransitions: 0,
    };

    // 1. Fast path: we lead and the record we last wrote should still be current.
    const last = this.#observed;
    if (last !== undefined && this.#observedHolderIsMe() && this.#isLeaseValid(now)) {
      try {
        const renewed = await client.update(lock, keepTerm(desired, last.record), last.resourceVersion, signal);
        if (signal.aborted) return false;
        this.#observe(renewed, true);
        return true;
      } catch (err) {
        if (signal.aborted) return false;
        this.#log.debug({ err }, 'optimistic renewal failed; reading the lease');
      }
    }

    // 2. Read the lease, or create it.
    let current: ObservedLease;
    try {
      current = await client.get(lock, signal);
    } catch (err) {
      if (signal.aborted) return false;
      if (!isLeaseFailure(err, 'not-found')) {
        this.#log.warn({ err }, 'error retrieving lease');
        return false;
      }
      try {
        const created = await client.create(lock, desired, signal);
        if (signal.aborted) return false;
        this.#observe(created, true);
        return true;
      } catch (createErr) {
        if (!signal.aborted) this.#log.info({ err: createErr }, 'error creating lease');
        return false;
      }
    }
    if (signal.aborted) return false;

    // 3. Restart our expiry clock only when the record changed; then judge expiry by it alone.
    this.#observe(current, false);
    const holder = current.record.holderIdentity;
    if (holder !== '' && this.#isLeaseValid(now) && !this.#observedHolderIsMe()) {
      this.#log.debug({ holder }, 'lease is held by another candidate and has not yet expired');
      return false;
    }

    // 4. Take over (transitions + 1) or renew (term kept), guarded by the resourceVersion we read.
    const record = this.#observedHolderIsMe()
      ? keepTerm(desired, current.record)
      : { ...desired, leaseTransitions: current.record.leaseTransitions + 1 };
    try {
      const written = await client.update(lock, record, current.resourceVersion, signal);
      if (signal.aborted) return false;
      this.#observe(written, true);
      return true;
    } catch (err) {
      if (signal.aborted) return false;
      if (isLeaseFailure(err, 'conflict')) {
        this.#log.debug('lease changed under us; lost this round');
      } else {
        this.#log.warn({ err }, 'failed to update lease');
      }
      return false;
    }
  }

  /**
   * Records a read or our own write. The expiry clock restarts when the raw record changed (for a
   * write of ours always). A read with the same record still refreshes the resourceVersion.
   */
  #observe(lease: ObservedLease, ownWrite: boolean): void {
    if (ownWrite || lease.raw !== this.#observed?.raw) this.#observedTime = this.#clock.now();
    this.#observed = lease;
  }

  #observedHolderIsMe(): boolean {
    return this.#observed?.record.holderIdentity === this.#o.identity;
  }

  /** Milliseconds until the observed holder's lease expires by our clock, plus 1; Infinity if not ahead. */
  #untilExpiry(): number {
    const observed = this.#observed;
    if (observed === undefined || observed.record.holderIdentity === '') return Infinity;
    const left = this.#observedTime + observed.record.leaseDurationSeconds * 1000 - this.#clock.now();
    return left > 0 ? left + 1 : Infinity;
  }

  /** Uses the holder's leaseDurationSeconds, measured from when we saw the record change. */
  #isLeaseValid(now: number): boolean {
    const seconds = this.#observed?.record.leaseDurationSeconds ?? 0;
    return this.#observedTime + seconds * 1000 > now;
  }

  #reportNewLeader(): void {
    const holder = this.leader();
    if (holder === this.#reportedLeader) return;
    this.#reportedLeader = holder;
    if (holder !== this.#o.identity) this.#log.info({ holder }, 'new leader observed');
    this.#callback('onNewLeader', () => this.#o.onNewLeader?.(holder));
  }

  /** An attempt cut short by stop() concluded nothing, so it is not reported. */
  #reportFirstAttempt(acquired: boolean): void {
    if (this.#attempted || this.#stop.signal.aborted) return;
    this.#attempted = true;
    this.#callback('onFirstAttempt', () => this.#o.onFirstAttempt?.(acquired));
  }

  #startLeading(): void {
    const leading = new AbortController();
    this.#leading = leading;
    this.#log.info('became leader');
    try {
      const work = this.#o.onStartedLeading(leading.signal);
      if (work instanceof Promise) {
        this.#work = work.then(
          () => undefined,
          (err: unknown) => {
            this.#log.error({ err }, 'onStartedLeading failed');
          },
        );
      }
    } catch (err) {
      this.#log.error({ err }, 'onStartedLeading failed');
    }
  }

  /** Leadership is gone: abort the signal first, so no work starts after this point. */
  #lose(reason: string): void {
    const leading = this.#leading;
    this.#leading = undefined;
    leading?.abort(new LeadershipEndedError('lost', `leadership lost: ${reason}`));
    this.#log.error({ reason }, 'leader election lost');
    this.#callback('onStoppedLeading', () => this.#o.onStoppedLeading?.());
  }

  /** Graceful end: abort the signal, let the work drain, then release the lease if configured. */
  async #stepDown(): Promise<void> {
    const leading = this.#leading;
    this.#leading = undefined;
    leading?.abort(new LeadershipEndedError('stopped', 'leader elector stopped'));
    const drained = await this.#drainWork();
    if (this.#o.releaseOnCancel === true) {
      if (drained) {
        await this.#release();
      } else {
        this.#log.warn('work did not finish within the renew deadline; leaving the lease to expire');
      }
    }
    this.#log.info('stopped leading');
    this.#callback('onStoppedLeading', () => this.#o.onStoppedLeading?.());
  }

  /** Waits for onStartedLeading's promise until our term could end by the renew deadline. */
  async #drainWork(): Promise<boolean> {
    const work = this.#work;
    if (work === undefined) return true;
    const remaining = this.#lastRenewStart + this.#o.renewDeadlineMs - this.#clock.now();
    const settled = await this.#bounded(Math.max(0, remaining), [], () => work.then(() => true));
    return settled === true;
  }

  /** client-go's release: empty holder, 1 s duration, transitions kept; only if we still hold it. */
  async #release(): Promise<void> {
    const last = this.#observed;
    if (last === undefined || !this.#observedHolderIsMe()) return;
    const wall = this.#clock.wallNow();
    const record: LeaseRecord = {
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: wall,
      renewTime: wall,
      leaseTransitions: last.record.leaseTransitions,
    };
    const result = await this.#bounded(this.#o.renewDeadlineMs, [], (signal) => this.#writeRelease(record, last, signal));
    if (result === undefined) return;
    this.#observe(result, true);
    this.#log.info('released leader lease');
  }

  /**
   * Writes the released record over the last one we saw. On a conflict it reads the lease once: a
   * renewal of ours that stop() abandoned may have reached the server after all, and a lease that
   * still names us is ours to release. Any other holder keeps it.
   */
  async #writeRelease(record: LeaseRecord, last: ObservedLease, signal: AbortSignal): Promise<ObservedLease | undefined> {
    const { client, lock, identity } = this.#o;
    try {
      return await client.update(lock, record, last.resourceVersion, signal);
    } catch (err) {
      if (!isLeaseFailure(err, 'conflict')) {
        this.#log.warn({ err }, 'failed to release lease');
        return undefined;
      }
    }
    try {
      const current = await client.get(lock, signal);
      const holder = current.record.holderIdentity;
      if (holder !== identity) {
        this.#log.info({ holder }, 'lease changed since our last renewal; not releasing it');
        return undefined;
      }
      const released = { ...record, leaseTransitions: current.record.leaseTransitions };
      return await client.update(lock, released, current.resourceVersion, signal);
    } catch (err) {
      this.#log.warn({ err }, 'failed to release lease');
      return undefined;
    }
  }

  #callback(name: string, call: () => void): void {
    try {
      call();
    } catch (err) {
      this.#log.error({ err, callback: name }, 'leader election callback threw');
    }
  }
}

/** A renewal keeps the term: acquireTime and leaseTransitions stay as they were. */
function keepTerm(desired: LeaseRecord, held: LeaseRecord): LeaseRecord {
  return { ...desired, acquireTime: held.acquireTime, leaseTransitions: held.leaseTransitions };
}

function describe(lock: LeaseRef): string {
  return `${lock.namespace}/${lock.name}`;
}
