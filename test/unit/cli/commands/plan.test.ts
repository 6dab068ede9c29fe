import { describe, expect, it } from 'vitest';
import { planCapacity, podAddresses, type PlanInput } from '../../../../src/cli/commands/capacity.js';
import { parseToolFlags, planSpec } from '../../../../src/cli/commands/flags.js';
import { planJson, planText } from '../../../../src/cli/commands/report.js';
import { parseRange } from '../../../../src/allocator/range-spec.js';
import { cidrs } from '../../../support/cidrs.js';

/** The plan of a command line, through the same parser the command uses. */
function planOf(...args: string[]) {
  const parsed = parseToolFlags(args, {}, planSpec);
  if ('problems' in parsed) throw new Error(parsed.problems.join('\n'));
  return planCapacity(parsed.config);
}

describe('planCapacity', () => {
  it.each<[string, string[], number, string, string, string]>([
    ['IPv4 /18 into /24', ['--cluster-cidr=10.233.64.0/18', '--node-cidr-mask-size=24'], 64, '254', '10.233.64.0/24', '10.233.127.0/24'],
    ['IPv4 /16 into /26', ['--cluster-cidr=172.20.0.0/16', '--node-cidr-mask-size=26'], 1024, '62', '172.20.0.0/26', '172.20.255.192/26'],
    ['IPv4 with the default /24', ['--cluster-cidr=10.244.0.0/16'], 256, '254', '10.244.0.0/24', '10.244.255.0/24'],
    [
      'IPv6 /48 into /64',
      ['--cluster-cidr=fd00:10:244::/48', '--node-cidr-mask-size=64'],
      65_536,
      '18446744073709551615',
      'fd00:10:244::/64',
      'fd00:10:244:ffff::/64',
    ],
    ['IPv6 /112 into /120', ['--cluster-cidr=fd00::/112', '--node-cidr-mask-size=120'], 256, '255', 'fd00::/120', 'fd00::ff00/120'],
    ['one subnet when the masks are equal', ['--cluster-cidr=10.0.0.0/24', '--node-cidr-mask-size=24'], 1, '254', '10.0.0.0/24', '10.0.0.0/24'],
  ])('counts %s', (_case, args, subnets, pods, first, last) => {
    const plan = planOf(...args);
    expect(plan.ranges).toHaveLength(1);
    const [range] = plan.ranges;
    expect(range).toMatchObject({ nodeSubnets: subnets, firstSubnet: first, lastSubnet: last, maxNodes: subnets });
    expect(range?.podAddressesPerNode.toString()).toBe(pods);
    expect(plan.maxNodes).toBe(subnets);
    expect(plan.warnings.map((w) => w.kind)).toEqual(['node-limit']);
    expect(plan.warnings[0]?.message).toContain(`tops out at ${subnets.toLocaleString('en-US')} node`);
  });

  it('plans both families of a dual-stack cluster and takes the scarcer one as the node limit', () => {
    const plan = planOf(
      '--cluster-cidr=10.244.0.0/20,fd00:10:244::/56',
      '--node-cidr-mask-size-ipv4=24',
      '--node-cidr-mask-size-ipv6=64',
    );
    expect(plan.ranges.map((r) => [r.family, r.clusterCIDR, r.nodeSubnets])).toEqual([
      ['IPv4', '10.244.0.0/20', 16],
      ['IPv6', 'fd00:10:244::/56', 256],
    ]);
    expect(plan.maxNodes).toBe(16);
    expect(plan.warnings[0]?.message).toBe(
      'the cluster tops out at 16 nodes (the limit is IPv4 10.244.0.0/20); nodes beyond that get no podCIDR',
    );
  });

  it('warns when the service range overlaps the cluster CIDR and says how many node subnets it blocks', () => {
    const plan = planOf('--cluster-cidr=10.233.64.0/18', '--node-cidr-mask-size=24', '--service-cluster-ip-range=10.233.96.0/20');
    expect(plan.ranges[0]).toMatchObject({
      reservedSubnets: 16,
      maxNodes: 48,
      reservedBy: [{ cidr: '10.233.96.0/20', source: 'service', subnets: 16 }],
    });
    expect(plan.maxNodes).toBe(48);
    expect(plan.warnings).toContainEqual({
      kind: 'service-overlap',
      message: 'service range 10.233.96.0/20 overlaps cluster CIDR 10.233.64.0/18 and blocks 16 of its 64 node subnets',
    });
  });

  it('counts excluded ranges as lost without warning, and lists reserved ranges that touch nothing', () => {
    const plan = planOf(
      '--cluster-cidr=10.233.64.0/18',
      '--service-cluster-ip-range=10.233.0.0/18',
      '--exclude-cidr=10.233.64.0/23',
      '--exclude-cidr=10.233.65.128/25',
    );
    // The two excluded ranges overlap: 10.233.64.0/24 and 10.233.65.0/24 are lost once each.
    expect(plan.ranges[0]?.reservedSubnets).toBe(2);
    expect(plan.ranges[0]?.reservedBy.map((b) => [b.cidr, b.source, b.subnets])).toEqual([
      ['10.233.64.0/23', 'exclude', 2],
      ['10.233.65.128/25', 'exclude', 1],
    ]);
    expect(plan.unusedReserved).toEqual([{ cidr: '10.233.0.0/18', source: 'service', subnets: 0 }]);
    expect(plan.warnings.map((w) => w.kind)).toEqual(['node-limit']);
  });

  it('says a cluster fully covered by a service range serves no node at all', () => {
    const plan = planOf('--cluster-cidr=10.233.64.0/18', '--service-cluster-ip-range=10.233.0.0/16');
    expect(plan.maxNodes).toBe(0);
    expect(plan.warnings[0]?.message).toBe('the cluster tops out at 0 nodes: reserved ranges block every node subnet');
  });

  it.each([31, 32])('warns that a /%i node mask leaves no pod addresses', (mask) => {
    const plan = planOf('--cluster-cidr=10.0.0.0/24', `--node-cidr-mask-size=${mask}`);
    expect(plan.ranges[0]?.podAddressesPerNode).toBe(0n);
    expect(plan.warnings).toContainEqual({
      kind: 'no-pod-addresses',
      message: `node mask /${mask} leaves no pod addresses in a node subnet of 10.0.0.0/24`,
    });
  });

  it('warns about IPv6 ranges kube-controller-manager refuses (node mask more than 16 bits longer)', () => {
    const refused = planOf('--cluster-cidr=fd00:10::/40');
    expect(refused.ranges[0]?.nodeSubnets).toBe(2 ** 24);
    expect(refused.warnings.map((w) => w.kind)).toContain('upstream-refuses');
    const accepted = planOf('--cluster-cidr=fd00:10::/48');
    expect(accepted.warnings.map((w) => w.kind)).not.toContain('upstream-refuses');
  });

  it('never warns about IPv4 masks far longer than the cluster prefix (upstream has no such limit)', () => {
    const plan = planOf('--cluster-cidr=10.0.0.0/8', '--node-cidr-mask-size=30');
    expect(plan.ranges[0]?.nodeSubnets).toBe(2 ** 22);
    expect(plan.ranges[0]?.podAddressesPerNode).toBe(2n);
    expect(plan.warnings.map((w) => w.kind)).toEqual(['node-limit']);
  });
});

describe('podAddresses', () => {
  it.each<['IPv4' | 'IPv6', number, bigint]>([
    ['IPv4', 24, 254n],
    ['IPv4', 26, 62n],
    ['IPv4', 30, 2n],
    ['IPv4', 31, 0n],
    ['IPv4', 32, 0n],
    ['IPv6', 64, 2n ** 64n - 1n],
    ['IPv6', 120, 255n],
    ['IPv6', 127, 1n],
    ['IPv6', 128, 0n],
  ])('gives %s /%i node subnets %i pod addresses', (family, mask, count) => {
    expect(podAddresses(family, mask).count).toBe(count);
  });
});

describe('plan reports', () => {
  const input: PlanInput = {
    ranges: [parseRange('10.233.64.0/18', 24)],
    reserved: cidrs('10.233.0.0/18'),
    services: cidrs('10.233.0.0/18'),
  };

  it('writes the JSON object documented in the README, counts of pod addresses as decimal strings', () => {
    const json = planJson(planCapacity(input));
    expect(JSON.parse(JSON.stringify(json))).toEqual({
      report: 'plan',
      version: 1,
      maxNodes: 64,
      ranges: [
        {
          family: 'IPv4',
          clusterCIDR: '10.233.64.0/18',
          nodeMask: 24,
          nodeSubnets: 64,
          firstSubnet: '10.233.64.0/24',
          lastSubnet: '10.233.127.0/24',
          podAddressesPerNode: '254',
          podAddressRule: '2^8 addresses minus the network and broadcast addresses',
          reservedSubnets: 0,
          reservedBy: [],
          maxNodes: 64,
        },
      ],
      unusedReserved: [{ cidr: '10.233.0.0/18', source: 'service' }],
      warnings: [{ kind: 'node-limit', message: 'the cluster tops out at 64 nodes; nodes beyond that get no podCIDR' }],
    });
  });

  it('prints the figures an operator checks by hand, with thousands grouped', () => {
    const text = planText(planCapacity(input));
    expect(text).toContain('node subnets             64: 10.233.64.0/24 … 10.233.127.0/24');
    expect(text).toContain('pod addresses per node   254 (2^8 addresses minus the network and broadcast addresses)');
    expect(text).toContain('10.233.0.0/18 (--service-cluster-ip-range)');
    const v6 = planText(planCapacity({ ranges: [parseRange('fd00::/48', 64)], reserved: [], services: [] }));
    expect(v6).toContain('65,536: fd00::/64 … fd00:0:0:ffff::/64');
    expect(v6).toContain('18,446,744,073,709,551,615 (2^64 addresses minus the subnet-router anycast address)');
  });
});
