// The order in which pools serve a node: each of node-ipam-controller's tie-breaks on its own, full and
// implicit pools, and two properties over random pools: the order agrees with a sort on key tuples,
// and does not depend on the order the pools come in.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCidr, type Cidr } from '../../../src/cidr/index.js';
import {
  matchingRequirements,
  selectorText,
  type NodeSelector,
  type NodeSelectorRequirement,
  type SelectableNode,
} from '../../../src/controller/node-selector.js';
import { orderPools, type PoolCandidate } from '../../../src/controller/pool-order.js';

const NODE: SelectableNode = { name: 'node-1', labels: { pool: 'gpu', zone: 'a', cores: '16' } };

const exists = (key: string): NodeSelectorRequirement => ({ key, operator: 'Exists' });
const term = (...matchExpressions: NodeSelectorRequirement[]): NodeSelector => ({ nodeSelectorTerms: [{ matchExpressions }] });

function pool(name: string, fields: Partial<PoolCandidate> = {}): PoolCandidate {
  return {
    name,
    nodeSelector: term(exists('pool')),
    ipv4: parseCidr('10.0.0.0/16'),
    perNodeHostBits: 8,
    allocatable: 256n,
    full: false,
    ...fields,
  };
}

const names = (pools: readonly PoolCandidate[]): string[] => pools.map((p) => p.name);

describe('orderPools tie-breaks, each on its own', () => {
  it.each<[string, PoolCandidate, PoolCandidate]>([
    [
      'puts the pool whose matching term has more requirements first, though it holds more subnets',
      pool('first', { nodeSelector: term(exists('pool'), exists('zone')), allocatable: 1024n }),
      pool('second', { nodeSelector: term(exists('pool')), allocatable: 16n }),
    ],
    [
      'counts the most specific matching term, not the largest term',
      pool('first', { nodeSelector: term(exists('pool'), exists('zone')) }),
      pool('second', {
        nodeSelector: { nodeSelectorTerms: [{ matchExpressions: [exists('pool')] }, { matchExpressions: [exists('pool'), exists('zone'), exists('missing')] }] },
      }),
    ],
    [
      'puts a pool with a selector before one without, which serves every node',
      pool('first', { nodeSelector: term(exists('pool')), allocatable: 1024n }),
      pool('second', { nodeSelector: undefined, allocatable: 1n }),
    ],
    [
      'with as many requirements, puts the pool with fewer allocatable subnets first',
      pool('first', { allocatable: 255n, perNodeHostBits: 10 }),
      pool('second', { allocatable: 256n, perNodeHostBits: 4 }),
    ],
    [
      'with as many subnets, puts the smaller node subnet (fewer host bits) first',
      pool('first', { perNodeHostBits: 6, nodeSelector: term(exists('zone')) }),
      pool('second', { perNodeHostBits: 7, nodeSelector: term(exists('pool')) }),
    ],
    [
      'with the same node subnet, puts the lower selector text first',
      pool('first', { nodeSelector: term(exists('pool')), ipv4: parseCidr('10.9.0.0/16') }),
      pool('second', { nodeSelector: term(exists('zone')), ipv4: parseCidr('10.1.0.0/16') }),
    ],
    [
      'with the same selector, puts the lower range text first',
      pool('z-first', { ipv4: parseCidr('10.1.0.0/16') }),
      pool('a-second', { ipv4: parseCidr('10.2.0.0/16') }),
    ],
    [
      'compares range text as text, not as addresses',
      pool('z-first', { ipv4: parseCidr('10.10.0.0/16') }),
      pool('a-second', { ipv4: parseCidr('10.9.0.0/16') }),
    ],
    [
      'reads the IPv6 range when a pool has no IPv4 one',
      pool('z-first', { ipv4: parseCidr('10.1.0.0/16') }),
      pool('a-second', { ipv4: undefined, ipv6: parseCidr('fd00::/112') }),
    ],
    [
      'with the same IPv4 range, puts the lower IPv6 range first',
      pool('z-first', { ipv6: parseCidr('fd00:1::/112') }),
      pool('a-second', { ipv6: parseCidr('fd00:2::/112') }),
    ],
    ['with everything else the same, puts the lower name first', pool('a-first'), pool('b-second')],
  ])('%s', (_, first, second) => {
    expect(names(orderPools([first, second], NODE).usable)).toEqual([first.name, second.name]);
    expect(names(orderPools([second, first], NODE).usable)).toEqual([first.name, second.name]);
  });
});

describe('orderPools', () => {
  it('leaves out pools whose selector does not match the node', () => {
    const pools = [pool('gpu'), pool('arm', { nodeSelector: term({ key: 'arch', operator: 'In', values: ['arm64'] }) })];
    expect(orderPools(pools, NODE)).toEqual({ usable: [pools[0]], full: [] });
  });

  it('skips a full pool for the next, and lists it apart in the same order', () => {
    const pools = [
      pool('small-full', { allocatable: 16n, full: true }),
      pool('middle', { allocatable: 64n }),
      pool('large-full', { allocatable: 256n, full: true }),
      pool('large', { allocatable: 1024n }),
    ];
    const order = orderPools(pools, NODE);
    expect(names(order.usable)).toEqual(['middle', 'large']);
    expect(names(order.full)).toEqual(['small-full', 'large-full']);
  });

  it('puts the implicit pool last, even when it is the smallest and least specific', () => {
    const flags = pool('flags', { implicit: true, nodeSelector: undefined, allocatable: 1n, perNodeHostBits: 4 });
    const catchAll = pool('catch-all', { nodeSelector: undefined, allocatable: 1024n });
    const order = orderPools([flags, catchAll, pool('gpu')], NODE);
    expect(names(order.usable)).toEqual(['gpu', 'catch-all', 'flags']);
  });

  it('lets the implicit pool serve a node no selector matches, whatever selector it carries', () => {
    const flags = pool('flags', { implicit: true, nodeSelector: { nodeSelectorTerms: [] } });
    const bare: SelectableNode = { name: 'bare', labels: {} };
    expect(names(orderPools([pool('gpu'), flags], bare).usable)).toEqual(['flags']);
  });

  it('lists a full implicit pool with the full ones', () => {
    const flags = pool('flags', { implicit: true, full: true });
    expect(orderPools([flags], NODE)).toEqual({ usable: [], full: [flags] });
  });

  it('gives nothing when no pool matches', () => {
    expect(orderPools([pool('arm', { nodeSelector: term(exists('arm')) })], NODE)).toEqual({ usable: [], full: [] });
  });

  it('hands back the objects it was given', () => {
    const mine = { ...pool('gpu'), extra: 'kept' };
    expect(orderPools([mine], NODE).usable[0]).toBe(mine);
  });
});

// Small spaces, so that random pools often tie on the first keys and the later tie-breaks decide.
const KEYS = ['pool', 'zone', 'cores'] as const;
const VALUES = ['a', 'b', '8', '16'] as const;
const IPV4 = ['10.0.0.0/16', '10.0.0.0/20', '10.10.0.0/16', '10.9.0.0/16'].map(parseCidr);
const IPV6 = ['fd00::/112', 'fd00:1::/112'].map(parseCidr);

const requirementArb: fc.Arbitrary<NodeSelectorRequirement> = fc.oneof(
  fc.record({
    key: fc.constantFrom(...KEYS),
    operator: fc.constantFrom('In', 'NotIn'),
    values: fc.uniqueArray(fc.constantFrom(...VALUES), { minLength: 1, maxLength: 2 }),
  }),
  fc.record({ key: fc.constantFrom(...KEYS), operator: fc.constantFrom('Exists', 'DoesNotExist') }),
  fc.record({ key: fc.constant('cores'), operator: fc.constantFrom('Gt', 'Lt'), values: fc.tuple(fc.constantFrom('4', '8', '32')) }),
  fc.record({ key: fc.constant('metadata.name'), operator: fc.constantFrom('In', 'NotIn'), values: fc.tuple(fc.constantFrom('n1', 'n2')) }).map(
    (field) => ({ ...field, isField: true }),
  ),
);

const termArb = fc.array(requirementArb, { maxLength: 3 }).map((requirements) => ({
  matchExpressions: requirements.filter((r) => !('isField' in r)),
  matchFields: requirements.filter((r) => 'isField' in r).map(({ key, operator, values }) => ({ key, operator, values })),
}));

const selectorArb: fc.Arbitrary<NodeSelector | undefined> = fc.option(
  fc.array(termArb, { minLength: 1, maxLength: 3 }).map((nodeSelectorTerms) => ({ nodeSelectorTerms })),
  { freq: 4, nil: undefined },
);

const oneIn = (n: number): fc.Arbitrary<boolean> => fc.integer({ min: 1, max: n }).map((i) => i === 1);

type PoolFields = Omit<PoolCandidate, 'name'>;

const poolFieldsArb: fc.Arbitrary<PoolFields> = fc
  .record({
    nodeSelector: selectorArb,
    family: fc.constantFrom('ipv4', 'ipv6', 'dual'),
    ipv4: fc.constantFrom(...IPV4),
    ipv6: fc.constantFrom(...IPV6),
    perNodeHostBits: fc.integer({ min: 4, max: 6 }),
    allocatable: fc.constantFrom(1n, 16n, 256n, 2n ** 100n),
    full: oneIn(3),
    implicit: oneIn(6),
  })
  .map(({ family, ipv4, ipv6, ...rest }) => ({
    ...rest,
    ipv4: family === 'ipv6' ? undefined : ipv4,
    ipv6: family === 'ipv4' ? undefined : ipv6,
  }));

/** Pools with unique names (the order's last key), as ClusterCIDR names are. */
const poolsArb: fc.Arbitrary<PoolCandidate[]> = fc
  .array(poolFieldsArb, { maxLength: 12 })
  .map((all) => all.map((fields, i) => ({ name: `pool-${String(i).padStart(2, '0')}`, ...fields })));

const nodeArb: fc.Arbitrary<SelectableNode> = fc.record({
  name: fc.constantFrom('n1', 'n2'),
  labels: fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), { maxKeys: 3 }),
});

/** The order as one tuple of keys per pool, compared left to right; undefined for a pool that does not serve the node. */
function sortKey(p: PoolCandidate, node: SelectableNode): (number | bigint | string)[] | undefined {
  const count = p.implicit === true ? -1 : matchingRequirements(p.nodeSelector, node);
  if (count === undefined) return undefined;
  const text = (c: Cidr | undefined): string => (c === undefined ? '' : String(c));
  return [
    -count,
    p.allocatable,
    p.perNodeHostBits,
    p.implicit === true ? '' : selectorText(p.nodeSelector),
    text(p.ipv4 ?? p.ipv6),
    p.ipv4 === undefined ? '' : text(p.ipv6),
    p.name,
  ];
}

function compareTuples(a: readonly (number | bigint | string)[], b: readonly (number | bigint | string)[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined || y === undefined) return x === undefined ? (y === undefined ? 0 : -1) : 1;
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}

function referenceOrder(pools: readonly PoolCandidate[], node: SelectableNode): { usable: string[]; full: string[] } {
  const keyed = pools.flatMap((p) => {
    const key = sortKey(p, node);
    return key === undefined ? [] : [{ p, key }];
  });
  keyed.sort((a, b) => compareTuples(a.key, b.key));
  return {
    usable: keyed.filter(({ p }) => !p.full).map(({ p }) => p.name),
    full: keyed.filter(({ p }) => p.full).map(({ p }) => p.name),
  };
}

describe('orderPools over random pools and nodes', () => {
  it('agrees with a sort of the pools on their key tuples', () => {
    fc.assert(
      fc.property(poolsArb, nodeArb, (pools, node) => {
        const order = orderPools(pools, node);
        expect({ usable: names(order.usable), full: names(order.full) }).toEqual(referenceOrder(pools, node));
      }),
      { numRuns: 500 },
    );
  });

  it('gives the same order whatever the order of the pools it is given', () => {
    const shuffled = poolsArb.chain((pools) =>
      fc.tuple(fc.constant(pools), fc.shuffledSubarray(pools, { minLength: pools.length, maxLength: pools.length })),
    );
    fc.assert(
      fc.property(shuffled, nodeArb, ([pools, permuted], node) => {
        const a = orderPools(pools, node);
        const b = orderPools(permuted, node);
        expect(names(b.usable)).toEqual(names(a.usable));
        expect(names(b.full)).toEqual(names(a.full));
      }),
      { numRuns: 500 },
    );
  });
});
