// The allocator's public surface, shared by the controller and the operator tools.
// Implementations live beside this file; nothing here imports from Kubernetes.

import type { Cidr } from '../cidr/index.js';

export type Family = 'IPv4' | 'IPv6';

/** One cluster CIDR carved into node subnets of one mask; parseRange makes one from text. */
export interface RangeSpec {
  /** e.g. 10.233.64.0/18, parsed: host bits clear. */
  readonly clusterCIDR: Cidr;
  /** Prefix length of each node subnet, e.g. 24. */
  readonly nodeMask: number;
}

/** Usage of one range, for metrics, `check` and early warnings. */
export interface RangeUsage {
  readonly clusterCIDR: string;
  readonly family: Family;
  readonly nodeMask: number;
  readonly capacity: number;
  /** Subnets marked in the bitmap, reserved and quarantined ones included. */
  readonly used: number;
  readonly free: number;
  /** Released subnets still waiting out the quarantine (counted in `used`). */
  readonly quarantined: number;
  /** Subnets blocked by reserved ranges (counted in `used`). */
  readonly reserved: number;
}

/** Called by the allocator as bits flip; metrics hang off this, never a global registry. */
export interface AllocatorObserver {
  allocated?(clusterCIDR: string, tries: number): void;
  occupied?(clusterCIDR: string, subnets: number): void;
  released?(clusterCIDR: string, subnets: number): void;
}

/** The subnets of one range that are taken, as runs of subnet indices [begin, end, …], ends inclusive. */
export interface TakenSubnets {
  readonly clusterCIDR: string;
  readonly nodeMask: number;
  readonly runs: readonly number[];
}

/** A CIDR released at a given time, waiting out the quarantine (durable quarantine persists these). */
export interface QuarantineEntry {
  readonly cidr: string;
  /** Release time, milliseconds on the allocator's clock. */
  readonly releasedAt: number;
}

/** A CIDR as a node spells it (what occupy and release take) and as it reads. */
export interface SpelledCidr {
  readonly text: string;
  readonly cidr: Cidr;
}

/** Who an allocation is for: an allocator of pools chooses by it, one of ranges ignores it. */
export interface AllocationFor {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * What the controller needs from the allocator. CIDR lists are ordered like the families of the
 * configured ranges (the first range's family first), matching node.spec.podCIDRs order.
 */
export interface PodCidrAllocator {
  /** The families in podCIDRs order, e.g. ['IPv4', 'IPv6']. */
  readonly families: readonly Family[];
  /**
   * One CIDR per family, all or nothing. Throws RangeExhaustedError when any family is full, or
   * NoPoolError when no pool can serve the node.
   */
  allocate(node?: AllocationFor): string[];
  /** Marks existing CIDRs as used (idempotent). Throws CidrParseError / CidrOutOfRangeError. */
  occupy(cidr: string): void;
  /**
   * Frees CIDRs (idempotent); with a quarantine they are not reissued before it ends. Reserved
   * subnets are never freed. Throws CidrParseError / CidrOutOfRangeError.
   */
  release(cidr: string): void;
  /**
   * Releases the node subnets `released` touches that no CIDR `holdersOf` names still shares: a subnet
   * shared with another holder (a /25 beside a /25, a /24 inside a /23) stays taken. `holdersOf(cidr)`
   * gives the CIDRs still held that share addresses with `cidr`. Returns the node subnets released
   * (a CIDR of more than 4096 subnets shared with others counts all of them).
   */
  releaseUnheld(released: SpelledCidr, holdersOf: (cidr: Cidr) => readonly SpelledCidr[]): number;
  /** True when every subnet the CIDR touches is in use (quarantined ones are not); false outside all ranges. */
  isAllocated(cidr: string): boolean;
  usage(): RangeUsage[];
  /** The ranges in priority order. */
  ranges(): RangeSpec[];
  /** When the earliest quarantined subnet becomes free (allocator clock, ms); undefined when none is waiting. */
  nextQuarantineExpiry(): number | undefined;
}
