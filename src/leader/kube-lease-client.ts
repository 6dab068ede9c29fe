// LeaseClient over client-node's CoordinationV1Api: read, create, replace one Lease.
// Every request has a timeout; 404/409 become typed LeaseErrors; times are written as MicroTime.

import * as k8s from '@kubernetes/client-node';
import {
  LeaseError,
  type LeaseClient,
  type LeaseFailure,
  type LeaseRecord,
  type LeaseRef,
  type ObservedLease,
} from './lease-client.js';

/** The three calls we use; a real CoordinationV1Api satisfies it. */
export type LeaseApi = Pick<
  k8s.CoordinationV1Api,
  'readNamespacedLease' | 'createNamespacedLease' | 'replaceNamespacedLease'
>;

export interface KubeLeaseClientOptions {
  /** Upper bound for one request; keep it below the renew deadline. */
  readonly requestTimeoutMs: number;
}

export function createKubeLeaseClient(api: LeaseApi, options: KubeLeaseClientOptions): LeaseClient {
  if (!(options.requestTimeoutMs > 0)) {
    throw new RangeError(`requestTimeoutMs must be > 0, got ${options.requestTimeoutMs}`);
  }
  return new KubeLeaseClient(api, options.requestTimeoutMs);
}

class KubeLeaseClient implements LeaseClient {
  readonly #api: LeaseApi;
  readonly #timeoutMs: number;
  /**
   * The last object seen per Lease. An update is a PUT of the whole object, so starting from it
   * keeps labels and annotations someone else put on the Lease (client-go's LeaseLock does the same).
   */
  readonly #last = new Map<string, k8s.V1Lease>();

  constructor(api: LeaseApi, timeoutMs: number) {
    this.#api = api;
    this.#timeoutMs = timeoutMs;
  }

  async get(ref: LeaseRef, signal?: AbortSignal): Promise<ObservedLease> {
    const lease = await this.#call('get', ref, signal, (options) =>
      this.#api.readNamespacedLease({ name: ref.name, namespace: ref.namespace }, options),
    );
    return this.#remember(ref, lease);
  }

  async create(ref: LeaseRef, record: LeaseRecord, signal?: AbortSignal): Promise<ObservedLease> {
    const body: k8s.V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: ref.name, namespace: ref.namespace },
      spec: toLeaseSpec(record),
    };
    const lease = await this.#call('create', ref, signal, (options) =>
      this.#api.createNamespacedLease({ namespace: ref.namespace, body }, options),
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
    const body: k8s.V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...last?.metadata, name: ref.name, namespace: ref.namespace, resourceVersion },
      spec: toLeaseSpec(record),
    };
    const lease = await this.#call('update', ref, signal, (options) =>
      this.#api.replaceNamespacedLease(
        { name: ref.name, namespace: ref.namespace, body },
        options,
      ),
    );
    return this.#remember(ref, lease);
  }

  #remember(ref: LeaseRef, lease: k8s.V1Lease): ObservedLease {
    const observed = toObservedLease(lease);
    this.#last.set(key(ref), lease);
    return observed;
  }

  async #call<T>(
    verb: string,
    ref: LeaseRef,
    signal: AbortSignal | undefined,
    send: (options: k8s.ConfigurationOptions) => Promise<T>,
  ): Promise<T> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const combined = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    try {
      return await send(withSignal(combined));
    } catch (err) {
      throw toLeaseError(verb, ref, err, combined);
    }
  }
}

function key(ref: LeaseRef): string {
  return `${ref.namespace}/${ref.name}`;
}

/** Per-call middleware that attaches our abort signal; appended so the client's own middleware stays. */
function withSignal(signal: AbortSignal): k8s.ConfigurationOptions {
  const middleware: k8s.ObservableMiddleware = {
    pre: (ctx) => {
      ctx.setSignal(signal);
      return new k8s.Observable(Promise.resolve(ctx));
    },
    post: (rsp) => new k8s.Observable(Promise.resolve(rsp)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

/** MicroTime: the server wants exactly six fractional digits, which a plain Date does not give. */
function toLeaseSpec(record: LeaseRecord): k8s.V1LeaseSpec {
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    acquireTime: record.acquireTime && new k8s.V1MicroTime(record.acquireTime.getTime()),
    renewTime: record.renewTime && new k8s.V1MicroTime(record.renewTime.getTime()),
    leaseTransitions: record.leaseTransitions,
  };
}

/** Read MicroTime fields come back as strings (the deserializer does not know the type). */
function wireTime(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  return undefined;
}

export function toObservedLease(lease: k8s.V1Lease): ObservedLease {
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
  if (err instanceof k8s.ApiException) {
    const code = Number(err.code);
    const reason = statusReason(err.body);
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

/** e.body is the raw JSON text of a metav1.Status; its reason is the useful part. */
function statusReason(body: unknown): string | undefined {
  if (typeof body !== 'string') return undefined;
  try {
    const status: unknown = JSON.parse(body);
    if (typeof status === 'object' && status !== null && 'reason' in status) {
      return typeof status.reason === 'string' ? status.reason : undefined;
    }
  } catch {
    // not JSON: nothing to add
  }
  return undefined;
}

function abortReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason.name : 'aborted';
}
