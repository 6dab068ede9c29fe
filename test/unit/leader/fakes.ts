// Test doubles for the elector: an in-memory Lease store on the test clock that models
// resourceVersion and 409 Conflict the way the API server does.

import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import {
  LeaseError,
  type LeaseClient,
  type LeaseRecord,
  type LeaseRef,
  type ObservedLease,
} from '../../../src/leader/lease-client.js';
import type { ManualClock } from '../../support/manual-clock.js';

/** The spec as the server stores and returns it: MicroTime strings with six digits. */
export interface WireSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export function microTime(d: Date): string {
  return d.toISOString().replace(/Z$/, '000Z');
}

interface Stored {
  spec: WireSpec;
  resourceVersion: number;
}

export interface WriteLog {
  readonly by: string;
  readonly verb: 'create' | 'update';
  readonly ok: boolean;
  readonly at: number;
}

export class FakeLeaseStore {
  readonly #leases = new Map<string, Stored>();
  #rv = 100;
  readonly writes: WriteLog[] = [];
  conflicts = 0;

  constructor(readonly clock: ManualClock) {}

  /** Writes a Lease behind every client's back (another replica, or an admin). */
  put(ref: LeaseRef, spec: WireSpec): void {
    this.#leases.set(key(ref), { spec: { ...spec }, resourceVersion: ++this.#rv });
  }

  spec(ref: LeaseRef): WireSpec | undefined {
    const stored = this.#leases.get(key(ref));
    return stored && { ...stored.spec };
  }

  resourceVersion(ref: LeaseRef): string | undefined {
    const stored = this.#leases.get(key(ref));
    return stored && String(stored.resourceVersion);
  }

  client(name: string): FakeLeaseClient {
    return new FakeLeaseClient(this, name);
  }

  read(ref: LeaseRef): ObservedLease {
    const stored = this.#leases.get(key(ref));
    if (stored === undefined) throw new LeaseError('not-found', `lease ${key(ref)} not found`);
    return observed(stored);
  }

  create(by: string, ref: LeaseRef, record: LeaseRecord): ObservedLease {
    if (this.#leases.has(key(ref))) {
      this.#log(by, 'create', false);
      throw new LeaseError('conflict', `lease ${key(ref)} already exists`);
    }
    const stored = { spec: toWire(record), resourceVersion: ++this.#rv };
    this.#leases.set(key(ref), stored);
    this.#log(by, 'create', true);
    return observed(stored);
  }

  update(by: string, ref: LeaseRef, record: LeaseRecord, resourceVersion: string): ObservedLease {
    const current = this.#leases.get(key(ref));
    if (current === undefined) throw new LeaseError('not-found', `lease ${key(ref)} not found`);
    if (String(current.resourceVersion) !== resourceVersion) {
      this.#log(by, 'update', false);
      throw new LeaseError('conflict', `lease ${key(ref)}: resourceVersion ${resourceVersion} is stale`);
    }
    const stored = { spec: toWire(record), resourceVersion: ++this.#rv };
    this.#leases.set(key(ref), stored);
    this.#log(by, 'update', true);
    return observed(stored);
  }

  #log(by: string, verb: 'create' | 'update', ok: boolean): void {
    if (!ok) this.conflicts++;
    this.writes.push({ by, verb, ok, at: this.clock.now() });
  }
}

/** How a client's requests behave: normal, failing at once, or never answering. */
export type Link = 'up' | 'down' | 'hang';

export class FakeLeaseClient implements LeaseClient {
  link: Link = 'up';
  /** Simulated time each request takes before the server applies it. */
  latencyMs = 0;
  /** Every request sent, with the simulated time it was sent at. */
  readonly requests: { verb: 'get' | 'create' | 'update'; at: number }[] = [];

  constructor(
    readonly store: FakeLeaseStore,
    readonly name: string,
  ) {}

  async get(ref: LeaseRef, signal?: AbortSignal): Promise<ObservedLease> {
    this.requests.push({ verb: 'get', at: this.store.clock.now() });
    await this.#travel(signal);
    return this.store.read(ref);
  }

  async create(ref: LeaseRef, record: LeaseRecord, signal?: AbortSignal): Promise<ObservedLease> {
    this.requests.push({ verb: 'create', at: this.store.clock.now() });
    await this.#travel(signal);
    return this.store.create(this.name, ref, record);
  }

  async update(
    ref: LeaseRef,
    record: LeaseRecord,
    resourceVersion: string,
    signal?: AbortSignal,
  ): Promise<ObservedLease> {
    this.requests.push({ verb: 'update', at: this.store.clock.now() });
    await this.#travel(signal);
    return this.store.update(this.name, ref, record, resourceVersion);
  }

  async #travel(signal: AbortSignal | undefined): Promise<void> {
    if (this.link === 'down') {
      await Promise.resolve();
      throw new LeaseError('failed', 'connection refused');
    }
    if (this.link === 'hang') {
      await new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve()));
      throw new LeaseError('timeout', 'request aborted');
    }
    if (this.latencyMs > 0) {
      await this.store.clock.sleep(this.latencyMs, signal ?? new AbortController().signal);
    } else {
      await Promise.resolve();
    }
    if (signal?.aborted === true) throw new LeaseError('timeout', 'request aborted');
  }
}

function key(ref: LeaseRef): string {
  return `${ref.namespace}/${ref.name}`;
}

function toWire(record: LeaseRecord): WireSpec {
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    acquireTime: record.acquireTime && microTime(record.acquireTime),
    renewTime: record.renewTime && microTime(record.renewTime),
    leaseTransitions: record.leaseTransitions,
  };
}

function observed(stored: Stored): ObservedLease {
  const s = stored.spec;
  return {
    record: {
      holderIdentity: s.holderIdentity ?? '',
      leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
      acquireTime: s.acquireTime === undefined ? undefined : new Date(s.acquireTime),
      renewTime: s.renewTime === undefined ? undefined : new Date(s.renewTime),
      leaseTransitions: s.leaseTransitions ?? 0,
    },
    raw: JSON.stringify([
      s.holderIdentity ?? null,
      s.leaseDurationSeconds ?? null,
      s.acquireTime ?? null,
      s.renewTime ?? null,
      s.leaseTransitions ?? null,
    ]),
    resourceVersion: String(stored.resourceVersion),
  };
}

/** A real pino logger writing JSON lines into memory, for assertions on what was logged. */
export function memoryLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}
