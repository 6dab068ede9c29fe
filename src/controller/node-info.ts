// Comparing the slim NodeInfo views the cache keeps: which changes matter for allocation.

import type { NodeInfo } from './ports.js';

/** True when a and b differ in anything but resourceVersion, i.e. the change matters for allocation. */
export function nodeInfoChanged(a: NodeInfo, b: NodeInfo): boolean {
  return (
    a.name !== b.name ||
    a.uid !== b.uid ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    a.podCIDRManager !== b.podCIDRManager ||
    !sameList(a.podCIDRs, b.podCIDRs) ||
    !sameLabels(a.labels, b.labels)
  );
}

/** Same keys and values, whatever their order; absent is the same as none. */
function sameLabels(a: Readonly<Record<string, string>> = {}, b: Readonly<Record<string, string>> = {}): boolean {
  if (a === b) return true;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

export function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
