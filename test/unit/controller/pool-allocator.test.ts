// PoolAllocator: a node's pool by its labels in node-ipam-controller's order, the next pool when one
// is full, the flags' pool last, pools being deleted skipped, and why a node waits when none can serve it.

import { describe, expect, it } from 'vitest';
import { NoPoolError } from '../../../src/allocator/errors.js';
import { parseRange } from '../../../src/allocator/range-spec.js';
import { parseCidr } from '../../../src/cidr/index.js';
import { FLAG_POOL, PoolAllocator, type PoolDefinition } from '../../../src/controller/pool-allocator.js';

const labelled = (key: string): PoolDefinition['nodeSelector'] => ({
  nodeSelectorTerms: [{ matchExpressions: [{ key, operator: 'Exists' }] }],
});

const gpu: PoolDefinition = { name: 'gpu', ipv4: parseCidr('10.1.0.0/24'), perNodeHostBits: 6, nodeSelector: labelled('gpu') };
const any: PoolDefinition = { name: 'any', ipv4: parseCidr('10.2.0.0/24'), perNodeHostBits: 7 };

const node = (labels: Record<string, string> = {}) => ({ name: 'n', labels });

describe('PoolAllocator', () => {
  it('serves a node from the most specific pool that matches, then the next once that is full', () => {
    const pools = new PoolAllocator({ flagRanges: [], pools: [any, gpu] });
    const got = [1, 2, 3, 4, 5].map(() => pools.allocate(node({ gpu: '' })));
    expect(got.slice(0, 4).flat()).toEqual(['10.1.0.0/26', '10.1.0.64/26', '10.1.0.128/26', '10.1.0.192/26']);
    expect(got[4]).toEqual(['10.2.0.0/25']);
    expect(pools.allocate(node())).toEqual(['10.2.0.128/25']);
  });

  it('serves from the flags last, after every ClusterCIDR that matches', () => {
    const pools = new PoolAllocator({ flagRanges: [parseRange('10.9.0.0/24', 25)], pools: [gpu] });
    expect(pools.allocate(node({ gpu: '' }))).toEqual(['10.1.0.0/26']);
    expect(pools.allocate(node())).toEqual(['10.9.0.0/25']);
    expect(pools.families).toEqual(['IPv4']);
    expect(pools.flagPool()?.ranges().map((r) => String(r.clusterCIDR))).toEqual(['10.9.0.0/24']);
  });

  it('says why a node waits: no pool matches, or every one that matches is full', () => {
    const pools = new PoolAllocator({ flagRanges: [], pools: [gpu] });
    expect(() => pools.allocate(node())).toThrow(new NoPoolError('n', 'no ClusterCIDR matches its labels'));
    for (let i = 0; i < 4; i++) pools.allocate(node({ gpu: '' }));
    expect(() => pools.allocate(node({ gpu: '' }))).toThrow(/every pool that matches is full \(gpu\)/);
    expect(() => new PoolAllocator({ flagRanges: [] }).allocate(node())).toThrow(/\(there are none\)/);
  });

  it('hands out nothing new from a pool being deleted, and keeps what it holds marked', () => {
    const shared: PoolDefinition = { name: 'shared', ipv4: parseCidr('10.1.0.0/24'), perNodeHostBits: 7 };
    const pools = new PoolAllocator({ flagRanges: [], pools: [gpu, shared] });
    expect(pools.allocate(node({ gpu: '' }))).toEqual(['10.1.0.0/26']);
    pools.setDeleting('gpu');
    // The gpu node now goes to the next pool, whose first /25 holds the /26 gpu handed out.
    expect(pools.allocate(node({ gpu: '' }))).toEqual(['10.1.0.128/25']);
    expect(pools.removePool('gpu')).toBe(true);
    expect(() => pools.allocate(node())).toThrow(NoPoolError);
  });

  it('adds a pool once, and refuses nothing it already serves', () => {
    const pools = new PoolAllocator({ flagRanges: [] });
    expect(pools.addPool(any)).toBe(true);
    expect(pools.addPool(any)).toBe(false);
    expect(pools.pools().map((p) => p.name)).toEqual(['any']);
    expect(pools.usage().map((u) => u.pool)).toEqual(['any']);
    expect(FLAG_POOL).not.toMatch(/^[a-z0-9]/);
  });
});
