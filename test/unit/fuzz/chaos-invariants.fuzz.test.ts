// The chaos run's invariant checker under random node sets: silent on disjoint subnets inside the
// cluster CIDRs, and it reports every overlap, stray CIDR and misshapen node planted among them, and
// a node whose subnet is not of its pool's size.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkNodes, type NodeCidrs } from '../../../hack/chaos/invariants.js';

const CLUSTER = ['10.8.0.0/16', 'fd00:8::/56'];

function v4(index: number, prefix = 24): string {
  return `10.8.${index}.0/${prefix}`;
}

function v6(index: number): string {
  return `fd00:8:0:${index.toString(16)}::/64`;
}

/** Distinct subnet indices, one per node, some nodes dual-stack. */
const nodeSet = fc
  .uniqueArray(fc.integer({ min: 0, max: 255 }), { minLength: 2, maxLength: 60 })
  .chain((indices) => fc.tuple(fc.constant(indices), fc.array(fc.boolean(), { minLength: indices.length, maxLength: indices.length })))
  .map(([indices, dual]) =>
    indices.map((index, i): NodeCidrs => {
      const podCIDRs = dual[i] === true ? [v4(index), v6(index)] : [v4(index)];
      return { name: `node-${i}`, podCIDR: podCIDRs[0], podCIDRs };
    }),
  );

describe('checkNodes', () => {
  it('finds nothing wrong with disjoint subnets inside the cluster CIDRs', () => {
    fc.assert(
      fc.property(nodeSet, (nodes) => {
        const result = checkNodes([...nodes, { name: 'waiting', podCIDR: undefined, podCIDRs: [] }], CLUSTER);
        expect(result.violations).toEqual([]);
        expect(result.holders).toBe(nodes.length);
      }),
    );
  });

  it('reports a node whose CIDR overlaps another node, whatever their order and sizes', () => {
    fc.assert(
      fc.property(nodeSet, fc.nat(), fc.constantFrom(16, 20, 24, 26), fc.nat(), (nodes, pick, prefix, at) => {
        const victim = nodes[pick % nodes.length];
        if (victim === undefined) throw new Error('empty node set');
        const third = Number(victim.podCIDRs[0]?.split('.')[2]);
        const size = 2 ** Math.max(0, 24 - prefix);
        // Same address space as the victim: its supernet, itself, or a subnet of it.
        const planted = prefix < 24 ? v4(third - (third % size), prefix) : prefix === 24 ? v4(third) : `10.8.${third}.64/26`;
        const intruder: NodeCidrs = { name: 'intruder', podCIDR: planted, podCIDRs: [planted] };
        const all = [...nodes];
        all.splice(at % (all.length + 1), 0, intruder);
        const result = checkNodes(all, CLUSTER);
        expect(result.violations.some((v) => v.startsWith('overlap:') && v.includes('intruder') && v.includes(victim.name))).toBe(true);
      }),
    );
  });

  it('reports CIDRs outside the cluster, malformed ones and misshapen nodes', () => {
    const result = checkNodes(
      [
        { name: 'outside', podCIDR: '10.9.0.0/24', podCIDRs: ['10.9.0.0/24'] },
        { name: 'malformed', podCIDR: '10.8.1.1/24', podCIDRs: ['10.8.1.1/24'] },
        { name: 'mismatch', podCIDR: '10.8.2.0/24', podCIDRs: ['10.8.3.0/24'] },
        { name: 'twice-v4', podCIDR: '10.8.4.0/24', podCIDRs: ['10.8.4.0/24', '10.8.5.0/24'] },
      ],
      CLUSTER,
    );
    expect(result.violations).toEqual([
      'outside: outside holds 10.9.0.0/24',
      'malformed: malformed holds 10.8.1.1/24',
      'shape: mismatch has podCIDR 10.8.2.0/24 but podCIDRs ["10.8.3.0/24"]',
      'shape: twice-v4 has two podCIDRs of one family',
    ]);
  });

  it("reports a node whose subnet is not its pool's size, and accepts the fallback's size", () => {
    const sizes = new Map([
      ['a', [24, 25]],
      ['b', [26, 25]],
    ]);
    const node = (name: string, pool: string, cidr: string): NodeCidrs => ({ name, pool, podCIDR: cidr, podCIDRs: [cidr] });
    const result = checkNodes(
      [
        node('a-fits', 'a', '10.8.0.0/24'),
        node('a-fallback', 'a', '10.8.1.0/25'),
        node('b-fits', 'b', '10.8.2.0/26'),
        node('b-as-a', 'b', '10.8.3.0/24'),
        node('a-as-b', 'a', '10.8.4.64/26'),
        node('unknown', 'c', '10.8.5.0/24'),
      ],
      CLUSTER,
      sizes,
    );
    expect(result.violations).toEqual([
      'size: b-as-a of pool "b" holds 10.8.3.0/24, not /26 or /25',
      'size: a-as-b of pool "a" holds 10.8.4.64/26, not /24 or /25',
      'size: unknown has pool label "c" that no pool size is known for',
    ]);
  });
});
