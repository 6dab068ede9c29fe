// What the controller takes a malformed podCIDR for: the network kubelet reads in it, held for its node.
// The API server accepts host bits and leading zeros; handing that network to another node would overlap them.
import { describe, expect, it } from 'vitest';
import { ClusterAllocator } from '../../../src/allocator/cluster-allocator.js';
import { formatCidr } from '../../../src/cidr/index.js';
import { claimPodCIDR, readLeniently } from '../../../src/controller/claim.js';
import { ClaimIndex } from '../../../src/controller/ownership.js';
import { parseRange } from '../../../src/allocator/range-spec.js';

describe('readLeniently', () => {
  it.each([
    ['10.0.1.7/24', '10.0.1.0/24'],
    ['010.000.001.000/24', '10.0.1.0/24'],
    ['10.0.1.0/024', '10.0.1.0/24'],
    ['10.0.1.0/24', '10.0.1.0/24'],
    ['fd00::1/64', 'fd00::/64'],
    ['FD00:0:0:1::/64', 'fd00:0:0:1::/64'],
    ['fd00:0:0:1::/64', 'fd00:0:0:1::/64'],
  ])('reads %s as the network %s', (text, network) => {
    const cidr = readLeniently(text);
    expect(cidr && formatCidr(cidr)).toBe(network);
  });

  it.each(['not-a-cidr', '10.0.1.0', '10.0.1.0/33', '10.0.1.256/24', 'fd00::/129', '', '10.0.1.0/-1'])(
    'reads nothing in %j',
    (text) => {
      expect(readLeniently(text)).toBeUndefined();
    },
  );
});

describe('claimPodCIDR with a malformed podCIDR', () => {
  const node = { name: 'n1', uid: 'u1' };

  it('reports host bits as malformed and holds the network kubelet reads', () => {
    const allocator = new ClusterAllocator({ ranges: [parseRange('10.0.0.0/22', 24)], reserved: [] });
    const index = new ClaimIndex();

    const outcome = claimPodCIDR(index, allocator, node, '10.0.0.9/24');

    expect(outcome.kind).toBe('malformed');
    expect('claim' in outcome && outcome.claim?.text).toBe('10.0.0.0/24');
    expect(allocator.allocate()).toEqual(['10.0.1.0/24']);
  });

  it('holds nothing for text no reader takes for a CIDR, or a network outside every range', () => {
    const allocator = new ClusterAllocator({ ranges: [parseRange('10.0.0.0/23', 24)], reserved: [] });
    const index = new ClaimIndex();

    const garbage = claimPodCIDR(index, allocator, node, '10.0.0.300/24');
    const outside = claimPodCIDR(index, allocator, node, '192.168.0.1/24');

    expect([garbage.kind, outside.kind]).toEqual(['malformed', 'malformed']);
    expect('claim' in garbage || 'claim' in outside).toBe(false);
    expect(allocator.allocate()).toEqual(['10.0.0.0/24']);
  });
});
