// Converts a Kubernetes Node (typed list item or plain watch JSON) into the slim NodeInfo the cache keeps.
// The result shares nothing with the input, so the full Node (status, images) can be collected at once.

import type { V1ManagedFieldsEntry, V1Node } from '@kubernetes/client-node';
import { NO_LABELS, type NodeInfo } from '../controller/ports.js';

const NO_CIDRS: readonly string[] = Object.freeze([]);

/**
 * The slim view of node. List responses carry Dates and watch events carry RFC 3339 strings for
 * timestamps; both become the server's string form ("2024-05-01T10:00:00Z").
 */
export function toNodeInfo(node: V1Node): NodeInfo {
  const meta = node.metadata ?? {};
  const manager = podCIDRManager(meta.managedFields);
  const podCIDRs = podCIDRsOf(node);
  // Every field in one literal, the optional ones possibly undefined: V8 then keeps them all inside
  // the object instead of in a separate property array (about 40 bytes a node).
  return {
    name: meta.name ?? '',
    uid: meta.uid ?? '',
    resourceVersion: meta.resourceVersion ?? '',
    podCIDRs,
    deletionTimestamp: timestampString(meta.deletionTimestamp),
    podCIDRManager: manager === undefined ? undefined : shared(manager),
    labels: labelsForPoolChoice(podCIDRs, meta.labels),
  };
}

/**
 * Labels only choose a pool, once, for a node without podCIDRs: allocations never move when labels
 * change. A node that holds podCIDRs keeps none, which saves 224 B a node at 50,000 nodes with a
 * dozen labels (docs/decisions/0003, "labels only while a node waits").
 */
function labelsForPoolChoice(
  podCIDRs: readonly string[],
  labels: Readonly<Record<string, string>> | undefined,
): Readonly<Record<string, string>> {
  return podCIDRs.length > 0 ? NO_LABELS : labelsOf(labels);
}

/** A copy with keys and values shared across nodes (most repeat: arch, os, zone, instance type). */
function labelsOf(labels: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> {
  if (labels === undefined) return NO_LABELS;
  const keys = Object.keys(labels);
  if (keys.length === 0) return NO_LABELS;
  const out: Record<string, string> = {};
  for (const key of keys) out[shared(key)] = shared(labels[key] ?? '');
  return out;
}

function podCIDRsOf(node: V1Node): readonly string[] {
  const plural = node.spec?.podCIDRs;
  if (plural !== undefined && plural.length > 0) return [...plural];
  const single = node.spec?.podCIDR;
  return single ? [single] : NO_CIDRS;
}

/**
 * One instance per distinct short string (field managers repeat across Nodes). Bounded: once full,
 * new strings are simply not shared.
 */
const sharedStrings = new Map<string, string>();
const MAX_SHARED_STRINGS = 10_000;
const MAX_SHARED_LENGTH = 256;

function shared(value: string): string {
  const known = sharedStrings.get(value);
  if (known !== undefined) return known;
  if (sharedStrings.size < MAX_SHARED_STRINGS && value.length <= MAX_SHARED_LENGTH) sharedStrings.set(value, value);
  return value;
}

/** Object metadata times have second precision; a Date's ".000Z" is dropped to match the wire form. */
export function timestampString(value: Date | string | undefined | null): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (Number.isNaN(value.getTime())) return undefined;
  return value.toISOString().replace(/\.000Z$/, 'Z');
}

/**
 * The field manager owning spec.podCIDRs (or, failing that, spec.podCIDR) according to
 * managedFields. Status-subresource entries are skipped: they never own spec.
 */
export function podCIDRManager(entries: readonly V1ManagedFieldsEntry[] | undefined): string | undefined {
  if (entries === undefined) return undefined;
  let singularOwner: string | undefined;
  for (const entry of entries) {
    if (entry.subresource !== undefined && entry.subresource !== '') continue;
    const spec = fieldsOf(entry.fieldsV1, 'f:spec');
    if (spec === undefined) continue;
    if (entry.manager !== undefined && 'f:podCIDRs' in spec) return entry.manager;
    if (singularOwner === undefined && 'f:podCIDR' in spec) singularOwner = entry.manager;
  }
  return singularOwner;
}

function fieldsOf(value: unknown, key: string): object | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const child: unknown = (value as Record<string, unknown>)[key];
  return typeof child === 'object' && child !== null ? child : undefined;
}
