// The allocator's public surface: the contract, the ClusterAllocator behind it, its building blocks,
// config validation and the typed errors callers branch on. Nothing here imports from Kubernetes.

export type {
  AllocationFor,
  AllocatorObserver,
  Family,
  PodCidrAllocator,
  QuarantineEntry,
  RangeSpec,
  RangeUsage,
  SpelledCidr,
  TakenSubnets,
} from './types.js';
export { ClusterAllocator, type ClusterAllocatorOptions } from './cluster-allocator.js';
export { parseRange } from './range-spec.js';
export { CidrSet, MAX_SUBNETS_PER_RANGE, rangeProblem, type RangeProblem } from './cidr-set.js';
export { Bitmap } from './bitmap.js';
export {
  DEFAULT_NODE_MASK_IPV4,
  DEFAULT_NODE_MASK_IPV6,
  validateClusterConfig,
  type ClusterConfig,
  type ClusterConfigInput,
  type ConfigProblem,
  type ValidateOptions,
} from './config.js';
export { CidrOutOfRangeError, InvalidRangeError, NO_CIDRS_REMAINING, NoPoolError, RangeExhaustedError } from './errors.js';
export { SharedPools, type PoolRangeUsage, type SharedPoolsOptions } from './shared-pools.js';
export { CidrParseError } from '../cidr/index.js';
