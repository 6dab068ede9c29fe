// Cluster ranges appended at run time through the ConfigMap podcidr-allocator-config (key clusterCIDRs).
// Ranges may only be appended: a shrunk, edited or reordered list is refused and the old one stays in force.

import type { Family, RangeSpec } from '../allocator/types.js';
import { type Cidr, sameCidr, tryParseCidr } from '../cidr/index.js';

export const RANGE_CONFIG_NAME = 'podcidr-allocator-config';
export const RANGE_CONFIG_KEY = 'clusterCIDRs';

export type RangeChange =
  /** Nothing to do: no ConfigMap or key, or the same ranges as now. */
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'append'; readonly added: readonly RangeSpec[] }
  | { readonly kind: 'refused'; readonly reason: string };

/**
 * Judges the ConfigMap's `clusterCIDRs` text against the ranges in force. The ranges in force (the
 * flag's, then those appended since) must be a prefix of the new list; each new range takes the node
 * mask of the first range of its family, and its family must already be served. Overlaps between
 * ranges are left to the allocator, which refuses them.
 */
export function planRangeChange(current: readonly RangeSpec[], text: string | undefined): RangeChange {
  if (text === undefined || text.trim() === '') return { kind: 'unchanged' };
  const entries = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const parsed: { text: string; cidr: Cidr }[] = [];
  for (const entry of entries) {
    const cidr = tryParseCidr(entry);
    if (cidr === undefined) return { kind: 'refused', reason: `${JSON.stringify(entry)} is not a CIDR (or has host bits set)` };
    parsed.push({ text: entry, cidr });
  }
  for (let i = 0; i < current.length; i++) {
    const range = current[i];
    const next = parsed[i];
    if (range === undefined) continue;
    if (next === undefined) {
      return { kind: 'refused', reason: `the list drops ${range.clusterCIDR}; ranges may only be appended, never removed` };
    }
    if (!sameCidr(next.cidr, range.clusterCIDR)) {
      return {
        kind: 'refused',
        reason: `entry ${i + 1} is ${next.text} where ${range.clusterCIDR} is in force; ranges may only be appended, never edited or reordered`,
      };
    }
  }
  const added: RangeSpec[] = [];
  for (const entry of parsed.slice(current.length)) {
    const { family } = entry.cidr;
    const mask = nodeMaskOf(current, family);
    if (mask === undefined) return { kind: 'refused', reason: `${entry.text} is ${family}, a family this cluster does not serve` };
    if (added.some((r) => sameCidr(r.clusterCIDR, entry.cidr))) {
      return { kind: 'refused', reason: `${entry.text} is listed twice` };
    }
    added.push({ clusterCIDR: entry.cidr, nodeMask: mask });
  }
  return added.length === 0 ? { kind: 'unchanged' } : { kind: 'append', added };
}

function nodeMaskOf(ranges: readonly RangeSpec[], family: Family): number | undefined {
  return ranges.find((r) => r.clusterCIDR.family === family)?.nodeMask;
}
