// The handoff: what a term held taken plus what its cache shows, its round trip through the ConfigMap,
// and the checks that keep a damaged or foreign one from being used.

import { describe, expect, it } from 'vitest';
import { ClusterAllocator } from '../../../src/allocator/cluster-allocator.js';
import type { RangeSpec } from '../../../src/allocator/types.js';
import { ConfigMapConflictError } from '../../../src/controller/ports.js';
import {
  HANDOFF_KEY,
  HANDOFF_NAME,
  MAX_HANDOFF_BYTES,
  decodeHandoff,
  encodeHandoff,
  handoffRanges,
  readHandoff,
  takeHandoff,
  writeHandoff,
  type Handoff,
} from '../../../src/term/handoff.js';
import { node } from '../controller/fake-node-source.js';
import { MemoryConfigMaps } from '../controller/memory-config-maps.js';
import { memoryLogger } from '../controller/reconciler-fakes.js';
import { parseRange } from '../../../src/allocator/range-spec.js';
import { cidrs } from '../../support/cidrs.js';

const ranges: RangeSpec[] = [parseRange('10.0.0.0/16', 24)];

describe('takeHandoff', () => {
  it('holds what the allocator took and what cached nodes carry that it has not occupied yet', () => {
    const allocator = new ClusterAllocator({ ranges, reserved: cidrs('10.0.255.0/24'), quarantineMs: 60_000 });
    allocator.allocate(); // 10.0.0.0/24, its patch still out
    allocator.occupy('10.0.1.0/24');
    allocator.release('10.0.1.0/24'); // quarantined
    const nodes = [
      node('queued', '7', { podCIDRs: ['10.0.5.0/24'] }),
      node('larger', '8', { podCIDRs: ['10.0.8.0/23'] }),
      node('host-bits', '9', { podCIDRs: ['10.0.20.1/24'] }),
      node('outside', '9', { podCIDRs: ['192.168.0.0/24'] }),
      node('junk', '9', { podCIDRs: ['not-a-cidr'] }),
    ];
    const handoff = takeHandoff(allocator, nodes, '42');
    expect(handoff).toEqual({
      resourceVersion: '42',
      ranges: [{ clusterCIDR: '10.0.0.0/16', nodeMask: 24, runs: [0, 1, 5, 5, 8, 9, 20, 20, 255, 255] }],
    });
    // The term's own allocator is left as it was.
    expect(allocator.usage()[0]).toMatchObject({ used: 3, quarantined: 1 });
  });
});

describe('the handoff text', () => {
  const handoff: Handoff = { resourceVersion: '1234', ranges: [{ clusterCIDR: '10.0.0.0/16', nodeMask: 24, runs: [0, 9] }] };

  it('reads back what was written', () => {
    expect(decodeHandoff(encodeHandoff(handoff))).toEqual(handoff);
  });

  it.each([
    ['nothing', undefined],
    ['not JSON', '{'],
    ['another version', JSON.stringify({ version: 2, resourceVersion: '1', ranges: handoff.ranges })],
    ['no resourceVersion', JSON.stringify({ version: 1, resourceVersion: '', ranges: handoff.ranges })],
    ['no ranges', JSON.stringify({ version: 1, resourceVersion: '1', ranges: [] })],
    ['a range without runs', JSON.stringify({ version: 1, resourceVersion: '1', ranges: [parseRange('10.0.0.0/16', 24)] })],
    ['a fractional run', JSON.stringify({ version: 1, resourceVersion: '1', ranges: [{ clusterCIDR: '10.0.0.0/16', nodeMask: 24, runs: [0.5, 1] }] })],
    ['a string mask', JSON.stringify({ version: 1, resourceVersion: '1', ranges: [{ clusterCIDR: '10.0.0.0/16', nodeMask: '24', runs: [] }] })],
  ])('is refused when it is %s', (_, text) => {
    expect(decodeHandoff(text)).toBeUndefined();
  });
});

describe('handoffRanges', () => {
  const taken = (clusterCIDR: string, nodeMask: number) => ({ clusterCIDR, nodeMask, runs: [] });

  it('gives the handoff ranges, appended ones included, when they start with the flag ranges', () => {
    const handoff = { resourceVersion: '1', ranges: [taken('10.0.0.0/16', 24), taken('10.1.0.0/16', 24)] };
    expect(handoffRanges(handoff, ranges)).toEqual([
      parseRange('10.0.0.0/16', 24),
      parseRange('10.1.0.0/16', 24),
    ]);
  });

  it.each([
    ['another mask', [taken('10.0.0.0/16', 25)]],
    ['another range', [taken('10.2.0.0/16', 24)]],
    ['another order', [taken('fd00::/48', 64), taken('10.0.0.0/16', 24)]],
  ])('refuses a handoff with %s', (_, handoffRangesList) => {
    expect(handoffRanges({ resourceVersion: '1', ranges: handoffRangesList }, ranges)).toBeUndefined();
  });

  it('refuses a handoff that lacks a flag range', () => {
    const flags = [...ranges, parseRange('fd00::/48', 64)];
    expect(handoffRanges({ resourceVersion: '1', ranges: [taken('10.0.0.0/16', 24)] }, flags)).toBeUndefined();
  });
});

describe('the handoff ConfigMap', () => {
  const handoff: Handoff = { resourceVersion: '77', ranges: [{ clusterCIDR: '10.0.0.0/16', nodeMask: 24, runs: [0, 3] }] };

  it('is created, replaced and read back', async () => {
    const store = new MemoryConfigMaps();
    const { logger } = memoryLogger();
    expect(await readHandoff(store, logger)).toBeUndefined();
    expect(await writeHandoff(store, handoff, logger)).toBe(true);
    const newer = { ...handoff, resourceVersion: '78' };
    expect(await writeHandoff(store, newer, logger)).toBe(true);
    expect(await readHandoff(store, logger)).toEqual(newer);
    expect(store.writes).toBe(2);
  });

  it('tries once more when another replica wrote between the read and the write', async () => {
    const store = new MemoryConfigMaps();
    const { logger } = memoryLogger();
    store.set(HANDOFF_NAME, {});
    const write = store.write.bind(store);
    let raced = false;
    store.write = (name, data, rv) => {
      if (!raced) {
        raced = true;
        store.set(HANDOFF_NAME, {});
        return Promise.reject(new ConfigMapConflictError(name));
      }
      return write(name, data, rv);
    };
    expect(await writeHandoff(store, handoff, logger)).toBe(true);
    expect(await readHandoff(store, logger)).toEqual(handoff);
  });

  it('is not written when it would not fit a ConfigMap, and says so', async () => {
    const store = new MemoryConfigMaps();
    const { logger, lines } = memoryLogger();
    const runs = Array.from({ length: MAX_HANDOFF_BYTES / 4 }, (_, i) => 2 * i);
    const huge = { resourceVersion: '1', ranges: [{ clusterCIDR: '10.0.0.0/8', nodeMask: 30, runs }] };
    expect(await writeHandoff(store, huge, logger)).toBe(false);
    expect(store.writes).toBe(0);
    expect(lines.some((l) => l.msg.includes('too large'))).toBe(true);
  });

  it('reads as none, with a warning, when damaged, and as none when the read fails', async () => {
    const store = new MemoryConfigMaps();
    const { logger, lines } = memoryLogger();
    store.set(HANDOFF_NAME, { [HANDOFF_KEY]: '{"version":1}' });
    expect(await readHandoff(store, logger)).toBeUndefined();
    expect(lines.some((l) => l.msg.includes('damaged'))).toBe(true);
    store.read = () => Promise.reject(new Error('connection refused'));
    expect(await readHandoff(store, logger)).toBeUndefined();
  });

  it('gives up when its signal ends a write still waiting', async () => {
    const store = new MemoryConfigMaps();
    const { logger } = memoryLogger();
    store.write = (_name, _data, _rv, signal) =>
      new Promise<string>((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));
    expect(await writeHandoff(store, handoff, logger, AbortSignal.timeout(20))).toBe(false);
  });

  it('gives up without throwing when the write keeps failing', async () => {
    const store = new MemoryConfigMaps();
    const { logger, lines } = memoryLogger();
    store.write = () => Promise.reject(new Error('forbidden'));
    expect(await writeHandoff(store, handoff, logger)).toBe(false);
    expect(lines.some((l) => l.msg.includes('could not write'))).toBe(true);
  });
});
