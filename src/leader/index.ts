// The leader package's public surface: the elector, its Lease client and the leader gauge.
// Everything else in this folder is internal.

export {
  DEFAULT_HEALTH_TOLERANCE_MS,
  LeaderElectionConfigError,
  LeaderElector,
  LeadershipEndedError,
  validateLeaderElection,
  type ElectorClock,
  type HealthResult,
  type LeaderElectionTimings,
  type LeaderElectorOptions,
  type RunOutcome,
  type Sleep,
} from './elector.js';
export { createKubeLeaseClient, type KubeLeaseClientOptions } from './kube-lease-client.js';
export {
  LeaseError,
  type LeaseClient,
  type LeaseFailure,
  type LeaseRecord,
  type LeaseRef,
  type ObservedLease,
} from './lease-client.js';
