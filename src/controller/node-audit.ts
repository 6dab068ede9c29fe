// auditNodes: every problem in the podCIDRs a set of nodes carries, and how full each range is.
// Pure and deterministic; conflicts are judged by the reconciler's own code, so `check` and the controller agree.

import { ClusterAllocator } from '../allocator/cluster-allocator.js';
import type { Family, PodCidrAllocator, RangeSpec } from '../allocator/types.js';
import { contains, formatCidr, overlaps, tryParseCidr, type Cidr } from '../cidr/index.js';
import { NO_OVERLAPS, claimPodCIDR, firstHolderOrder, readLeniently } from './claim.js';
import { type ConflictKind, type NodeInfo } from './ports.js';
import { ClaimIndex } from './ownership.js';
import { FLAG_POOL, PoolAllocator, type PoolDefinition } from './pool-allocator.js';

/** The field manager the controller patches podCIDRs with. */
export const OUR_FIELD_MANAGER = 'podcidr-allocator';

/**
 * ConflictKind (what the controller reports too) plus what only an audit looks for:
 * - reserved       → the podCIDR shares addresses with a service range or an --exclude-cidr range;
 * - same-family    → a second CIDR of one family on one node;
 * - missing        → a node (not being deleted) without any podCIDR;
 * - missing-family → a dual-stack cluster's node without a CIDR of one family.
 */
export type ProblemKind = ConflictKind | 'reserved' | 'same-family' | 'missing' | 'missing-family';

export const problemKinds: readonly ProblemKind[] = [
  'malformed',
  'out-of-range',
  'duplicate',
  'overlap',
  'reserved',
  'same-family',
  'missing',
  'missing-family',
];

export interface Problem {
  readonly kind: ProblemKind;
  readonly node: string;
  /** The podCIDR concerned, as the node spells it; absent for missing podCIDRs. */
  readonly cidr?: string;
  readonly message: string;
  /** duplicate/overlap: the nodes that keep the range (first holders), with their CIDRs. */
  readonly holders?: readonly { readonly node: string; readonly cidr: string }[];
}

/** podCIDRs written by another field manager: not a problem in itself, but a second allocator shows here. */
export interface ForeignManager {
  readonly node: string;
  readonly manager: string;
  readonly podCIDRs: readonly string[];
}

export interface NodeStatus {
  readonly name: string;
  readonly podCIDRs: readonly string[];
  readonly podCIDRManager?: string;
  readonly deleting: boolean;
  /** The kinds of problem found on this node, in problemKinds order, each once. */
  readonly problems: readonly ProblemKind[];
}

export interface RangeUtilisation {
  readonly clusterCIDR: string;
  readonly family: Family;
  readonly nodeMask: number;
  readonly capacity: number;
  /** Node subnets blocked by reserved ranges. */
  readonly reserved: number;
  /** Node subnets held by nodes, outside reserved ones. */
  readonly byNodes: number;
  /** reserved + byNodes: what the allocator cannot hand out. */
  readonly used: number;
  readonly free: number;
  /** used / capacity × 100. */
  readonly percentUsed: number;
}

/** One range of one pool (the flags' pool is FLAG_POOL); a range pools share is listed under each. */
export interface PoolRangeUtilisation {
  readonly pool: string;
  readonly clusterCIDR: string;
  readonly family: Family;
  readonly nodeMask: number;
  /** Nodes with a podCIDR inside this range, whichever pool handed it out. */
  readonly nodes: number;
  readonly capacity: number;
  /** Node subnets the pool can still hand out: what nodes hold in a shared range is gone for every pool there. */
  readonly free: number;
}

export interface PoolFindings {
  readonly ranges: readonly PoolRangeUtilisation[];
  /** Nodes with a podCIDR in no pool and no flag range, in name order. */
  readonly outside: readonly { readonly node: string; readonly podCIDRs: readonly string[] }[];
}

export interface Findings {
  /** In name order. */
  readonly nodes: readonly NodeStatus[];
  /** In the order the controller would meet them (first-holder order). */
  readonly problems: readonly Problem[];
  readonly foreignManagers: readonly ForeignManager[];
  /** The flags' ranges. */
  readonly ranges: readonly RangeUtilisation[];
  /** Only when the audit had pools. */
  readonly pools?: PoolFindings;
}

export interface AuditOptions {
  /** Nodes patched by this manager hold their ranges first, as in the controller. */
  readonly fieldManager?: string;
  /**
   * ClusterCIDR pools beside the flags' ranges: a podCIDR in any of them is in range, as for the
   * controller's PoolAllocator. Without any, the audit is the flags-only one, figures and all.
   */
  readonly pools?: readonly PoolDefinition[];
}

/**
 * Audits nodes against the configured ranges (at least one) and reserved CIDRs (canonical text, as
 * validateClusterConfig returns them). Nodes are claimed in the reconciler's first-holder order
 * against a fresh allocator, so duplicates and overlaps name the node the controller lets keep
 * the range, and utilisation is what the controller's allocator holds after its rebuild.
 */
export function auditNodes(
  nodes: readonly NodeInfo[],
  ranges: readonly RangeSpec[],
  reserved: readonly Cidr[],
  options: AuditOptions = {},
): Findings {
  if (options.pools !== undefined && options.pools.length > 0) return auditPools(nodes, ranges, reserved, options.pools, options);
  const { problems, foreignManagers, allocator } = auditProblems(nodes, ranges, reserved, options);
  return {
    nodes: nodeStatuses(nodes, problems),
    problems,
    foreignManagers,
    ranges: utilisation(allocator.usage()),
  };
}

function utilisation(usage: ReturnType<ClusterAllocator['usage']>): RangeUtilisation[] {
  return usage.map((u) => ({
    clusterCIDR: u.clusterCIDR,
    family: u.family,
    nodeMask: u.nodeMask,
    capacity: u.capacity,
    reserved: u.reserved,
    byNodes: u.used - u.reserved,
    used: u.used,
    free: u.free,
    percentUsed: (u.used / u.capacity) * 100,
  }));
}

/** The audit against the controller's PoolAllocator: pools and flags' ranges may share addresses. */
function auditPools(
  nodes: readonly NodeInfo[],
  ranges: readonly RangeSpec[],
  reserved: readonly Cidr[],
  pools: readonly PoolDefinition[],
  options: AuditOptions,
): Findings {
  const { problems, foreignManagers, allocator } = claimThroughPools(nodes, ranges, reserved, pools, options);
  const held = nodes.map((n) => ({ node: n.name, podCIDRs: n.podCIDRs, cidrs: heldCidrs(n) }));
  const usage = allocator.usage();
  const poolRanges = usage.map((u): PoolRangeUtilisation => {
    const range = tryParseCidr(u.clusterCIDR);
    const inside = held.filter((h) => range !== undefined && h.cidrs.some((c) => contains(range, c))).length;
    const { pool, clusterCIDR, family, nodeMask, capacity, free } = u;
    return { pool, clusterCIDR, family, nodeMask, nodes: inside, capacity, free };
  });
  const all = usage.flatMap((u) => tryParseCidr(u.clusterCIDR) ?? []);
  const outside = held
    .filter((h) => h.cidrs.some((c) => !all.some((range) => contains(range, c))))
    .map(({ node, podCIDRs }) => ({ node, podCIDRs }))
    .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  return {
    nodes: nodeStatuses(nodes, problems),
    problems,
    foreignManagers,
    ranges: utilisation(allocator.usageOf(FLAG_POOL)),
    pools: { ranges: poolRanges, outside },
  };
}

/** The node's podCIDRs as the API server lets them in (host bits set are read as their network). */
function heldCidrs(node: NodeInfo): Cidr[] {
  return node.podCIDRs.flatMap((text) => readLeniently(text) ?? []);
}

/**
 * The problems and foreign managers of auditNodes, without a status per node: what the running
 * controller's audit needs, at a fraction of the memory (50,000 node statuses are about 6 MB). With
 * pools it claims through a PoolAllocator, as the reconciler does, so pool nodes are in range.
 */
export function auditProblems(
  nodes: readonly NodeInfo[],
  ranges: readonly RangeSpec[],
  reserved: readonly Cidr[],
  options: AuditOptions = {},
): Pick<Findings, 'problems' | 'foreignManagers'> & { readonly allocator: Pick<PodCidrAllocator, 'usage' | 'families'> } {
  const pools = options.pools ?? [];
  if (pools.length > 0) return claimThroughPools(nodes, ranges, reserved, pools, options);
  const allocator = new ClusterAllocator({ ranges, reserved });
  const index = occupyDistinctSubnets(nodes, allocator) ? NO_OVERLAPS : new ClaimIndex();
  return { ...claimAll(nodes, allocator, index, reserved, options), allocator };
}

/** The claims of every node through the controller's PoolAllocator, pools and flags' ranges together. */
function claimThroughPools(
  nodes: readonly NodeInfo[],
  ranges: readonly RangeSpec[],
  reserved: readonly Cidr[],
  pools: readonly PoolDefinition[],
  options: AuditOptions,
): Pick<Findings, 'problems' | 'foreignManagers'> & { readonly allocator: PoolAllocator } {
  // Pools over one range take a subnet in each: only the claim index tells a shared subnet from a conflict.
  const allocator = new PoolAllocator({ flagRanges: ranges, pools, reserved });
  return { ...claimAll(nodes, allocator, new ClaimIndex(), reserved, options), allocator };
}

/** Every node's podCIDRs claimed in first-holder order, as the reconciler claims them. */
function claimAll(
  nodes: readonly NodeInfo[],
  allocator: Pick<PodCidrAllocator, 'occupy' | 'families'>,
  index: Parameters<typeof claimPodCIDR>[0],
  reserved: readonly Cidr[],
  options: AuditOptions,
): Pick<Findings, 'problems' | 'foreignManagers'> {
  const fieldManager = options.fieldManager ?? OUR_FIELD_MANAGER;
  const reservedCidrs = reserved.map((cidr) => ({ text: formatCidr(cidr), cidr }));
  const families = new Set(allocator.families);
  const problems: Problem[] = [];
  const foreignManagers: ForeignManager[] = [];
  for (const node of firstHolderOrder(nodes, fieldManager)) {
    // The reconciler's rule for one node: a text it already holds a claim under, or already
    // reported, is not judged again (the unit tests compare both on random clusters).
    const done = new Set<string>();
    for (const text of node.podCIDRs) {
      if (done.has(text)) continue;
      done.add(text);
      const outcome = claimPodCIDR(index, allocator, node, text);
      if ('claim' in outcome && outcome.claim !== undefined) done.add(outcome.claim.text);
      if (outcome.kind !== 'owned') {
        const holders = 'holders' in outcome ? outcome.holders.map((h) => ({ node: h.node, cidr: h.text })) : undefined;
        problems.push({
          kind: outcome.kind,
          node: node.name,
          cidr: text,
          message: `podCIDR ${text} ${outcome.detail}`,
          ...(holders !== undefined ? { holders } : {}),
        });
      }
      const cidr = tryParseCidr(text);
      for (const r of reservedCidrs) {
        if (cidr === undefined || !overlaps(cidr, r.cidr)) continue;
        problems.push({
          kind: 'reserved',
          node: node.name,
          cidr: text,
          message: `podCIDR ${text} shares addresses with the reserved range ${r.text}`,
        });
      }
    }
    problems.push(...familyProblems(node, families));
    if (node.podCIDRs.length > 0 && node.podCIDRManager !== undefined && node.podCIDRManager !== fieldManager) {
      foreignManagers.push({ node: node.name, manager: node.podCIDRManager, podCIDRs: node.podCIDRs });
    }
  }
  return { problems, foreignManagers };
}

/**
 * Occupies the nodes' podCIDRs while each is a node subnet no other podCIDR has taken; false at the
 * first that is not (taken, reserved, another size, malformed, out of range). When all are, no two
 * claims share an address and the audit needs no claim index: at 50,000 nodes that index is about
 * 9 MB, held for the whole run, promoted by the young-generation GC and freed only by a full one.
 */
function occupyDistinctSubnets(nodes: readonly NodeInfo[], allocator: ClusterAllocator): boolean {
  for (const node of nodes) {
    for (const text of node.podCIDRs) if (!allocator.occupyFree(text)) return false;
  }
  return true;
}

/** Missing podCIDRs, and one CIDR per family (malformed entries are reported already and skipped here). */
function familyProblems(node: NodeInfo, families: ReadonlySet<Family>): Problem[] {
  if (node.podCIDRs.length === 0) {
    if (node.deletionTimestamp !== undefined) return [];
    return [{ kind: 'missing', node: node.name, message: 'has no podCIDR' }];
  }
  const problems: Problem[] = [];
  const byFamily = new Map<Family, string>();
  let malformed = false;
  for (const text of new Set(node.podCIDRs)) {
    const cidr = tryParseCidr(text);
    if (cidr === undefined) {
      malformed = true;
      continue;
    }
    const first = byFamily.get(cidr.family);
    if (first === undefined) {
      byFamily.set(cidr.family, text);
      continue;
    }
    problems.push({
      kind: 'same-family',
      node: node.name,
      cidr: text,
      message: `podCIDR ${text} is a second ${cidr.family} CIDR beside ${first}; one per family is allowed`,
    });
  }
  if (!malformed) {
    for (const family of families) {
      if (byFamily.has(family)) continue;
      problems.push({ kind: 'missing-family', node: node.name, message: `has no ${family} podCIDR` });
    }
  }
  return problems;
}

function nodeStatuses(nodes: readonly NodeInfo[], problems: readonly Problem[]): NodeStatus[] {
  const kinds = new Map<string, Set<ProblemKind>>();
  for (const p of problems) {
    let set = kinds.get(p.node);
    if (set === undefined) kinds.set(p.node, (set = new Set()));
    set.add(p.kind);
  }
  return [...nodes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((node) => {
    const found = kinds.get(node.name);
    return {
      name: node.name,
      podCIDRs: node.podCIDRs,
      ...(node.podCIDRManager !== undefined ? { podCIDRManager: node.podCIDRManager } : {}),
      deleting: node.deletionTimestamp !== undefined,
      problems: problemKinds.filter((k) => found?.has(k) === true),
    };
  });
}
