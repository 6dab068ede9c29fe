// LeaseClient over coordination.k8s.io/v1: read, create, replace one Lease.
// Every request has a timeout; 404/409 become typed LeaseErrors; times are written as MicroTime.

import type { V1Lease, V1LeaseSpec } from '@kubernetes/client-node';
import { type RawResponse, type RestClient, jsonBody } from '../kube/client.js';
import { ApiError } from '../kube/errors.js';
import { microTime } from '../kube/micro-time.js';
import {
  LeaseError,
  type LeaseClient,
  type LeaseFailure,
  type LeaseRecord,
  type LeaseRef,
  type ObservedLease,
} from './lease-client.js';

/** A Lease as sent and received: MicroTimes are RFC 3339 strings on the wire. */
export type LeaseObject = Omit<V1Lease, 'spec'> & { spec?: LeaseSpec };
type LeaseSpec = Omit<V1LeaseSpec, 'acquireTime' | 'renewTime'> & {
  acquireTime?: string | Date;
  renewTime?: string | Date;
};

export interface KubeLeaseClientOptions {
  /** Upper bound for one request; keep it below the renew deadline. */
  readonly requestTimeoutMs: number;
}

export function createKubeLeaseClient(api: RestClient, options: KubeLeaseClientOptions): LeaseClient {
  if (!(options.requestTimeoutMs > 0)) {
    throw new RangeError(`requestTimeoutMs must be > 0, got ${options.requestTimeoutMs}`);
  }
  return new KubeLeaseClient(api, options.requestTimeoutMs);
}

class KubeLeaseClient implements LeaseClient {
  readonly #api: RestClient;
  readonly #timeoutMs: number;
  /**
   * The last object seen per Lease. An update is a PUT of the whole object, so starting from it
   * keeps labels and annotations someone else put on the Lease (client-go's LeaseLock does the same).
   */
  readonly #last = new Map<string, LeaseObject>();

  constructor(api: RestClient, timeoutMs: number) {
    this.#api = api;
    this.#timeoutMs = timeoutMs;
  }

  async get(ref: LeaseRef, signal?: AbortSignal): Promise<ObservedLease> {
    const lease = await this.#call('get', ref, signal, (request) => this.#api.request('GET', leasePath(ref), request));
    return this.#remember(ref, lease);
  }

  async create(ref: LeaseRef, record: LeaseRecord, signal?: AbortSignal): Promise<ObservedLease> {
    const body: LeaseObject = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: ref.name, namespace: ref.namespace },
      spec: toLeaseSpec(record),
    };
    const lease = await this.#call('create', ref, signal, (request) =>
      this.#api.request('POST', leasesPath(ref.namespace), { ...request, body }),
    );
    return this.#remember(ref, lease);
  }

  async update(
    ref: LeaseRef,
    record: LeaseRecord,
    resourceVersion: string,
    signal?: AbortSignal,
  ): Promise<ObservedLease> {
    const last = this.#last.get(key(ref));
    const body: LeaseObject = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...last?.metadata, name: ref.name, namespace: ref.namespace, resourceVersion },
      spec: toLeaseSpec(record),
    };
    const lease = await this.#call('update', ref, signal, (request) =>
      this.#api.request('PUT', leasePath(ref), { ...request, body }),
    );
    return this.#remember(ref, lease);
  }

  #remember(ref: LeaseRef, lease: LeaseObject): ObservedLease {
    const observed = toObservedLease(lease);
    this.#last.set(key(ref), lease);
    return observed;
  }

  async #call(
    verb: string,
    ref: LeaseRef,
    signal: AbortSignal | undefined,
    send: (request: { signal: AbortSignal }) => Promise<RawResponse>,
  ): Promise<LeaseObject> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const combined = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    try {
      return jsonBody<LeaseObject>(await send({ signal: combined }));
    } catch (err) {
      throw toLeaseError(verb, ref, err, combined);
    }
  }
}

function key(ref: LeaseRef): string {
  return `${ref.namespace}/${ref.name}`;
}

function leasesPath(namespace: string): string {
  return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
}

function leasePath(ref: LeaseRef): string {
  return `${leasesPath(ref.namespace)}/${encodeURIComponent(ref.name)}`;
}

/** MicroTime: the server wants exactly six fractional digits, which a plain Date does not give. */
function toLeaseSpec(record: LeaseRecord): LeaseSpec {
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    acquireTime: record.acquireTime && microTime(record.acquireTime),
    renewTime: record.renewTime && microTime(record.renewTime),
    leaseTransitions: record.leaseTransitions,
  };
}

/** MicroTime fields arrive as strings; a Date is accepted too. */
function wireTime(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  return undefined;
}

export function toObservedLease(lease: LeaseObject): ObservedLease {
  const spec = lease.spec ?? {};
  const acquire = wireTime(spec.acquireTime);
  const renew = wireTime(spec.renewTime);
  const resourceVersion = lease.metadata?.resourceVersion;
  if (resourceVersion === undefined || resourceVersion === '') {
    throw new LeaseError('failed', 'the server returned a Lease without metadata.resourceVersion');
  }
  return {
    record: {
      holderIdentity: spec.holderIdentity ?? '',
      leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
      acquireTime: acquire === undefined ? undefined : new Date(acquire),
      renewTime: renew === undefined ? undefined : new Date(renew),
      leaseTransitions: spec.leaseTransitions ?? 0,
    },
    raw: JSON.stringify([
      spec.holderIdentity ?? null,
      spec.leaseDurationSeconds ?? null,
      acquire ?? null,
      renew ?? null,
      spec.leaseTransitions ?? null,
    ]),
    resourceVersion,
  };
}

function toLeaseError(verb: string, ref: LeaseRef, err: unknown, signal: AbortSignal): LeaseError {
  const what = `${verb} lease ${key(ref)}`;
  if (err instanceof ApiError) {
    const code = err.code;
    const reason = err.reason;
    const failure: LeaseFailure = code === 404 ? 'not-found' : code === 409 ? 'conflict' : 'failed';
    return new LeaseError(failure, `${what}: HTTP ${code}${reason ? ` ${reason}` : ''}`, {
      cause: err,
    });
  }
  if (signal.aborted) {
    return new LeaseError('timeout', `${what}: aborted (${abortReason(signal)})`, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new LeaseError('failed', `${what}: ${message}`, { cause: err });
}

function abortReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason.name : 'aborted';
}
