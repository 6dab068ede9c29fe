// The narrow view of a coordination.k8s.io/v1 Lease that the elector needs, and its typed errors.
// Every write carries the resourceVersion it was based on, so a stale writer always gets a conflict.

/** Where the Lease lives. */
export interface LeaseRef {
  readonly namespace: string;
  readonly name: string;
}

/** The leader-election fields of a Lease spec (client-go's LeaderElectionRecord). */
export interface LeaseRecord {
  /** '' when nobody holds the lease (never created, or released). */
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  /** Wall-clock stamps: informative only, the elector never judges expiry from them. */
  readonly acquireTime: Date | undefined;
  readonly renewTime: Date | undefined;
  readonly leaseTransitions: number;
}

/** One read of the Lease as the server stored it. */
export interface ObservedLease {
  readonly record: LeaseRecord;
  /**
   * The record's fields exactly as the server sent them, serialized. Two reads with the same raw
   * text mean nobody renewed in between; the elector restarts its expiry clock when this changes.
   */
  readonly raw: string;
  readonly resourceVersion: string;
}

/** Why a Lease request failed; the elector branches on this. */
export type LeaseFailure =
  /** 404: the Lease does not exist (get, update). */
  | 'not-found'
  /** 409: someone else wrote first (stale resourceVersion, or create of an existing Lease). */
  | 'conflict'
  /** The request was aborted or timed out; the write may or may not have happened. */
  | 'timeout'
  /** Anything else: the server refused, or the network failed. */
  | 'failed';

export class LeaseError extends Error {
  constructor(
    readonly failure: LeaseFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LeaseError';
  }
}

/** Reads and writes one kind of object: a Lease. Implementations throw only LeaseError. */
export interface LeaseClient {
  get(ref: LeaseRef, signal?: AbortSignal): Promise<ObservedLease>;
  /** Fails with 'conflict' when the Lease already exists. */
  create(ref: LeaseRef, record: LeaseRecord, signal?: AbortSignal): Promise<ObservedLease>;
  /** Replaces the spec only if the Lease is still at resourceVersion; 'conflict' otherwise. */
  update(
    ref: LeaseRef,
    record: LeaseRecord,
    resourceVersion: string,
    signal?: AbortSignal,
  ): Promise<ObservedLease>;
}

export function isLeaseFailure(err: unknown, failure: LeaseFailure): boolean {
  return err instanceof LeaseError && err.failure === failure;
}
