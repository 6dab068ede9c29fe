// validateClusterConfig against kube-controller-manager's rules and texts, every problem at once.
// Each problem names the flag to fix; nothing throws.

import { describe, expect, it } from 'vitest';
import { validateClusterConfig, type ClusterConfigInput } from '../../../src/allocator/index.js';
import { parseRange } from '../../../src/allocator/range-spec.js';
import { formatCidr } from '../../../src/cidr/index.js';

function problemsOf(input: ClusterConfigInput): string[] {
  return validateClusterConfig(input).problems.map((p) => `${p.flag}: ${p.message}`);
}

describe('validateClusterConfig accepts', () => {
  it.each([
    [{ clusterCIDRs: ['10.244.0.0/16'] }, [parseRange('10.244.0.0/16', 24)]],
    [{ clusterCIDRs: ['fd00:10:244::/56'] }, [parseRange('fd00:10:244::/56', 64)]],
    [{ clusterCIDRs: ['10.244.0.0/16'], nodeCIDRMaskSize: 26 }, [parseRange('10.244.0.0/16', 26)]],
    [{ clusterCIDRs: ['fd00::/48'], nodeCIDRMaskSize: 60 }, [parseRange('fd00::/48', 60)]],
    [
      { clusterCIDRs: ['fd00::/40', '10.0.0.0/8'], nodeCIDRMaskSizeIPv4: 20 },
      [
        parseRange('fd00::/40', 64),
        parseRange('10.0.0.0/8', 20),
      ],
    ],
    [{ clusterCIDRs: ['10.0.0.0/24'], nodeCIDRMaskSizeIPv4: 24 }, [parseRange('10.0.0.0/24', 24)]],
    [{ clusterCIDRs: ['FD00:0::/48'], nodeCIDRMaskSizeIPv6: 0 }, [parseRange('fd00::/48', 64)]],
  ])('%j', (input, ranges) => {
    const config = validateClusterConfig(input);
    expect(config.problems).toEqual([]);
    expect(config.ranges).toEqual(ranges);
  });

  it('returns service ranges and exclusions as reserved, canonical', () => {
    const config = validateClusterConfig({
      clusterCIDRs: ['10.244.0.0/16', 'fd00::/48'],
      serviceClusterIPRanges: ['10.96.0.0/12', 'FD00:0:0:FFFF::/112'],
      excludeCIDRs: ['10.244.255.0/24'],
    });
    expect(config.problems).toEqual([]);
    expect(config.reserved.map(formatCidr)).toEqual(['10.96.0.0/12', 'fd00:0:0:ffff::/112', '10.244.255.0/24']);
  });

  it('accepts several ranges per family only when asked to', () => {
    const input = { clusterCIDRs: ['10.0.0.0/16', '10.1.0.0/16', 'fd00::/48'] };
    expect(validateClusterConfig(input).problems.length).toBeGreaterThan(0);
    const config = validateClusterConfig(input, { multipleRangesPerFamily: true });
    expect(config.problems).toEqual([]);
    expect(config.ranges.map((r) => formatCidr(r.clusterCIDR))).toEqual(['10.0.0.0/16', '10.1.0.0/16', 'fd00::/48']);
  });
});

describe('validateClusterConfig reports', () => {
  it.each<[string, ClusterConfigInput, string[]]>([
    ['no cluster CIDR', { clusterCIDRs: [] }, ['--cluster-cidr: Controller: Must specify --cluster-cidr if --allocate-node-cidrs is set']],
    [
      'an unparsable cluster CIDR',
      { clusterCIDRs: ['10.233.64.5/18'] },
      ['--cluster-cidr: invalid CIDR "10.233.64.5/18": host bits set (did you mean 10.233.64.0/18?)'],
    ],
    [
      'two CIDRs of one family',
      { clusterCIDRs: ['10.0.0.0/16', '10.1.0.0/16'] },
      ['--cluster-cidr: len of ClusterCIDRs==2 and they are not configured as dual stack (at least one from each IPFamily'],
    ],
    [
      'three CIDRs',
      { clusterCIDRs: ['10.0.0.0/16', 'fd00::/48', 'fd01::/48'] },
      ['--cluster-cidr: length of clusterCIDRs is:3 more than max allowed of 2'],
    ],
    [
      'the generic mask with dual-stack',
      { clusterCIDRs: ['10.0.0.0/16', 'fd00::/48'], nodeCIDRMaskSize: 24 },
      ['--node-cidr-mask-size: usage of --node-cidr-mask-size is not allowed with dual-stack clusters'],
    ],
    [
      'the generic mask with a family mask',
      { clusterCIDRs: ['10.0.0.0/16'], nodeCIDRMaskSize: 24, nodeCIDRMaskSizeIPv4: 25 },
      [
        '--node-cidr-mask-size: usage of --node-cidr-mask-size-ipv4 and --node-cidr-mask-size-ipv6 is not allowed if --node-cidr-mask-size is set. For dual-stack clusters please unset it and use IPFamily specific flags',
      ],
    ],
    [
      'an IPv4 mask on an IPv6-only cluster',
      { clusterCIDRs: ['fd00::/48'], nodeCIDRMaskSizeIPv4: 24 },
      ['--node-cidr-mask-size-ipv4: usage of --node-cidr-mask-size-ipv4 is not allowed for a single-stack IPv6 cluster'],
    ],
    [
      'an IPv6 mask on an IPv4-only cluster',
      { clusterCIDRs: ['10.0.0.0/16'], nodeCIDRMaskSizeIPv6: 64 },
      ['--node-cidr-mask-size-ipv6: usage of --node-cidr-mask-size-ipv6 is not allowed for a single-stack IPv4 cluster'],
    ],
    [
      'a cluster prefix longer than the node mask',
      { clusterCIDRs: ['10.0.0.0/25'] },
      [
        '--cluster-cidr: Controller: Invalid --cluster-cidr, mask size of cluster CIDR must be less than or equal to --node-cidr-mask-size configured for CIDR family (10.0.0.0/25, node mask /24)',
      ],
    ],
    [
      'more than 2^24 subnets, naming both masks',
      { clusterCIDRs: ['fd00::/32'] },
      [
        '--cluster-cidr: fd00::/32 with node mask /64: the node CIDR size is too big: a /32 cut into /64 subnets makes 2^32 subnets, more than the 2^24 one range supports; use a cluster prefix of /40 or longer, or a node mask of /56 or shorter',
      ],
    ],
    [
      'more than 2^24 subnets from a mask flag',
      { clusterCIDRs: ['10.0.0.0/8'], nodeCIDRMaskSizeIPv4: 33 },
      ['--node-cidr-mask-size-ipv4: 10.0.0.0/8 with node mask /33: node mask must be an integer between 0 and 32, got 33'],
    ],
    [
      'a negative mask',
      { clusterCIDRs: ['10.0.0.0/8'], nodeCIDRMaskSize: -4 },
      ['--node-cidr-mask-size: --node-cidr-mask-size must be a positive integer, got -4'],
    ],
    [
      'more than two service ranges',
      { clusterCIDRs: ['10.0.0.0/16'], serviceClusterIPRanges: ['10.96.0.0/12', 'fd00::/112', 'fd01::/112'] },
      ['--service-cluster-ip-range: --service-cluster-ip-range can not contain more than two entries'],
    ],
    [
      'two service ranges of one family',
      { clusterCIDRs: ['10.0.0.0/16'], serviceClusterIPRanges: ['10.96.0.0/12', '10.112.0.0/12'] },
      ['--service-cluster-ip-range: serviceCIDR and secondaryServiceCIDR are not dualstack (from different IPfamiles)'],
    ],
    [
      'an unparsable exclusion',
      { clusterCIDRs: ['10.0.0.0/16'], excludeCIDRs: ['10.0.0.0'] },
      ['--exclude-cidr: invalid CIDR "10.0.0.0": missing prefix length (expected address/prefix, e.g. 10.244.0.0/16)'],
    ],
  ])('%s', (_what, input, expected) => {
    expect(problemsOf(input)).toEqual(expected);
  });

  it('reports every problem at once and returns no ranges for a broken cluster configuration', () => {
    const config = validateClusterConfig({
      clusterCIDRs: ['10.0.0.0/16', 'fd00::/32', 'garbage'],
      nodeCIDRMaskSize: 24,
      serviceClusterIPRanges: ['10.96.0.0/12', 'nonsense'],
      excludeCIDRs: ['10.0.0.0/33'],
    });
    expect(config.problems.map((p) => p.flag)).toEqual([
      '--cluster-cidr',
      '--cluster-cidr',
      '--node-cidr-mask-size',
      '--cluster-cidr',
      '--service-cluster-ip-range',
      '--exclude-cidr',
    ]);
    expect(config.ranges).toEqual([]);
  });

  it('reports overlapping cluster CIDRs', () => {
    expect(
      validateClusterConfig({ clusterCIDRs: ['10.0.0.0/8', '10.1.0.0/16'] }, { multipleRangesPerFamily: true }).problems,
    ).toEqual([{ flag: '--cluster-cidr', message: 'cluster CIDRs 10.0.0.0/8 and 10.1.0.0/16 overlap' }]);
  });
});
