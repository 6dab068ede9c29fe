// The safety invariants the chaos run checks on the API server's nodes: no two nodes share addresses,
// every podCIDR lies inside a cluster CIDR, each node's podCIDRs are well formed (one per family) and,
// with pools, each is of a size its pool label allows.
import { contains, overlaps, tryParseCidr, type Cidr } from '../../src/cidr/index.js';

export interface NodeCidrs {
  readonly name: string;
  readonly podCIDR: string | undefined;
  readonly podCIDRs: readonly string[];
  /** The node's pool label, in pools mode. */
  readonly pool?: string | undefined;
}

/** Prefix lengths a node may hold, by pool label: its pool's size, or the --cluster-cidr size it falls back to. */
export type PoolSizes = ReadonlyMap<string, readonly number[]>;

export interface CheckResult {
  readonly nodes: number;
  /** Nodes holding at least one podCIDR. */
  readonly holders: number;
  readonly cidrs: number;
  readonly violations: readonly string[];
}

/** Checks one snapshot of nodes; sorted sweep per family, so it is O(n log n) in the number of CIDRs. */
export function checkNodes(nodes: readonly NodeCidrs[], clusterCidrs: readonly string[], sizes?: PoolSizes): CheckResult {
  const clusters = clusterCidrs.map((text) => {
    const cidr = tryParseCidr(text);
    if (cidr === undefined) throw new Error(`bad cluster CIDR ${text}`);
    return cidr;
  });
  const violations: string[] = [];
  const held: { node: string; text: string; cidr: Cidr }[] = [];
  let holders = 0;
  for (const node of nodes) {
    if (node.podCIDRs.length > 0) holders++;
    violations.push(...shapeProblems(node));
    for (const text of node.podCIDRs) {
      const cidr = tryParseCidr(text);
      if (cidr === undefined) {
        violations.push(`malformed: ${node.name} holds ${text}`);
        continue;
      }
      if (!clusters.some((c) => contains(c, cidr))) violations.push(`outside: ${node.name} holds ${text}`);
      if (sizes !== undefined) violations.push(...sizeProblems(node, text, cidr, sizes));
      held.push({ node: node.name, text, cidr });
    }
  }
  violations.push(...overlapProblems(held));
  return { nodes: nodes.length, holders, cidrs: held.length, violations };
}

function shapeProblems(node: NodeCidrs): string[] {
  const problems: string[] = [];
  if ((node.podCIDR ?? '') !== (node.podCIDRs[0] ?? '')) {
    problems.push(`shape: ${node.name} has podCIDR ${node.podCIDR ?? '""'} but podCIDRs ${JSON.stringify(node.podCIDRs)}`);
  }
  const families = node.podCIDRs.map((t) => (t.includes(':') ? 'IPv6' : 'IPv4'));
  if (new Set(families).size !== families.length) problems.push(`shape: ${node.name} has two podCIDRs of one family`);
  return problems;
}

function sizeProblems(node: NodeCidrs, text: string, cidr: Cidr, sizes: PoolSizes): string[] {
  const allowed = sizes.get(node.pool ?? '');
  if (allowed === undefined) return [`size: ${node.name} has pool label ${JSON.stringify(node.pool ?? '')} that no pool size is known for`];
  if (allowed.includes(cidr.prefix)) return [];
  return [`size: ${node.name} of pool ${JSON.stringify(node.pool ?? '')} holds ${text}, not /${allowed.join(' or /')}`];
}

function overlapProblems(held: { node: string; text: string; cidr: Cidr }[]): string[] {
  const problems: string[] = [];
  for (const family of ['IPv4', 'IPv6'] as const) {
    const sorted = held.filter((h) => h.cidr.family === family).sort((a, b) => compare(a.cidr.base, b.cidr.base));
    // Track the entry reaching furthest so far: a short CIDR can cover several later ones.
    let widest: (typeof sorted)[number] | undefined;
    for (const entry of sorted) {
      if (widest !== undefined && overlaps(widest.cidr, entry.cidr)) {
        problems.push(`overlap: ${widest.node} ${widest.text} and ${entry.node} ${entry.text}`);
      }
      if (widest === undefined || end(entry.cidr) > end(widest.cidr)) widest = entry;
    }
  }
  return problems;
}

function end(cidr: Cidr): bigint {
  return cidr.base + (1n << BigInt(cidr.bits - cidr.prefix));
}

function compare(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
