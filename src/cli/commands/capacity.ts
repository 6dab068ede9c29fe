// `plan`: what a range configuration yields before any cluster exists — node subnets, pods per node, limits.
// Computed with the allocator the controller runs (ClusterAllocator), so the figures are the ones it will meet.

import { ClusterAllocator } from '../../allocator/cluster-allocator.js';
import type { Family, RangeSpec } from '../../allocator/types.js';
import { formatCidr, parseCidr, SubnetCodec, type Cidr } from '../../cidr/index.js';
import { group } from './group.js';

/** Upstream cidrset's clusterSubnetMaxDiff: an IPv6 node mask may be at most this much longer. */
export const UPSTREAM_IPV6_MAX_MASK_DIFF = 16;

export interface PlanInput {
  readonly ranges: readonly RangeSpec[];
  /** Service ranges then excluded ranges, canonical text. */
  readonly reserved: readonly Cidr[];
  /** Which of `reserved` are service ranges. */
  readonly services: readonly Cidr[];
}

export interface ReservedImpact {
  readonly cidr: string;
  readonly source: 'service' | 'exclude';
  /** Node subnets of the range this CIDR touches (reserved ranges may overlap each other). */
  readonly subnets: number;
}

export interface PlanRange {
  readonly family: Family;
  readonly clusterCIDR: string;
  readonly nodeMask: number;
  readonly nodeSubnets: number;
  readonly firstSubnet: string;
  readonly lastSubnet: string;
  /** Decimal: IPv6 node subnets hold more addresses than a JavaScript number counts exactly. */
  readonly podAddressesPerNode: bigint;
  readonly podAddressRule: string;
  /** Node subnets never handed out because a reserved range touches them. */
  readonly reservedSubnets: number;
  readonly reservedBy: readonly ReservedImpact[];
  /** Nodes this range can serve: node subnets minus reserved ones. */
  readonly maxNodes: number;
}

export type PlanWarningKind = 'node-limit' | 'service-overlap' | 'no-pod-addresses' | 'upstream-refuses';

export interface PlanWarning {
  readonly kind: PlanWarningKind;
  readonly message: string;
}

export interface Plan {
  readonly ranges: readonly PlanRange[];
  /** Every node needs one subnet of every family, so the scarcest family sets the limit. */
  readonly maxNodes: number;
  readonly warnings: readonly PlanWarning[];
  /** Reserved CIDRs that touch no range, and so block nothing. */
  readonly unusedReserved: readonly ReservedImpact[];
}

/** The capacity of a configuration `run` would accept (ranges already validated). */
export function planCapacity(input: PlanInput): Plan {
  const usage = new ClusterAllocator({ ranges: input.ranges, reserved: input.reserved }).usage();
  // Reserved CIDRs leave as text: they are the plan's output.
  const services = new Set(input.services.map(formatCidr));
  const reserved = input.reserved.map((cidr) => ({ cidr, text: formatCidr(cidr) }));
  const ranges = usage.map((u): PlanRange => {
    const codec = new SubnetCodec(parseCidr(u.clusterCIDR), u.nodeMask);
    const reservedBy = reserved.flatMap(({ cidr, text }): ReservedImpact[] => {
      const span = codec.span(cidr);
      if (span === undefined) return [];
      return [{ cidr: text, source: services.has(text) ? 'service' : 'exclude', subnets: span.end - span.begin + 1 }];
    });
    const pods = podAddresses(u.family, u.nodeMask);
    return {
      family: u.family,
      clusterCIDR: u.clusterCIDR,
      nodeMask: u.nodeMask,
      nodeSubnets: u.capacity,
      firstSubnet: codec.format(0),
      lastSubnet: codec.format(u.capacity - 1),
      podAddressesPerNode: pods.count,
      podAddressRule: pods.rule,
      reservedSubnets: u.reserved,
      reservedBy,
      maxNodes: u.capacity - u.reserved,
    };
  });
  const maxNodes = clusterLimit(ranges);
  const unusedReserved = reserved
    .filter(({ text }) => !ranges.some((r) => r.reservedBy.some((b) => b.cidr === text)))
    .map(({ text }): ReservedImpact => ({ cidr: text, source: services.has(text) ? 'service' : 'exclude', subnets: 0 }));
  return { ranges, maxNodes, warnings: warningsFor(ranges, maxNodes), unusedReserved };
}

/**
 * Pod addresses in one node subnet. IPv4: all addresses minus the network and broadcast ones (what
 * host-local IPAM leaves), none for /31 and /32. IPv6: all addresses minus the subnet-router anycast
 * address (the all-zeros one).
 */
export function podAddresses(family: Family, nodeMask: number): { count: bigint; rule: string } {
  if (family === 'IPv4') {
    const hostBits = 32 - nodeMask;
    if (hostBits < 2) return { count: 0n, rule: 'a /31 or /32 node subnet has no room beside network and broadcast' };
    return { count: 2n ** BigInt(hostBits) - 2n, rule: `2^${hostBits} addresses minus the network and broadcast addresses` };
  }
  const hostBits = 128 - nodeMask;
  return {
    count: 2n ** BigInt(hostBits) - 1n,
    rule: `2^${hostBits} addresses minus the subnet-router anycast address`,
  };
}

/** The node count at which the first family runs out (a family's ranges add up). */
function clusterLimit(ranges: readonly PlanRange[]): number {
  const perFamily = new Map<Family, number>();
  for (const r of ranges) perFamily.set(r.family, (perFamily.get(r.family) ?? 0) + r.maxNodes);
  return Math.min(...perFamily.values());
}

function warningsFor(ranges: readonly PlanRange[], maxNodes: number): PlanWarning[] {
  const warnings: PlanWarning[] = [];
  const scarce = ranges.filter((r) => r.maxNodes === maxNodes).map((r) => `${r.family} ${r.clusterCIDR}`);
  warnings.push({
    kind: 'node-limit',
    message:
      `the cluster tops out at ${group(maxNodes)} node${maxNodes === 1 ? '' : 's'}` +
      (ranges.length > 1 ? ` (the limit is ${scarce.join(' and ')})` : '') +
      (maxNodes === 0 ? ': reserved ranges block every node subnet' : '; nodes beyond that get no podCIDR'),
  });
  for (const r of ranges) {
    for (const b of r.reservedBy) {
      if (b.source !== 'service') continue;
      warnings.push({
        kind: 'service-overlap',
        message:
          `service range ${b.cidr} overlaps cluster CIDR ${r.clusterCIDR} and blocks ` +
          `${group(b.subnets)} of its ${group(r.nodeSubnets)} node subnets`,
      });
    }
    if (r.podAddressesPerNode === 0n) {
      warnings.push({
        kind: 'no-pod-addresses',
        message: `node mask /${r.nodeMask} leaves no pod addresses in a node subnet of ${r.clusterCIDR}`,
      });
    }
    const diff = r.nodeMask - parseCidr(r.clusterCIDR).prefix;
    if (r.family === 'IPv6' && diff > UPSTREAM_IPV6_MAX_MASK_DIFF) {
      warnings.push({
        kind: 'upstream-refuses',
        message:
          `kube-controller-manager refuses ${r.clusterCIDR} with /${r.nodeMask} node subnets ` +
          `(node mask ${diff} bits longer than the cluster's, more than ${UPSTREAM_IPV6_MAX_MASK_DIFF}): ` +
          `podcidr-allocator serves it, but there is no way back to the upstream allocator`,
      });
    }
  }
  return warnings;
}
