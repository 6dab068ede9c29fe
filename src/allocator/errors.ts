// Errors the allocator's callers branch on. Messages keep upstream cidrset's wording where it exists,
// so operators searching for kube-controller-manager's text still find their way.

import type { Family } from './types.js';

/** Upstream's ErrCIDRRangeNoCIDRsRemaining text. */
export const NO_CIDRS_REMAINING =
  'CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range';

/** No free subnet left (in a CidrSet, or in every range of a family). */
export class RangeExhaustedError extends Error {
  constructor(
    readonly family: Family,
    /** The exhausted cluster CIDRs, in configured order. */
    readonly clusterCIDRs: readonly string[],
    /** Subnets waiting out the quarantine: they come back by themselves. */
    readonly quarantined = 0,
    /** When the first quarantined subnet of this family becomes free again (allocator clock, ms). */
    readonly retryAt?: number,
  ) {
    const waiting = quarantined > 0 ? `; ${quarantined} released CIDR(s) still in quarantine` : '';
    super(`${NO_CIDRS_REMAINING} (${family} ${clusterCIDRs.join(', ')}${waiting})`);
    this.name = 'RangeExhaustedError';
  }
}

/**
 * No pool may serve the node now: none matches it, the ones that match are full, or they are being
 * deleted. `reason` says which, for the Event on the node; it waits until pools or space change.
 */
export class NoPoolError extends Error {
  constructor(
    readonly node: string,
    readonly reason: string,
    /** When a quarantined subnet of a matching pool becomes free again (allocator clock, ms). */
    readonly retryAt?: number,
  ) {
    super(`no pool can serve node ${node}: ${reason}`);
    this.name = 'NoPoolError';
  }
}

/** A CIDR that shares no address with any configured range of its family. */
export class CidrOutOfRangeError extends Error {
  constructor(
    readonly cidr: string,
    readonly clusterCIDRs: readonly string[],
  ) {
    const where = clusterCIDRs.length > 0 ? clusterCIDRs.join(', ') : '(none configured for this family)';
    super(`cidr ${cidr} is out the range of cluster cidr ${where}`);
    this.name = 'CidrOutOfRangeError';
  }
}

/** A range that cannot be built: node mask outside the cluster CIDR, too many subnets, or overlap. */
export class InvalidRangeError extends Error {
  constructor(
    readonly clusterCIDR: string,
    readonly nodeMask: number,
    reason: string,
  ) {
    super(`invalid range ${clusterCIDR} with /${nodeMask} node subnets: ${reason}`);
    this.name = 'InvalidRangeError';
  }
}
