// `plan -f`: what node-group pools (ClusterCIDRs) yield, and where they share addresses and so compete.
// Figures come from the controller's PoolAllocator, so reserved ranges block here what they block there.

import type { Family, RangeSpec } from '../../allocator/types.js';
import { contains, formatCidr, overlaps, parseCidr, type Cidr } from '../../cidr/index.js';
import { selectorText } from '../../controller/node-selector.js';
import { FLAG_POOL, PoolAllocator, poolRanges, type PoolDefinition } from '../../controller/pool-allocator.js';
import { podAddresses } from './capacity.js';

export interface PoolFamilyPlan {
  readonly family: Family;
  readonly clusterCIDR: string;
  readonly nodeMask: number;
  readonly nodeSubnets: number;
  /** Node subnets a service or --exclude-cidr range touches. */
  readonly reservedSubnets: number;
  readonly podAddressesPerNode: bigint;
  readonly podAddressRule: string;
}

export interface SharedWith {
  readonly pool: string;
  readonly family: Family;
  /** The addresses both hold: the smaller of the two ranges (CIDRs either nest or are apart). */
  readonly cidr: string;
}

export interface PoolPlan {
  /** A ClusterCIDR's name, or FLAG_POOL for --cluster-cidr. */
  readonly name: string;
  /** The selector as text; '' when the pool serves every node. */
  readonly selector: string;
  readonly ranges: readonly PoolFamilyPlan[];
  readonly sharesWith: readonly SharedWith[];
}

/** A range that several pools draw from: a subnet one of them takes is gone for the others. */
export interface SharedRange {
  readonly family: Family;
  readonly clusterCIDR: string;
  readonly pools: readonly string[];
  /** For each node size the pools use: how many such subnets the whole range holds, before reserved ranges. */
  readonly sizes: readonly { readonly nodeMask: number; readonly nodes: bigint }[];
}

export interface PoolsPlan {
  /** The file's pools in file order, then the flags' pool when --cluster-cidr is given. */
  readonly pools: readonly PoolPlan[];
  readonly shared: readonly SharedRange[];
}

/** One range of one pool, parsed once. */
interface Entry {
  readonly pool: string;
  readonly spec: RangeSpec;
}

export function planPools(pools: readonly PoolDefinition[], flagRanges: readonly RangeSpec[], reserved: readonly Cidr[]): PoolsPlan {
  const allocator = new PoolAllocator({ flagRanges, pools, reserved });
  const named = [
    ...pools.map((p) => ({ name: p.name, selector: selectorText(p.nodeSelector), ranges: poolRanges(p) })),
    ...(flagRanges.length > 0 ? [{ name: FLAG_POOL, selector: '', ranges: [...flagRanges] }] : []),
  ];
  const entries: Entry[] = named.flatMap((p) => p.ranges.map((spec) => ({ pool: p.name, spec })));
  const plans = named.map(({ name, selector }): PoolPlan => ({
    name,
    selector,
    ranges: allocator.usageOf(name).map((u) => {
      const pods = podAddresses(u.family, u.nodeMask);
      return {
        family: u.family,
        clusterCIDR: u.clusterCIDR,
        nodeMask: u.nodeMask,
        nodeSubnets: u.capacity,
        reservedSubnets: u.reserved,
        podAddressesPerNode: pods.count,
        podAddressRule: pods.rule,
      };
    }),
    sharesWith: sharesOf(name, entries),
  }));
  return { pools: plans, shared: sharedRanges(entries) };
}

function sharesOf(name: string, entries: readonly Entry[]): SharedWith[] {
  const shares: SharedWith[] = [];
  for (const own of entries.filter((e) => e.pool === name)) {
    for (const other of entries) {
      if (other.pool === name || !overlaps(own.spec.clusterCIDR, other.spec.clusterCIDR)) continue;
      const smaller = own.spec.clusterCIDR.prefix >= other.spec.clusterCIDR.prefix ? own : other;
      shares.push({ pool: other.pool, family: own.spec.clusterCIDR.family, cidr: formatCidr(smaller.spec.clusterCIDR) });
    }
  }
  return shares;
}

/** Ranges not inside another, each with the pools drawing from it; only those two or more pools share. */
function sharedRanges(entries: readonly Entry[]): SharedRange[] {
  const distinct = new Map<string, Cidr>();
  for (const e of entries) distinct.set(formatCidr(e.spec.clusterCIDR), e.spec.clusterCIDR);
  const outer = [...distinct.values()].filter(
    (cidr) => ![...distinct.values()].some((other) => other.prefix < cidr.prefix && contains(other, cidr)),
  );
  const shared: SharedRange[] = [];
  for (const root of outer) {
    const members = entries.filter((e) => contains(root, e.spec.clusterCIDR));
    const pools = [...new Set(members.map((m) => m.pool))];
    if (pools.length < 2) continue;
    const masks = [...new Set(members.map((m) => m.spec.nodeMask))].sort((a, b) => a - b);
    shared.push({
      family: root.family,
      clusterCIDR: formatCidr(root),
      pools,
      sizes: masks.map((nodeMask) => ({ nodeMask, nodes: 2n ** BigInt(nodeMask - root.prefix) })),
    });
  }
  return shared.sort((a, b) => (a.family === b.family ? compareBase(a.clusterCIDR, b.clusterCIDR) : a.family < b.family ? -1 : 1));
}

function compareBase(a: string, b: string): number {
  const x = parseCidr(a).base;
  const y = parseCidr(b).base;
  return x < y ? -1 : x > y ? 1 : 0;
}
