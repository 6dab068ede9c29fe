// Text and JSON renderings of the tools' results: tables for people, one stable JSON object for scripts.
// JSON objects carry `report` and `version`; fields are only ever added within a version.

import type { Findings, ProblemKind, RangeUtilisation } from '../../controller/node-audit.js';
import type { Plan, ReservedImpact } from './capacity.js';
import { group } from './group.js';

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
}

export function checkJson(findings: Findings, selector: string | undefined): CheckJson {
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

export function checkText(findings: Findings, selector: string | undefined): string {
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
  const n = findings.problems.length;
  out.push('', `Check complete; found ${n} problem${n === 1 ? '' : 's'}.`);
  return `${out.join('\n')}\n`;
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
