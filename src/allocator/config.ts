// Checks cluster/service/exclude CIDRs and node mask sizes with kube-controller-manager's rules.
// Never throws: returns the usable ranges plus every problem, each naming its flag, upstream's text where it exists.

import { CidrParseError, formatCidr, overlaps, parseCidr, type Cidr } from '../cidr/index.js';
import { rangeProblem } from './cidr-set.js';
import type { Family, RangeSpec } from './types.js';

export interface ClusterConfigInput {
  /** --cluster-cidr, split on commas; order is podCIDRs order. */
  readonly clusterCIDRs: readonly string[];
  /** --node-cidr-mask-size (single-stack only); 0 or undefined = unset. */
  readonly nodeCIDRMaskSize?: number;
  readonly nodeCIDRMaskSizeIPv4?: number;
  readonly nodeCIDRMaskSizeIPv6?: number;
  /** --service-cluster-ip-range, split on commas. */
  readonly serviceClusterIPRanges?: readonly string[];
  /** --exclude-cidr: more CIDRs never handed out. */
  readonly excludeCIDRs?: readonly string[];
}

export interface ValidateOptions {
  /**
   * Accept several ranges per family (ranges appended at runtime). The flags themselves allow one
   * per family, as upstream does.
   */
  readonly multipleRangesPerFamily?: boolean;
}

export interface ConfigProblem {
  /** The flag to fix, e.g. "--cluster-cidr". */
  readonly flag: string;
  readonly message: string;
}

export interface ClusterConfig {
  /** Ranges in configured order (canonical text); empty when any cluster CIDR or mask problem exists. */
  readonly ranges: RangeSpec[];
  /** Service ranges and excluded CIDRs, canonical text, to pass to the allocator as reserved. */
  readonly reserved: Cidr[];
  readonly problems: ConfigProblem[];
}

export const DEFAULT_NODE_MASK_IPV4 = 24;
export const DEFAULT_NODE_MASK_IPV6 = 64;

const CLUSTER = '--cluster-cidr';
const MASK = '--node-cidr-mask-size';
const MASK_V4 = '--node-cidr-mask-size-ipv4';
const MASK_V6 = '--node-cidr-mask-size-ipv6';
const SERVICE = '--service-cluster-ip-range';
const EXCLUDE = '--exclude-cidr';

export function validateClusterConfig(input: ClusterConfigInput, options: ValidateOptions = {}): ClusterConfig {
  const problems: ConfigProblem[] = [];
  const clusters = parseAll(input.clusterCIDRs, CLUSTER, problems);
  checkClusterList(input.clusterCIDRs.length, clusters, options, problems);
  const masks = nodeMasks(input, clusters, problems);
  const ranges = clusterRanges(clusters, masks, problems);
  const services = parseAll(input.serviceClusterIPRanges ?? [], SERVICE, problems);
  checkServiceList(input.serviceClusterIPRanges?.length ?? 0, services, problems);
  const excludes = parseAll(input.excludeCIDRs ?? [], EXCLUDE, problems);
  return {
    ranges: problems.some((p) => p.flag !== SERVICE && p.flag !== EXCLUDE) ? [] : ranges,
    reserved: [...services, ...excludes],
    problems,
  };
}

/**
 * The service and excluded ranges alone, for a controller that serves ClusterCIDR pools without
 * --cluster-cidr: they are still reserved in every pool, so they are still checked.
 */
export function validateReservedConfig(input: Omit<ClusterConfigInput, 'clusterCIDRs'>): Pick<ClusterConfig, 'reserved' | 'problems'> {
  const problems: ConfigProblem[] = [];
  const services = parseAll(input.serviceClusterIPRanges ?? [], SERVICE, problems);
  checkServiceList(input.serviceClusterIPRanges?.length ?? 0, services, problems);
  const excludes = parseAll(input.excludeCIDRs ?? [], EXCLUDE, problems);
  return { reserved: [...services, ...excludes], problems };
}

// Unlike upstream, an unparsable service range is a problem, not a logged warning: silently not
// reserving it would let node subnets overlap service IPs.
function parseAll(texts: readonly string[], flag: string, problems: ConfigProblem[]): Cidr[] {
  const parsed: Cidr[] = [];
  for (const text of texts) {
    try {
      parsed.push(parseCidr(text));
    } catch (error) {
      if (!(error instanceof CidrParseError)) throw error;
      problems.push({ flag, message: error.message });
    }
  }
  return parsed;
}

function familiesOf(cidrs: readonly Cidr[]): Set<Family> {
  return new Set(cidrs.map((c) => c.family));
}

function checkClusterList(
  given: number,
  clusters: readonly Cidr[],
  options: ValidateOptions,
  problems: ConfigProblem[],
): void {
  if (given === 0) {
    problems.push({ flag: CLUSTER, message: 'Controller: Must specify --cluster-cidr if --allocate-node-cidrs is set' });
    return;
  }
  if (!options.multipleRangesPerFamily) {
    // Upstream's texts, unbalanced parenthesis included: operators search for them verbatim.
    if (clusters.length === given && given > 1 && familiesOf(clusters).size < 2) {
      problems.push({
        flag: CLUSTER,
        message: `len of ClusterCIDRs==${given} and they are not configured as dual stack (at least one from each IPFamily`,
      });
    }
    if (given > 2) {
      problems.push({ flag: CLUSTER, message: `length of clusterCIDRs is:${given} more than max allowed of 2` });
    }
  }
  for (let i = 0; i < clusters.length; i++) {
    for (let j = i + 1; j < clusters.length; j++) {
      const a = clusters[i];
      const b = clusters[j];
      if (a !== undefined && b !== undefined && overlaps(a, b)) {
        problems.push({ flag: CLUSTER, message: `cluster CIDRs ${formatCidr(a)} and ${formatCidr(b)} overlap` });
      }
    }
  }
}

interface NodeMask {
  readonly size: number;
  /** The flag the size came from; undefined for the built-in default. */
  readonly flag: string | undefined;
}

/** Upstream's setNodeCIDRMaskSizes, reporting every conflict instead of the first. */
function nodeMasks(
  input: ClusterConfigInput,
  clusters: readonly Cidr[],
  problems: ConfigProblem[],
): Record<Family, NodeMask> {
  const generic = maskFlag(input.nodeCIDRMaskSize, MASK, problems);
  const v4 = maskFlag(input.nodeCIDRMaskSizeIPv4, MASK_V4, problems);
  const v6 = maskFlag(input.nodeCIDRMaskSizeIPv6, MASK_V6, problems);
  const families = familiesOf(clusters);
  const dualStack = families.size === 2;
  const ipv6Only = families.size === 1 && families.has('IPv6');
  const ipv4Only = families.size === 1 && families.has('IPv4');
  if (dualStack && generic !== undefined) {
    problems.push({ flag: MASK, message: 'usage of --node-cidr-mask-size is not allowed with dual-stack clusters' });
  } else if (generic !== undefined && (v4 !== undefined || v6 !== undefined)) {
    problems.push({
      flag: MASK,
      message:
        'usage of --node-cidr-mask-size-ipv4 and --node-cidr-mask-size-ipv6 is not allowed if --node-cidr-mask-size is set. For dual-stack clusters please unset it and use IPFamily specific flags',
    });
  } else {
    if (v4 !== undefined && ipv6Only) {
      problems.push({ flag: MASK_V4, message: 'usage of --node-cidr-mask-size-ipv4 is not allowed for a single-stack IPv6 cluster' });
    }
    if (v6 !== undefined && ipv4Only) {
      problems.push({ flag: MASK_V6, message: 'usage of --node-cidr-mask-size-ipv6 is not allowed for a single-stack IPv4 cluster' });
    }
  }
  const single = dualStack ? undefined : generic;
  return {
    IPv4: pickMask(v4, MASK_V4, single, DEFAULT_NODE_MASK_IPV4),
    IPv6: pickMask(v6, MASK_V6, single, DEFAULT_NODE_MASK_IPV6),
  };
}

function pickMask(own: number | undefined, ownFlag: string, generic: number | undefined, fallback: number): NodeMask {
  if (own !== undefined) return { size: own, flag: ownFlag };
  if (generic !== undefined) return { size: generic, flag: MASK };
  return { size: fallback, flag: undefined };
}

/** A set mask flag's value; undefined when unset (0, as upstream) or invalid (reported). */
function maskFlag(value: number | undefined, flag: string, problems: ConfigProblem[]): number | undefined {
  if (value === undefined || value === 0) return undefined;
  if (!Number.isInteger(value) || value < 0) {
    problems.push({ flag, message: `${flag} must be a positive integer, got ${value}` });
    return undefined;
  }
  return value;
}

function clusterRanges(
  clusters: readonly Cidr[],
  masks: Record<Family, NodeMask>,
  problems: ConfigProblem[],
): RangeSpec[] {
  const ranges: RangeSpec[] = [];
  for (const cluster of clusters) {
    const mask = masks[cluster.family];
    const text = formatCidr(cluster);
    const problem = rangeProblem(cluster.prefix, mask.size, cluster.bits);
    if (problem === undefined) {
      ranges.push({ clusterCIDR: cluster, nodeMask: mask.size });
    } else if (problem.kind === 'mask-shorter-than-cluster') {
      problems.push({
        flag: CLUSTER,
        message: `Controller: Invalid --cluster-cidr, mask size of cluster CIDR must be less than or equal to --node-cidr-mask-size configured for CIDR family (${text}, node mask /${mask.size})`,
      });
    } else {
      problems.push({ flag: mask.flag ?? CLUSTER, message: `${text} with node mask /${mask.size}: ${problem.message}` });
    }
  }
  return ranges;
}

function checkServiceList(given: number, services: readonly Cidr[], problems: ConfigProblem[]): void {
  if (given > 2) {
    problems.push({ flag: SERVICE, message: '--service-cluster-ip-range can not contain more than two entries' });
  }
  const [primary, secondary] = services;
  if (given === 2 && primary !== undefined && secondary !== undefined && primary.family === secondary.family) {
    problems.push({
      flag: SERVICE,
      message: 'serviceCIDR and secondaryServiceCIDR are not dualstack (from different IPfamiles)',
    });
  }
}
