import type { V1Node } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { podCIDRManager, timestampString, toNodeInfo } from '../../../src/kube/node-info.js';

/** What a watch event carries: plain JSON with string timestamps. */
const watchJson = {
  metadata: {
    name: 'node-a',
    uid: 'uid-a',
    resourceVersion: '42',
    deletionTimestamp: '2024-05-01T10:00:00Z',
    labels: { 'kubernetes.io/os': 'linux', pool: 'gpu' },
    managedFields: [
      { manager: 'kubelet', operation: 'Update', fieldsV1: { 'f:metadata': { 'f:labels': {} } } },
      { manager: 'kubelet', operation: 'Update', subresource: 'status', fieldsV1: { 'f:status': {} } },
      {
        manager: 'kube-controller-manager',
        operation: 'Update',
        fieldsV1: { 'f:spec': { 'f:podCIDR': {}, 'f:podCIDRs': { '.': {}, 'v:"10.0.1.0/24"': {} } } },
      },
    ],
  },
  spec: { podCIDR: '10.0.1.0/24', podCIDRs: ['10.0.1.0/24', 'fd00::/64'] },
  status: { images: [{ names: ['registry/big:1'], sizeBytes: 1 }] },
} as unknown as V1Node;

describe('toNodeInfo', () => {
  it('keeps only name, uid, resourceVersion, podCIDRs, deletionTimestamp, the podCIDR owner and labels: no status', () => {
    expect(toNodeInfo(watchJson)).toEqual({
      name: 'node-a',
      uid: 'uid-a',
      resourceVersion: '42',
      podCIDRs: ['10.0.1.0/24', 'fd00::/64'],
      deletionTimestamp: '2024-05-01T10:00:00Z',
      podCIDRManager: 'kube-controller-manager',
      // Its pool was chosen when it had no podCIDRs; allocations never move, so labels are not kept.
      labels: {},
    });
  });

  it('keeps the labels of a node without podCIDRs, which choose its pool', () => {
    const waiting = { ...watchJson, spec: {} } as V1Node;
    expect(toNodeInfo(waiting).labels).toEqual({ 'kubernetes.io/os': 'linux', pool: 'gpu' });
  });

  it('gives the same deletionTimestamp for a listed Node (Date) as for a watched one (string)', () => {
    const listed = {
      ...watchJson,
      metadata: { ...watchJson.metadata, deletionTimestamp: new Date('2024-05-01T10:00:00Z') },
    } as V1Node;
    expect(toNodeInfo(listed).deletionTimestamp).toBe(toNodeInfo(watchJson).deletionTimestamp);
  });

  it('falls back to [podCIDR] when only the singular field is set', () => {
    expect(toNodeInfo({ metadata: { name: 'n' }, spec: { podCIDR: '10.0.0.0/24' } }).podCIDRs).toEqual([
      '10.0.0.0/24',
    ]);
  });

  it('gives an empty list and no owner for a bare Node', () => {
    const info = toNodeInfo({ metadata: { name: 'n' } });
    expect(info).toEqual({ name: 'n', uid: '', resourceVersion: '', podCIDRs: [], labels: {} });
    expect(info.deletionTimestamp).toBeUndefined();
  });

  it('shares no objects with its input', () => {
    const info = toNodeInfo(watchJson);
    expect(info.podCIDRs).not.toBe(watchJson.spec?.podCIDRs);
    expect(info.labels).not.toBe(watchJson.metadata?.labels);
  });
});

describe('podCIDRManager', () => {
  it('prefers the owner of podCIDRs over the owner of the singular field', () => {
    expect(
      podCIDRManager([
        { manager: 'old', fieldsV1: { 'f:spec': { 'f:podCIDR': {} } } },
        { manager: 'podcidr-allocator', fieldsV1: { 'f:spec': { 'f:podCIDRs': {} } } },
      ]),
    ).toBe('podcidr-allocator');
  });

  it('returns the owner of the singular field when nobody owns podCIDRs', () => {
    expect(podCIDRManager([{ manager: 'old', fieldsV1: { 'f:spec': { 'f:podCIDR': {} } } }])).toBe('old');
  });

  it('ignores status entries and entries without spec fields', () => {
    expect(
      podCIDRManager([
        { manager: 'kubelet', subresource: 'status', fieldsV1: { 'f:spec': { 'f:podCIDRs': {} } } },
        { manager: 'kubectl', fieldsV1: { 'f:metadata': {} } },
        { manager: 'weird', fieldsV1: 'not an object' },
      ]),
    ).toBeUndefined();
    expect(podCIDRManager(undefined)).toBeUndefined();
  });
});

describe('timestampString', () => {
  it.each([
    [new Date('2024-01-02T03:04:05Z'), '2024-01-02T03:04:05Z'],
    [new Date('2024-01-02T03:04:05.250Z'), '2024-01-02T03:04:05.250Z'],
    ['2024-01-02T03:04:05Z', '2024-01-02T03:04:05Z'],
    [new Date('garbage'), undefined],
    [undefined, undefined],
    [null, undefined],
  ])('renders %s as %s', (input, expected) => {
    expect(timestampString(input)).toBe(expected);
  });
});
