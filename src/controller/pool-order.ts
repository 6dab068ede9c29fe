// Which pools may serve a node, best first, in node-ipam-controller's order for ClusterCIDRs.
// The order is total: the same pools and node give the same list whatever order the pools come in.

import { formatCidr, type Cidr } from '../cidr/index.js';
import { matchingRequirements, selectorText, type NodeSelector, type SelectableNode } from './node-selector.js';

/** What ordering needs to know of a pool; callers pass their own pool objects and get them back. */
export interface PoolCandidate {
  /** Unique among pools (a ClusterCIDR's name); the last tie-break. */
  readonly name: string;
  /** Undefined: the pool serves every node. */
  readonly nodeSelector?: NodeSelector;
  readonly ipv4?: Cidr;
  readonly ipv6?: Cidr;
  readonly perNodeHostBits: number;
  /** Node subnets the pool holds in all, of its smaller family (the peer's MaxCIDRs), not what is left. */
  readonly allocatable: bigint;
  /** Nothing left to hand out: a node that matches goes to the next pool. */
  readonly full: boolean;
  /** The pool made of --cluster-cidr: it serves every node, after every other pool; its selector is not read. */
  readonly implicit?: boolean;
}

export interface PoolOrder<P extends PoolCandidate> {
  /** The pools that serve the node and are not full, best first. */
  readonly usable: readonly P[];
  /** The pools that serve the node but are full, in the same order: for telling a node why it waits. */
  readonly full: readonly P[];
}

/** A pool with the keys it is sorted by, worked out once. */
interface Ranked<P extends PoolCandidate> {
  readonly pool: P;
  readonly requirements: number;
  readonly selector: string;
  /** The IPv4 range's text, or the IPv6 one for a pool without IPv4 (the peer's range label). */
  readonly range: string;
  /** The IPv6 range's text when the pool has both families, else ''. */
  readonly otherRange: string;
}

/**
 * The pools that serve the node, in this order: the implicit pool last; before it, the pool whose
 * matching selector term has the most requirements; then the one with fewer allocatable subnets (fill
 * small pools first); then the smaller node subnet (fewer host bits); then by selector text, range
 * text and name.
 */
export function orderPools<P extends PoolCandidate>(pools: readonly P[], node: SelectableNode): PoolOrder<P> {
  const ranked: Ranked<P>[] = [];
  for (const pool of pools) {
    const requirements = pool.implicit === true ? 0 : matchingRequirements(pool.nodeSelector, node);
    if (requirements === undefined) continue;
    ranked.push({
      pool,
      requirements,
      selector: pool.implicit === true ? '' : selectorText(pool.nodeSelector),
      range: rangeText(pool.ipv4 ?? pool.ipv6),
      otherRange: pool.ipv4 === undefined ? '' : rangeText(pool.ipv6),
    });
  }
  ranked.sort(compareRanked);
  const usable: P[] = [];
  const full: P[] = [];
  for (const { pool } of ranked) (pool.full ? full : usable).push(pool);
  return { usable, full };
}

function compareRanked<P extends PoolCandidate>(a: Ranked<P>, b: Ranked<P>): number {
  const implicitA = a.pool.implicit === true;
  if (implicitA !== (b.pool.implicit === true)) return implicitA ? 1 : -1;
  if (a.requirements !== b.requirements) return b.requirements - a.requirements;
  if (a.pool.allocatable !== b.pool.allocatable) return a.pool.allocatable < b.pool.allocatable ? -1 : 1;
  if (a.pool.perNodeHostBits !== b.pool.perNodeHostBits) return a.pool.perNodeHostBits - b.pool.perNodeHostBits;
  return (
    compareText(a.selector, b.selector) ||
    compareText(a.range, b.range) ||
    compareText(a.otherRange, b.otherRange) ||
    compareText(a.pool.name, b.pool.name)
  );
}

function rangeText(cidr: Cidr | undefined): string {
  return cidr === undefined ? '' : formatCidr(cidr);
}

/** By UTF-16 code units, never by locale: the order must not depend on where the controller runs. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
