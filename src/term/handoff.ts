// The handoff: the subnets a leader held taken when its term ended and the node resourceVersion its
// cache had reached, kept in the ConfigMap podcidr-allocator-handoff. The next leader allocates from it,
// watching Nodes from that resourceVersion, while its own list of every Node is still coming in.

import type { Logger } from 'pino';
import { ClusterAllocator } from '../allocator/cluster-allocator.js';
import type { PodCidrAllocator, RangeSpec, TakenSubnets } from '../allocator/types.js';
import { sameCidr, tryParseCidr } from '../cidr/index.js';
import { NO_OVERLAPS, claimPodCIDR } from '../controller/claim.js';
import { ConfigMapConflictError, type ConfigMapStore, type NodeInfo } from '../controller/ports.js';

export const HANDOFF_NAME = 'podcidr-allocator-handoff';
export const HANDOFF_KEY = 'handoff.json';
export const HANDOFF_WRITTEN = `wrote the handoff to ${HANDOFF_NAME}`;
export const HANDOFF_REFRESHED = `refreshed the handoff in ${HANDOFF_NAME}`;
/** A ConfigMap holds 1 MiB. A larger handoff is not written, and the next leader waits for its list. */
export const MAX_HANDOFF_BYTES = 900_000;

/**
 * Safe to allocate from because it only ever over-states what is taken: every subnet a node held at
 * resourceVersion is in `ranges`, and a watch from resourceVersion shows every change since.
 */
export interface Handoff {
  readonly resourceVersion: string;
  /** The ranges in force, in order, each with its taken subnets. */
  readonly ranges: readonly TakenSubnets[];
}

interface Stored {
  readonly version: 1;
  readonly resourceVersion: string;
  readonly ranges: readonly TakenSubnets[];
}

/**
 * The handoff of a term, its workers stopped or running: what its allocator holds taken (in use, being
 * patched, quarantined, reserved) and what every cached node's podCIDRs cover, since a node still
 * queued has not been occupied yet. Call with the cache's nodes and resourceVersion read together, in
 * one synchronous step: the cache then holds every podCIDR a node had at resourceVersion.
 */
export function takeHandoff(
  allocator: Pick<ClusterAllocator, 'ranges' | 'taken'>,
  nodes: readonly NodeInfo[],
  resourceVersion: string,
): Handoff {
  const scratch = new ClusterAllocator({ ranges: allocator.ranges() });
  for (const taken of allocator.taken()) scratch.markTaken(taken);
  for (const node of nodes) occupyPodCIDRs(scratch, node);
  return { resourceVersion, ranges: scratch.taken() };
}

/**
 * Marks taken what a node's podCIDRs cover, read as the reconciler reads them (a malformed text covers
 * what a lenient reader takes it for), without judging who holds them.
 */
export function occupyPodCIDRs(allocator: Pick<PodCidrAllocator, 'occupy'>, node: NodeInfo): void {
  for (const text of node.podCIDRs) claimPodCIDR(NO_OVERLAPS, allocator, node, text);
}

/**
 * The handoff of a term that served ClusterCIDR pools: a fast start allocates from --cluster-cidr
 * alone and would put a node meant for a pool in the wrong one (allocations are never moved), so
 * it describes no ranges and the next leader allocates once its list is in.
 */
export function noFastStart(resourceVersion: string): Handoff {
  return { resourceVersion, ranges: [] };
}

export function encodeHandoff(handoff: Handoff): string {
  const stored: Stored = { version: 1, resourceVersion: handoff.resourceVersion, ranges: handoff.ranges };
  return JSON.stringify(stored);
}

/** Undefined for anything not exactly a handoff: a damaged one must only mean a start that lists first. */
export function decodeHandoff(text: string | undefined): Handoff | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { version, resourceVersion, ranges } = value as Partial<Record<keyof Stored, unknown>>;
  if (version !== 1 || typeof resourceVersion !== 'string' || resourceVersion === '') return undefined;
  if (!Array.isArray(ranges) || ranges.length === 0 || !ranges.every(isTakenSubnets)) return undefined;
  return { resourceVersion, ranges };
}

function isTakenSubnets(value: unknown): value is TakenSubnets {
  if (typeof value !== 'object' || value === null) return false;
  const { clusterCIDR, nodeMask, runs } = value as Partial<Record<keyof TakenSubnets, unknown>>;
  return (
    typeof clusterCIDR === 'string' &&
    Number.isInteger(nodeMask) &&
    Array.isArray(runs) &&
    runs.every((n) => Number.isInteger(n))
  );
}

/**
 * The ranges to allocate from before the list is in: the handoff's, when they start with the
 * flag's ranges (appended ranges follow those and are never removed). Undefined otherwise: a
 * range the handoff does not describe could hold anything.
 */
export function handoffRanges(handoff: Handoff, flagRanges: readonly RangeSpec[]): RangeSpec[] | undefined {
  // No ranges: the term that wrote it served pools, which a fast start cannot (see noFastStart).
  if (handoff.ranges.length === 0 || handoff.ranges.length < flagRanges.length) return undefined;
  const ranges: RangeSpec[] = [];
  for (const { clusterCIDR, nodeMask } of handoff.ranges) {
    const cidr = tryParseCidr(clusterCIDR);
    if (cidr === undefined) return undefined;
    ranges.push({ clusterCIDR: cidr, nodeMask });
  }
  const same = flagRanges.every((r, i) => {
    const stored = ranges[i];
    return stored !== undefined && sameCidr(stored.clusterCIDR, r.clusterCIDR) && stored.nodeMask === r.nodeMask;
  });
  return same ? ranges : undefined;
}

/** The stored handoff; undefined when there is none, it cannot be read, or it is damaged. Never throws. */
export async function readHandoff(store: ConfigMapStore, log: Logger, signal?: AbortSignal): Promise<Handoff | undefined> {
  let text: string | undefined;
  try {
    text = (await store.read(HANDOFF_NAME, signal))?.data[HANDOFF_KEY];
  } catch (err) {
    log.info({ err }, `could not read ${HANDOFF_NAME}; allocating once the node list is in`);
    return undefined;
  }
  const handoff = decodeHandoff(text);
  if (text !== undefined && handoff === undefined) log.warn(`${HANDOFF_NAME} is damaged; allocating once the node list is in`);
  return handoff;
}

/**
 * Replaces the stored handoff; a failure is logged, never thrown: the next leader then starts from an
 * older one, or lists first. signal bounds it, waits for rate-limit tokens included. A refresh (from
 * a running term) logs at debug, and its failure at info: the next refresh tries again.
 */
export async function writeHandoff(
  store: ConfigMapStore,
  handoff: Handoff,
  log: Logger,
  signal?: AbortSignal,
  refresh = false,
): Promise<boolean> {
  const text = encodeHandoff(handoff);
  if (text.length > MAX_HANDOFF_BYTES) {
    log.warn({ bytes: text.length }, `the handoff is too large for ${HANDOFF_NAME}; the next leader allocates once its node list is in`);
    return false;
  }
  // A second try only for a write that raced another replica's between our read and our write.
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      const current = await store.read(HANDOFF_NAME, signal);
      await store.write(HANDOFF_NAME, { [HANDOFF_KEY]: text }, current?.resourceVersion, signal);
      const written = { resourceVersion: handoff.resourceVersion, bytes: text.length };
      if (refresh) log.debug(written, HANDOFF_REFRESHED);
      else log.info(written, HANDOFF_WRITTEN);
      return true;
    } catch (err) {
      if (err instanceof ConfigMapConflictError && attempt === 1) continue;
      if (refresh) log.info({ err }, `could not refresh ${HANDOFF_NAME}; trying again at the next refresh`);
      else log.warn({ err }, `could not write ${HANDOFF_NAME}; the next leader allocates once its node list is in`);
      return false;
    }
  }
  return false;
}
