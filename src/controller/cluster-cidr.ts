// A ClusterCIDR object (networking.x-k8s.io/v1) read into a pool, and a pool's use written back as
// its status. Every problem is returned, never thrown: a bad object is reported and left out, not fatal.

import { rangeProblem } from '../allocator/cidr-set.js';
import type { RangeUsage } from '../allocator/types.js';
import { formatCidr, tryParseCidr, type Cidr } from '../cidr/index.js';
import { validateNodeSelector, type NodeSelector } from './node-selector.js';
import type { PoolDefinition } from './pool-allocator.js';
import type { ClusterCIDRObject, ClusterCIDRStatus, PoolCondition, PoolFamilyStatus } from './ports.js';

export const CLUSTER_CIDR_API_VERSION = 'networking.x-k8s.io/v1';

/** node-ipam-controller's finalizer: objects it kept already carry it, and we keep them the same way. */
export const POOL_FINALIZER = 'networking.k8s.io/cluster-cidr-finalizer';

/** The least perNodeHostBits the peer accepts: 16 addresses a node. */
export const MIN_HOST_BITS = 4;

export type PoolReading = { readonly pool: PoolDefinition } | { readonly problems: readonly string[] };

/** The pool a ClusterCIDR describes, or every reason it cannot be one. */
export function poolOf(object: ClusterCIDRObject): PoolReading {
  const spec = (object.spec ?? {}) as Record<string, unknown>;
  const problems: string[] = [];
  const hostBits = spec['perNodeHostBits'];
  if (typeof hostBits !== 'number' || !Number.isInteger(hostBits) || hostBits < MIN_HOST_BITS) {
    problems.push(`spec.perNodeHostBits: must be an integer of at least ${MIN_HOST_BITS}, got ${JSON.stringify(hostBits)}`);
  }
  const ipv4 = familyRange(spec, 'ipv4', 32, hostBits, problems);
  const ipv6 = familyRange(spec, 'ipv6', 128, hostBits, problems);
  if (spec['ipv4'] === undefined && spec['ipv6'] === undefined) problems.push('spec: one of ipv4 or ipv6 is required');
  const nodeSelector = selectorOf(spec['nodeSelector'], problems);
  if (problems.length > 0 || typeof hostBits !== 'number') return { problems };
  return { pool: { name: object.name, nodeSelector, ipv4, ipv6, perNodeHostBits: hostBits } };
}

function familyRange(
  spec: Record<string, unknown>,
  field: 'ipv4' | 'ipv6',
  bits: 32 | 128,
  hostBits: unknown,
  problems: string[],
): Cidr | undefined {
  const text = spec[field];
  if (text === undefined || text === '') return undefined;
  const cidr = typeof text === 'string' ? tryParseCidr(text) : undefined;
  if (cidr === undefined || cidr.bits !== bits) {
    problems.push(`spec.${field}: ${JSON.stringify(text)} is not an ${field === 'ipv4' ? 'IPv4' : 'IPv6'} CIDR with its host bits clear`);
    return undefined;
  }
  if (typeof hostBits === 'number' && Number.isInteger(hostBits)) {
    const problem = rangeProblem(cidr.prefix, bits - hostBits, bits);
    if (problem) problems.push(`spec.${field}: ${formatCidr(cidr)} with perNodeHostBits ${hostBits}: ${problem.message}`);
  }
  return cidr;
}

function selectorOf(value: unknown, problems: string[]): NodeSelector | undefined {
  if (value === undefined || value === null) return undefined;
  const terms = (value as { nodeSelectorTerms?: unknown }).nodeSelectorTerms;
  if (!Array.isArray(terms)) {
    problems.push('spec.nodeSelector.nodeSelectorTerms: must be a list');
    return undefined;
  }
  const selector = value as NodeSelector;
  problems.push(...validateNodeSelector(selector).map((p) => `spec.nodeSelector.${p}`));
  return selector;
}

/** The pool's status from its ranges' use; conditions keep their transition time while unchanged. */
export function poolStatus(
  generation: number,
  usage: readonly RangeUsage[],
  previous: readonly PoolCondition[],
  nearlyFull: number,
  now: Date,
): ClusterCIDRStatus {
  const families = usage.map((u) => ({ u, status: familyStatus(u) }));
  const v4 = families.find((f) => f.u.family === 'IPv4')?.status;
  const v6 = families.find((f) => f.u.family === 'IPv6')?.status;
  const exhausted = families.filter((f) => f.status.free === 0).map((f) => f.u.family);
  const fill = Math.max(0, ...families.map((f) => fillOf(f.u)));
  const percent = Math.round(fill * 100);
  const conditions = [
    condition(previous, generation, now, 'NearlyFull', fill >= nearlyFull, fill >= nearlyFull ? 'AboveThreshold' : 'BelowThreshold', `${percent}% of the pool's subnets are in use or held (warning at ${Math.round(nearlyFull * 100)}%)`),
    condition(previous, generation, now, 'Exhausted', exhausted.length > 0, exhausted.length > 0 ? 'NoFreeSubnets' : 'FreeSubnets', exhausted.length > 0 ? `no free ${exhausted.join(' or ')} subnet: nodes that match wait, or go to the next pool that matches` : 'every family has a free subnet'),
  ];
  return { observedGeneration: generation, ...(v4 && { ipv4: v4 }), ...(v6 && { ipv6: v6 }), conditions };
}

function familyStatus(u: RangeUsage): PoolFamilyStatus {
  return { capacity: u.capacity, allocated: Math.max(0, u.used - u.reserved - u.quarantined), free: u.free };
}

/** Share of the subnets that can ever be handed out which are taken. */
function fillOf(u: RangeUsage): number {
  const usable = u.capacity - u.reserved;
  return usable <= 0 ? 1 : (u.used - u.reserved) / usable;
}

function condition(
  previous: readonly PoolCondition[],
  generation: number,
  now: Date,
  type: string,
  on: boolean,
  reason: string,
  message: string,
): PoolCondition {
  const status = on ? 'True' : 'False';
  const before = previous.find((c) => c.type === type);
  const lastTransitionTime = before?.status === status ? before.lastTransitionTime : now.toISOString().replace(/\.\d+Z$/, 'Z');
  return { type, status, observedGeneration: generation, lastTransitionTime, reason, message };
}

/** Same figures and conditions (transition times aside): nothing to write. */
export function sameStatus(a: ClusterCIDRStatus | undefined, b: ClusterCIDRStatus): boolean {
  if (a === undefined) return false;
  const strip = (s: ClusterCIDRStatus): string =>
    JSON.stringify({ ...s, conditions: s.conditions.map((c) => ({ ...c, lastTransitionTime: '' })) });
  return strip(a) === strip(b);
}
