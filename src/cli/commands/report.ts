// Text and JSON renderings of the tools' results: tables for people, one stable JSON object for scripts.
// JSON objects carry `report` and `version`; fields are only ever added within a version.

import type { Findings, PoolRangeUtilisation, ProblemKind, RangeUtilisation } from '../../controller/node-audit.js';
import type { PoolDefinition } from '../../controller/pool-allocator.js';
import type { Plan, ReservedImpact } from './capacity.js';
import { group } from './group.js';
import type { PoolsPlan } from './pool-plan.js';
import { FLAG_POOL } from '../../controller/pool-allocator.js';

export const REPORT_VERSION = 1;

export interface PlanJson {
  readonly report: 'plan';
  readonly version: number;
  readonly maxNodes: number;
  readonly ranges: readonly {
    readonly family: string;
    readonly clusterCIDR: string;
    readonly nodeMask: number;
    readonly nodeSubnets: number;
    readonly firstSubnet: string;
    readonly lastSubnet: string;
    /** A decimal string: IPv6 counts exceed 2^53. */
    readonly podAddressesPerNode: string;
    readonly podAddressRule: string;
    readonly reservedSubnets: number;
    readonly reservedBy: readonly { readonly cidr: string; readonly source: string; readonly subnets: number }[];
    readonly maxNodes: number;
  }[];
  readonly unusedReserved: readonly { readonly cidr: string; readonly source: string }[];
  readonly warnings: readonly { readonly kind: string; readonly message: string }[];
}

export function planJson(plan: Plan): PlanJson {
  return {
    report: 'plan',
    version: REPORT_VERSION,
    maxNodes: plan.maxNodes,
    ranges: plan.ranges.map((r) => ({
      family: r.family,
      clusterCIDR: r.clusterCIDR,
      nodeMask: r.nodeMask,
      nodeSubnets: r.nodeSubnets,
      firstSubnet: r.firstSubnet,
      lastSubnet: r.lastSubnet,
      podAddressesPerNode: r.podAddressesPerNode.toString(),
      podAddressRule: r.podAddressRule,
      reservedSubnets: r.reservedSubnets,
      reservedBy: r.reservedBy.map((b) => ({ cidr: b.cidr, source: b.source, subnets: b.subnets })),
      maxNodes: r.maxNodes,
    })),
    unusedReserved: plan.unusedReserved.map((u) => ({ cidr: u.cidr, source: u.source })),
    warnings: plan.warnings.map((w) => ({ kind: w.kind, message: w.message })),
  };
}

export interface PoolsPlanJson {
  readonly pools: readonly {
    readonly name: string;
    /** null: the pool serves every node. */
    readonly selector: string | null;
    readonly ranges: readonly {
      readonly family: string;
      readonly clusterCIDR: string;
      readonly nodeMask: number;
      readonly nodeSubnets: number;
      readonly reservedSubnets: number;
      /** A decimal string: IPv6 counts exceed 2^53. */
      readonly podAddressesPerNode: string;
    }[];
    readonly sharesWith: readonly { readonly pool: string; readonly family: string; readonly cidr: string }[];
  }[];
  readonly sharedRanges: readonly {
    readonly family: string;
    readonly clusterCIDR: string;
    readonly pools: readonly string[];
    /** nodes: a decimal string, before reserved ranges. */
    readonly sizes: readonly { readonly nodeMask: number; readonly nodes: string }[];
  }[];
}

/** `plan -f` as JSON: the pools' fields; planJson's ranges are the flags' alone (empty without --cluster-cidr). */
export function poolsPlanJson(plan: PoolsPlan): PoolsPlanJson {
  return {
    pools: plan.pools.map((p) => ({
      name: p.name,
      selector: p.selector === '' ? null : p.selector,
      ranges: p.ranges.map((r) => ({
        family: r.family,
        clusterCIDR: r.clusterCIDR,
        nodeMask: r.nodeMask,
        nodeSubnets: r.nodeSubnets,
        reservedSubnets: r.reservedSubnets,
        podAddressesPerNode: r.podAddressesPerNode.toString(),
      })),
      sharesWith: p.sharesWith.map((w) => ({ pool: w.pool, family: w.family, cidr: w.cidr })),
    })),
    sharedRanges: plan.shared.map((r) => ({
      family: r.family,
      clusterCIDR: r.clusterCIDR,
      pools: r.pools,
      sizes: r.sizes.map((z) => ({ nodeMask: z.nodeMask, nodes: z.nodes.toString() })),
    })),
  };
}

/** `plan -f` as text: one block per pool, then the ranges pools share. */
export function poolsPlanText(plan: PoolsPlan): string {
  const out: string[] = [];
  for (const p of plan.pools) {
    const who = p.name === FLAG_POOL ? 'every node, after all pools' : p.selector === '' ? 'every node' : p.selector;
    const sizes = p.ranges.map((r) => `${r.family} /${r.nodeMask}`).join(', ');
    const pairs: [string, string][] = [];
    for (const r of p.ranges) {
      const lost = r.reservedSubnets === 0 ? '' : ` (${group(r.reservedSubnets)} lost to reserved ranges)`;
      pairs.push(
        [`${r.family} range`, r.clusterCIDR],
        [`${r.family} node subnets`, `${group(r.nodeSubnets)}${lost}`],
        [`${r.family} addresses per node`, `${group(r.podAddressesPerNode)} (${r.podAddressRule})`],
      );
    }
    const shares = p.sharesWith.map((w) => `${w.pool} (${w.cidr})`).join(', ');
    pairs.push(['shares addresses with', shares === '' ? 'no other pool' : shares]);
    out.push(`Pool ${p.name}: ${who}; node subnets ${sizes}`, ...rows(pairs).map((line) => `  ${line}`), '');
  }
  if (plan.shared.length > 0) {
    out.push('Shared ranges (the pools in one compete: a node subnet one takes is gone for the others):');
    for (const r of plan.shared) {
      out.push(`  ${r.family} ${r.clusterCIDR}: ${r.pools.join(', ')}`);
      out.push(...r.sizes.map((z) => `    /${z.nodeMask} node subnets: at most ${group(z.nodes)} nodes`));
    }
    out.push('');
  }
  return `${out.join('\n')}\n`;
}

const SOURCE_FLAGS: Record<ReservedImpact['source'], string> = {
  service: '--service-cluster-ip-range',
  exclude: '--exclude-cidr',
};

export function planText(plan: Plan): string {
  const out: string[] = [];
  for (const r of plan.ranges) {
    const reserved = r.reservedBy.map((b) => `${b.cidr} from ${SOURCE_FLAGS[b.source]}: ${group(b.subnets)}`).join(', ');
    out.push(
      `${r.family} cluster CIDR ${r.clusterCIDR}, node subnets /${r.nodeMask}`,
      ...rows([
        ['node subnets', `${group(r.nodeSubnets)}: ${r.firstSubnet} … ${r.lastSubnet}`],
        ['pod addresses per node', `${group(r.podAddressesPerNode)} (${r.podAddressRule})`],
        ['lost to reserved ranges', `${group(r.reservedSubnets)}${reserved === '' ? '' : ` (${reserved})`}`],
        ['nodes at most', group(r.maxNodes)],
      ]).map((line) => `  ${line}`),
      '',
    );
  }
  if (plan.unusedReserved.length > 0) {
    const list = plan.unusedReserved.map((u) => `${u.cidr} (${SOURCE_FLAGS[u.source]})`).join(', ');
    out.push(`Reserved ranges outside every cluster CIDR (they block nothing): ${list}`, '');
  }
  out.push('Warnings:', ...plan.warnings.map((w) => `  - ${w.message}`));
  return `${out.join('\n')}\n`;
}

export interface CheckJson {
  readonly report: 'check';
  readonly version: number;
  readonly selector: string | null;
  readonly problemCount: number;
  readonly nodes: readonly {
    readonly name: string;
    readonly podCIDRs: readonly string[];
    readonly podCIDRManager: string | null;
    readonly deleting: boolean;
    readonly status: 'ok' | 'problem';
    readonly problems: readonly ProblemKind[];
  }[];
  readonly problems: readonly {
    readonly kind: ProblemKind;
    readonly node: string;
    readonly cidr: string | null;
    readonly message: string;
    readonly holders: readonly { readonly node: string; readonly cidr: string }[];
  }[];
  readonly foreignManagers: readonly { readonly node: string; readonly manager: string; readonly podCIDRs: readonly string[] }[];
  /** As the audit measures them, percentUsed rounded to one decimal. */
  readonly ranges: readonly RangeUtilisation[];
  /** Present when ClusterCIDRs were looked for. */
  readonly pools?: {
    /** Why none could be read (no CRD, no grant); null when they were. */
    readonly unavailable: string | null;
    readonly ranges: readonly PoolRangeUtilisation[];
    /** ClusterCIDRs the controller refuses too, left out of the audit. */
    readonly invalid: readonly { readonly name: string; readonly problems: readonly string[] }[];
    /** Nodes with a podCIDR in no pool and no --cluster-cidr range. */
    readonly outside: readonly { readonly node: string; readonly podCIDRs: readonly string[] }[];
  };
}

/** The ClusterCIDRs `check` read: the valid ones as pools, the rest with their problems. */
export interface PoolsRead {
  readonly pools: readonly PoolDefinition[];
  readonly invalid: readonly { readonly name: string; readonly problems: readonly string[] }[];
  /** Set when the API has no ClusterCIDRs to read. */
  readonly unavailable?: string;
}

export function checkJson(findings: Findings, selector: string | undefined, pools?: PoolsRead): CheckJson {
  return {
    ...checkJsonOf(findings, selector),
    ...(pools !== undefined && {
      pools: {
        unavailable: pools.unavailable ?? null,
        ranges: findings.pools?.ranges ?? [],
        invalid: pools.invalid,
        outside: findings.pools?.outside ?? [],
      },
    }),
  };
}

function checkJsonOf(findings: Findings, selector: string | undefined): CheckJson {
  return {
    report: 'check',
    version: REPORT_VERSION,
    selector: selector ?? null,
    problemCount: findings.problems.length,
    nodes: findings.nodes.map((n) => ({
      name: n.name,
      podCIDRs: n.podCIDRs,
      podCIDRManager: n.podCIDRManager ?? null,
      deleting: n.deleting,
      status: n.problems.length === 0 ? 'ok' : 'problem',
      problems: n.problems,
    })),
    problems: findings.problems.map((p) => ({
      kind: p.kind,
      node: p.node,
      cidr: p.cidr ?? null,
      message: p.message,
      holders: p.holders ?? [],
    })),
    foreignManagers: findings.foreignManagers.map((f) => ({ node: f.node, manager: f.manager, podCIDRs: f.podCIDRs })),
    ranges: findings.ranges.map((r) => ({ ...r, percentUsed: Math.round(r.percentUsed * 10) / 10 })),
  };
}

export function checkText(findings: Findings, selector: string | undefined, pools?: PoolsRead): string {
  const out: string[] = [];
  const scope = selector === undefined ? '' : ` matching ${JSON.stringify(selector)}`;
  const foreign = new Map(findings.foreignManagers.map((f) => [f.node, f.manager]));
  if (findings.nodes.length === 0) out.push(`No nodes${scope}.`);
  else {
    out.push(
      ...table([
        ['NODE', 'PODCIDRS', 'STATUS'],
        ...findings.nodes.map((n) => [
          n.name,
          n.podCIDRs.length === 0 ? '<none>' : n.podCIDRs.join(','),
          nodeStatus(n.problems, foreign.get(n.name), n.deleting),
        ]),
      ]),
    );
  }
  if (findings.problems.length > 0) {
    out.push('', `Problems (${findings.problems.length}):`);
    out.push(...findings.problems.map((p) => `  ${p.node}: ${p.message}`));
  }
  if (findings.foreignManagers.length > 0) {
    out.push('', `podCIDRs set by another field manager (informational, ${findings.foreignManagers.length}):`);
    out.push(...findings.foreignManagers.map((f) => `  ${f.node}: ${f.manager}`));
  }
  out.push(
    '',
    ...table([
      ['RANGE', 'MASK', 'NODES', 'RESERVED', 'FREE', 'CAPACITY', 'USED'],
      ...findings.ranges.map((r) => [
        r.clusterCIDR,
        `/${r.nodeMask}`,
        group(r.byNodes),
        group(r.reserved),
        group(r.free),
        group(r.capacity),
        `${r.percentUsed.toFixed(1)}%`,
      ]),
    ]),
  );
  if (pools !== undefined) out.push(...poolLines(findings, pools));
  const n = findings.problems.length;
  out.push('', `Check complete; found ${n} problem${n === 1 ? '' : 's'}.`);
  return `${out.join('\n')}\n`;
}

/** check's pools section; nothing when the API has ClusterCIDRs but there are none. */
function poolLines(findings: Findings, pools: PoolsRead): string[] {
  if (pools.unavailable !== undefined) return ['', `ClusterCIDR pools not read: ${pools.unavailable}.`];
  const out: string[] = [];
  const ranges = findings.pools?.ranges ?? [];
  if (ranges.length > 0) {
    out.push(
      '',
      ...table([
        ['POOL', 'RANGE', 'MASK', 'NODES', 'FREE', 'CAPACITY'],
        ...ranges.map((r) => [r.pool, r.clusterCIDR, `/${r.nodeMask}`, group(r.nodes), group(r.free), group(r.capacity)]),
      ]),
    );
  }
  const outside = findings.pools?.outside ?? [];
  if (outside.length > 0) {
    out.push('', `Nodes with a podCIDR in no pool and no --cluster-cidr range (${outside.length}):`);
    out.push(...outside.map((o) => `  ${o.node}: ${o.podCIDRs.join(',')}`));
  }
  if (pools.invalid.length > 0) {
    out.push('', `ClusterCIDRs left out, as the controller leaves them out (${pools.invalid.length}):`);
    out.push(...pools.invalid.map((i) => `  ${i.name}: ${i.problems.join('; ')}`));
  }
  return out;
}

const STATUS_LABELS: Record<ProblemKind, string> = {
  malformed: 'malformed',
  'out-of-range': 'out of range',
  duplicate: 'duplicate',
  overlap: 'overlap',
  reserved: 'in reserved range',
  'same-family': 'two of one family',
  missing: 'no podCIDR',
  'missing-family': 'missing a family',
};

function nodeStatus(problems: readonly ProblemKind[], foreignManager: string | undefined, deleting: boolean): string {
  const notes: string[] = [];
  if (foreignManager !== undefined) notes.push(`set by ${foreignManager}`);
  if (deleting) notes.push('deleting');
  const head = problems.length === 0 ? 'ok' : problems.map((k) => STATUS_LABELS[k]).join(', ');
  return notes.length === 0 ? head : `${head} (${notes.join(', ')})`;
}

/** Left-aligned columns two spaces apart; the last column is not padded. */
function table(rowsIn: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rowsIn) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rowsIn.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** Label/value pairs with the values aligned. */
function rows(pairs: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(...pairs.map(([label]) => label.length));
  return pairs.map(([label, value]) => `${label.padEnd(width)}  ${value}`);
}
