// Comparing the slim NodeInfo views the cache keeps: which changes matter for allocation.

import type { NodeInfo } from './ports.js';

/** True when a and b differ in anything but resourceVersion, i.e. the change matters for allocation. */
export function nodeInfoChanged(a: NodeInfo, b: NodeInfo): boolean {
  return (
    a.name !== b.name ||
    a.uid !== b.uid ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    a.podCIDRManager !== b.podCIDRManager ||
    !sameList(a.podCIDRs, b.podCIDRs)
  );
}

export function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
