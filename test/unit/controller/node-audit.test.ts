import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RangeSpec } from '../../../src/allocator/types.js';
import type { NodeInfo } from '../../../src/controller/ports.js';
import { auditNodes, auditProblems, type Problem } from '../../../src/controller/node-audit.js';
import { checkJson, checkText } from '../../../src/cli/commands/report.js';
import { harness } from './reconciler-fakes.js';
import { parseRange } from '../../../src/allocator/range-spec.js';
import { cidrs } from '../../support/cidrs.js';
import { parseCidr } from '../../../src/cidr/index.js';
import type { PoolDefinition } from '../../../src/controller/pool-allocator.js';

const V4: RangeSpec[] = [parseRange('10.0.0.0/20', 24)];
const DUAL: RangeSpec[] = [
  parseRange('10.0.0.0/20', 24),
  parseRange('fd00::/56', 64),
];

function node(name: string, podCIDRs: string[] = [], extra: Partial<NodeInfo> = {}): NodeInfo {
  return { name, uid: `${name}-uid`, resourceVersion: '1', podCIDRs, ...extra };
}

function kinds(problems: readonly Problem[]): [string, string, string | undefined][] {
  return problems.map((p) => [p.kind, p.node, p.cidr]);
}

describe('auditNodes', () => {
  it('judges podCIDRs in ClusterCIDR pools as the controller does: in range, overlapping across sizes', () => {
    const pools: PoolDefinition[] = [
      { name: 'edge', ipv4: parseCidr('10.1.0.0/24'), perNodeHostBits: 6 },
      { name: 'big', ipv4: parseCidr('10.0.0.0/20'), perNodeHostBits: 9 },
    ];
    const nodes = [node('a', ['10.1.0.0/26']), node('b', ['10.0.2.0/23']), node('c', ['10.0.3.0/24']), node('d', ['10.2.0.0/24'])];
    // c's /24 is inside b's /23 of pool big; d is in no range of any pool.
    expect(kinds(auditProblems(nodes, V4, [], { pools }).problems)).toEqual([
      ['overlap', 'c', '10.0.3.0/24'],
      ['out-of-range', 'd', '10.2.0.0/24'],
    ]);
    expect(kinds(auditProblems(nodes, [], [], { pools }).problems).map(([kind, name]) => [kind, name])).toEqual([
      ['overlap', 'c'],
      ['out-of-range', 'd'],
    ]);
  });

  it('finds nothing wrong with distinct podCIDRs inside the range and counts them', () => {
    const findings = auditNodes([node('b', ['10.0.1.0/24']), node('a', ['10.0.0.0/24'])], V4, []);
    expect(findings.problems).toEqual([]);
    expect(findings.nodes.map((n) => [n.name, n.problems])).toEqual([
      ['a', []],
      ['b', []],
    ]);
    expect(findings.ranges).toEqual([
      {
        clusterCIDR: '10.0.0.0/20',
        family: 'IPv4',
        nodeMask: 24,
        capacity: 16,
        reserved: 0,
        byNodes: 2,
        used: 2,
        free: 14,
        percentUsed: 12.5,
      },
    ]);
  });

  it('reports a duplicate on every holder but the first, naming the one that keeps it', () => {
    const findings = auditNodes(
      [node('c', ['10.0.1.0/24']), node('a', ['10.0.1.0/24']), node('b', ['10.0.1.0/24'])],
      V4,
      [],
    );
    expect(kinds(findings.problems)).toEqual([
      ['duplicate', 'b', '10.0.1.0/24'],
      ['duplicate', 'c', '10.0.1.0/24'],
    ]);
    expect(findings.problems[0]?.holders).toEqual([{ node: 'a', cidr: '10.0.1.0/24' }]);
    expect(findings.problems[1]?.message).toBe(
      'podCIDR 10.0.1.0/24 is already the podCIDR of a (10.0.1.0/24), b (10.0.1.0/24), which keeps it',
    );
    expect(findings.ranges[0]?.byNodes).toBe(1);
  });

  it('lets a node patched by podcidr-allocator keep the range before any name order', () => {
    const findings = auditNodes(
      [node('a', ['10.0.1.0/24'], { podCIDRManager: 'kube-controller-manager' }), node('z', ['10.0.1.0/24'], { podCIDRManager: 'podcidr-allocator' })],
      V4,
      [],
    );
    expect(kinds(findings.problems)).toEqual([['duplicate', 'a', '10.0.1.0/24']]);
    expect(findings.foreignManagers).toEqual([{ node: 'a', manager: 'kube-controller-manager', podCIDRs: ['10.0.1.0/24'] }]);
  });

  it('reports overlaps between podCIDRs of different sizes, both ways round', () => {
    const findings = auditNodes(
      [node('a', ['10.0.2.0/23']), node('b', ['10.0.3.0/24']), node('c', ['10.0.4.128/25']), node('d', ['10.0.4.0/24'])],
      V4,
      [],
    );
    expect(kinds(findings.problems)).toEqual([
      ['overlap', 'b', '10.0.3.0/24'],
      ['overlap', 'd', '10.0.4.0/24'],
    ]);
    expect(findings.problems[0]?.message).toBe('podCIDR 10.0.3.0/24 overlaps the podCIDR of a (10.0.2.0/23), which keeps it');
    // a's /23 fills two node subnets and c's /25 one; b and d add nothing of their own.
    expect(findings.ranges[0]?.byNodes).toBe(3);
  });

  it('reports malformed podCIDRs, host bits included, and those outside every range', () => {
    const findings = auditNodes(
      [node('a', ['10.0.0.300/24']), node('b', ['10.0.1.1/24']), node('c', ['192.168.0.0/24'])],
      V4,
      [],
    );
    expect(kinds(findings.problems)).toEqual([
      ['malformed', 'a', '10.0.0.300/24'],
      ['malformed', 'b', '10.0.1.1/24'],
      ['out-of-range', 'c', '192.168.0.0/24'],
    ]);
  });

  it('takes a podCIDR containing the whole cluster CIDR as in range, covering every node subnet', () => {
    const findings = auditNodes([node('d', ['10.0.0.0/8'])], V4, []);
    expect(findings.problems).toEqual([]);
    expect(findings.ranges[0]).toMatchObject({ used: 16, free: 0 });
  });

  it('reports podCIDRs inside a service or excluded range, in the range or not', () => {
    const findings = auditNodes(
      [node('a', ['10.0.0.0/24']), node('b', ['10.0.15.0/24']), node('c', ['10.96.0.0/24'])],
      V4,
      cidrs('10.96.0.0/12', '10.0.15.0/24'),
    );
    expect(kinds(findings.problems)).toEqual([
      ['reserved', 'b', '10.0.15.0/24'],
      ['out-of-range', 'c', '10.96.0.0/24'],
      ['reserved', 'c', '10.96.0.0/24'],
    ]);
    expect(findings.problems[0]?.message).toBe('podCIDR 10.0.15.0/24 shares addresses with the reserved range 10.0.15.0/24');
    expect(findings.ranges[0]).toMatchObject({ reserved: 1, byNodes: 1, used: 2, free: 14 });
  });

  it('reports two CIDRs of one family on one node, and a missing family in a dual-stack cluster', () => {
    const findings = auditNodes(
      [node('a', ['10.0.0.0/24', '10.0.1.0/24']), node('b', ['10.0.2.0/24']), node('c', ['10.0.3.0/24', 'fd00:0:0:3::/64'])],
      DUAL,
      [],
    );
    expect(kinds(findings.problems)).toEqual([
      ['same-family', 'a', '10.0.1.0/24'],
      ['missing-family', 'a', undefined],
      ['missing-family', 'b', undefined],
    ]);
    expect(findings.problems[0]?.message).toBe(
      'podCIDR 10.0.1.0/24 is a second IPv4 CIDR beside 10.0.0.0/24; one per family is allowed',
    );
    expect(findings.problems[1]?.message).toBe('has no IPv6 podCIDR');
  });

  it('reports nodes without podCIDRs unless they are being deleted', () => {
    const findings = auditNodes([node('a'), node('b', [], { deletionTimestamp: '2025-01-01T00:00:00Z' })], V4, []);
    expect(kinds(findings.problems)).toEqual([['missing', 'a', undefined]]);
    expect(findings.nodes.map((n) => [n.name, n.deleting, n.problems])).toEqual([
      ['a', false, ['missing']],
      ['b', true, []],
    ]);
  });

  it('counts another field manager as informational, never as a problem', () => {
    const findings = auditNodes(
      [node('a', ['10.0.0.0/24'], { podCIDRManager: 'kube-controller-manager' }), node('b', ['10.0.1.0/24'], { podCIDRManager: 'podcidr-allocator' })],
      V4,
      [],
    );
    expect(findings.problems).toEqual([]);
    expect(findings.foreignManagers).toEqual([{ node: 'a', manager: 'kube-controller-manager', podCIDRs: ['10.0.0.0/24'] }]);
  });

  it('claims a podCIDR a node lists twice only once, as the reconciler does', () => {
    const findings = auditNodes([node('a', ['10.0.0.0/24', '10.0.0.0/24'])], V4, []);
    expect(findings.problems).toEqual([]);
  });
});

describe('auditNodes and the reconciler', () => {
  /** What the controller reports at rebuild, as [kind, node, cidr], from its Warning Events. */
  function reconcilerConflicts(nodes: readonly NodeInfo[], ranges: readonly RangeSpec[]): string[] {
    const h = harness({ ranges, fieldManager: 'podcidr-allocator' });
    h.reconciler.rebuild(nodes);
    return h.events.events.map((e) => `${e.node}: ${e.note}`).sort();
  }

  function auditConflicts(nodes: readonly NodeInfo[], ranges: readonly RangeSpec[]): string[] {
    const conflicts = new Set(['malformed', 'out-of-range', 'duplicate', 'overlap']);
    return auditNodes(nodes, ranges, [])
      .problems.filter((p) => conflicts.has(p.kind))
      .map((p) => `${p.node}: ${p.message}`)
      .sort();
  }

  it('finds the same conflicts, with the same words, as the controller on a mixed example', () => {
    const nodes = [
      node('good', ['10.0.0.0/24']),
      node('same', ['10.0.0.0/24']),
      node('wide', ['10.0.2.0/23']),
      node('inner', ['10.0.3.0/24']),
      node('bad', ['10.0.1.300/24']),
      node('outside', ['192.168.0.0/24']),
      node('ours', ['10.0.9.0/24'], { podCIDRManager: 'podcidr-allocator' }),
      node('early', ['10.0.9.0/24']),
    ];
    const expected = reconcilerConflicts(nodes, V4);
    expect(expected).toHaveLength(5);
    expect(auditConflicts(nodes, V4)).toEqual(expected);
  });

  it('finds the same conflicts as the controller on random clusters', () => {
    const cidr = fc.oneof(
      fc.integer({ min: 0, max: 17 }).map((i) => `10.0.${i}.0/24`),
      fc.integer({ min: 0, max: 8 }).map((i) => `10.0.${i * 2}.0/23`),
      fc.integer({ min: 0, max: 15 }).map((i) => `10.0.${i}.128/25`),
      fc.constantFrom('10.0.0.1/24', 'not-a-cidr', 'fd00::/64', '10.0.0.0/16'),
    );
    const nodes = fc
      .uniqueArray(
        fc.record({
          name: fc.stringMatching(/^[a-e][0-9]$/),
          podCIDRs: fc.array(cidr, { maxLength: 2 }),
          ours: fc.boolean(),
        }),
        { selector: (n) => n.name, maxLength: 12 },
      )
      .map((specs) =>
        specs.map((s) => node(s.name, s.podCIDRs, s.ours ? { podCIDRManager: 'podcidr-allocator' } : {})),
      );
    fc.assert(
      fc.property(nodes, (list) => {
        expect(auditConflicts(list, V4)).toEqual(reconcilerConflicts(list, V4));
      }),
      { numRuns: 300 },
    );
  });
});

describe('check reports', () => {
  const findings = auditNodes(
    [
      node('node-a', ['10.0.0.0/24']),
      node('node-b', ['10.0.0.0/24'], { podCIDRManager: 'kube-controller-manager' }),
      node('node-c'),
    ],
    V4,
    [],
  );

  it('prints a NODE / PODCIDRS / STATUS table, the problems, utilisation and the closing line', () => {
    const text = checkText(findings, undefined);
    expect(text.split('\n')).toEqual([
      'NODE    PODCIDRS     STATUS',
      'node-a  10.0.0.0/24  ok',
      'node-b  10.0.0.0/24  duplicate (set by kube-controller-manager)',
      'node-c  <none>       no podCIDR',
      '',
      'Problems (2):',
      '  node-b: podCIDR 10.0.0.0/24 is already the podCIDR of node-a (10.0.0.0/24), which keeps it',
      '  node-c: has no podCIDR',
      '',
      'podCIDRs set by another field manager (informational, 1):',
      '  node-b: kube-controller-manager',
      '',
      'RANGE        MASK  NODES  RESERVED  FREE  CAPACITY  USED',
      '10.0.0.0/20  /24   1      0         15    16        6.3%',
      '',
      'Check complete; found 2 problems.',
      '',
    ]);
  });

  it('ends a clean report with "found 0 problems"', () => {
    const clean = checkText(auditNodes([node('a', ['10.0.0.0/24'])], V4, []), 'pool=gpu');
    expect(clean.trimEnd().split('\n').at(-1)).toBe('Check complete; found 0 problems.');
    expect(checkText(auditNodes([], V4, []), 'pool=gpu')).toContain('No nodes matching "pool=gpu".');
  });

  it('writes the JSON object documented in the README', () => {
    expect(JSON.parse(JSON.stringify(checkJson(findings, 'x=y')))).toEqual({
      report: 'check',
      version: 1,
      selector: 'x=y',
      problemCount: 2,
      nodes: [
        { name: 'node-a', podCIDRs: ['10.0.0.0/24'], podCIDRManager: null, deleting: false, status: 'ok', problems: [] },
        {
          name: 'node-b',
          podCIDRs: ['10.0.0.0/24'],
          podCIDRManager: 'kube-controller-manager',
          deleting: false,
          status: 'problem',
          problems: ['duplicate'],
        },
        { name: 'node-c', podCIDRs: [], podCIDRManager: null, deleting: false, status: 'problem', problems: ['missing'] },
      ],
      problems: [
        {
          kind: 'duplicate',
          node: 'node-b',
          cidr: '10.0.0.0/24',
          message: 'podCIDR 10.0.0.0/24 is already the podCIDR of node-a (10.0.0.0/24), which keeps it',
          holders: [{ node: 'node-a', cidr: '10.0.0.0/24' }],
        },
        { kind: 'missing', node: 'node-c', cidr: null, message: 'has no podCIDR', holders: [] },
      ],
      foreignManagers: [{ node: 'node-b', manager: 'kube-controller-manager', podCIDRs: ['10.0.0.0/24'] }],
      ranges: [
        { clusterCIDR: '10.0.0.0/20', family: 'IPv4', nodeMask: 24, capacity: 16, reserved: 0, byNodes: 1, used: 1, free: 15, percentUsed: 6.3 },
      ],
    });
  });
});

describe('auditProblems', () => {
  it('finds what auditNodes finds, without a status per node', () => {
    const nodes = [
      node('a', ['10.0.1.0/24']),
      node('b', ['10.0.1.0/24']),
      node('c', ['10.0.1.0/25']),
      node('d', ['172.16.0.0/24']),
      node('e', ['10.0.2.1/24']),
      node('f'),
      node('g', ['10.0.3.0/24'], { podCIDRManager: 'cilium-operator' }),
    ];
    const full = auditNodes(nodes, DUAL, cidrs('10.0.3.0/24'));
    const slim = auditProblems(nodes, DUAL, cidrs('10.0.3.0/24'));
    expect(slim.problems).toEqual(full.problems);
    expect(slim.foreignManagers).toEqual(full.foreignManagers);
    expect(new Set(slim.problems.map((p) => p.kind))).toEqual(
      new Set(['duplicate', 'overlap', 'out-of-range', 'malformed', 'missing', 'missing-family', 'reserved']),
    );
    expect(slim).not.toHaveProperty('nodes');
  });

  it('finds a duplicate behind thousands of distinct podCIDRs, and no conflict when all are distinct', () => {
    const wide: RangeSpec[] = [parseRange('10.0.0.0/8', 24)];
    const distinct = Array.from({ length: 3000 }, (_, i) => node(`n${i}`, [`10.${i >> 8}.${i & 255}.0/24`]));
    const clean = auditProblems([...distinct, node('z-empty')], wide, []);
    expect(kinds(clean.problems)).toEqual([['missing', 'z-empty', undefined]]);
    expect(clean.allocator.usage()[0]?.used).toBe(3000);
    const late = [...distinct, node('z-dup', ['10.11.183.0/24']), node('z-small', ['10.0.7.128/25'])];
    expect(kinds(auditProblems(late, wide, []).problems)).toEqual([
      ['duplicate', 'z-dup', '10.11.183.0/24'],
      ['overlap', 'z-small', '10.0.7.128/25'],
    ]);
  });
});

describe('auditNodes with ClusterCIDR pools', () => {
  const wide = { name: 'wide', ipv4: cidrs('10.1.0.0/16')[0], perNodeHostBits: 8 };
  const small = { name: 'small', ipv4: cidrs('10.1.0.0/24')[0], perNodeHostBits: 6 };

  it('takes a podCIDR in a pool as in range and one in no pool as out of range', () => {
    const findings = auditNodes([node('a', ['10.1.7.0/24']), node('b', ['10.2.0.0/24'])], V4, [], { pools: [wide] });
    expect(kinds(findings.problems)).toEqual([['out-of-range', 'b', '10.2.0.0/24']]);
    expect(findings.pools?.outside).toEqual([{ node: 'b', podCIDRs: ['10.2.0.0/24'] }]);
  });

  it('finds an overlap between subnets of two sizes from pools that share a range', () => {
    const findings = auditNodes([node('x', ['10.1.0.0/24']), node('y', ['10.1.0.0/26'])], V4, [], { pools: [wide, small] });
    expect(kinds(findings.problems)).toEqual([['overlap', 'y', '10.1.0.0/26']]);
    // The /24 node x holds blocks all four /26 of `small`.
    expect(findings.pools?.ranges.find((r) => r.pool === 'small')).toMatchObject({ nodes: 2, capacity: 4, free: 0 });
  });
});
