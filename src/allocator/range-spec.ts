// A range from its text, for flags already checked, stored state and tests.

import { parseCidr } from '../cidr/index.js';
import type { RangeSpec } from './types.js';

/** clusterCIDR (host bits clear) carved into /nodeMask subnets; throws CidrParseError. */
export function parseRange(clusterCIDR: string, nodeMask: number): RangeSpec {
  return { clusterCIDR: parseCidr(clusterCIDR), nodeMask };
}
