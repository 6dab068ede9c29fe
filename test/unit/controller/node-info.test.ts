import { describe, expect, it } from 'vitest';
import { nodeInfoChanged } from '../../../src/controller/node-info.js';
import type { NodeInfo } from '../../../src/controller/ports.js';

describe('nodeInfoChanged', () => {
  const base: NodeInfo = {
    name: 'n',
    uid: 'u',
    resourceVersion: '1',
    podCIDRs: ['10.0.0.0/24'],
    labels: { zone: 'a', role: 'worker' },
  };

  it('ignores a change of resourceVersion alone, and of label order', () => {
    expect(nodeInfoChanged(base, { ...base, resourceVersion: '2' })).toBe(false);
    expect(nodeInfoChanged(base, { ...base, labels: { role: 'worker', zone: 'a' } })).toBe(false);
  });

  it.each<[string, Partial<NodeInfo>]>([
    ['podCIDRs', { podCIDRs: [] }],
    ['podCIDRs order', { podCIDRs: ['10.0.0.0/24', 'fd00::/64'] }],
    ['a deletionTimestamp', { deletionTimestamp: '2024-01-01T00:00:00Z' }],
    ['the podCIDR owner', { podCIDRManager: 'x' }],
    ['the uid', { uid: 'v' }],
    ['a label value', { labels: { zone: 'b', role: 'worker' } }],
    ['a label added', { labels: { zone: 'a', role: 'worker', gpu: '' } }],
    ['a label removed', { labels: { zone: 'a' } }],
    ['a label renamed', { labels: { zone: 'a', kind: 'worker' } }],
  ])('notices a change of %s', (_what, change) => {
    expect(nodeInfoChanged(base, { ...base, ...change })).toBe(true);
  });
});
