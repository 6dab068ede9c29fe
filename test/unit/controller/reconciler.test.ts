import { describe, expect, it } from 'vitest';
import { RangeExhaustedError } from '../../../src/allocator/errors.js';
import { PatchPendingError } from '../../../src/controller/reconciler.js';
import { PatchError } from '../../../src/controller/ports.js';
import { harness, used } from './reconciler-fakes.js';
import { parseRange } from '../../../src/allocator/range-spec.js';

const DUAL = [
  parseRange('10.0.0.0/22', 24),
  parseRange('fd00::/62', 64),
];

describe('rebuild', () => {
  it('occupies existing podCIDRs so that nothing is handed out twice', async () => {
    const h = harness();
    h.cluster.add('a', { podCIDRs: ['10.0.0.0/24'] });
    h.cluster.add('b', { podCIDRs: ['10.0.2.0/24'] });
    h.cluster.add('c');

    const summary = h.reconciler.rebuild(h.cluster.list());
    await h.reconciler.sync('a');
    await h.reconciler.sync('b');
    await h.reconciler.sync('c');

    expect(summary).toEqual({ nodes: 3, occupied: 2, conflicts: { malformed: 0, 'out-of-range': 0, duplicate: 0, overlap: 0 } });
    expect(h.cluster.patches).toEqual([{ name: 'c', podCIDRs: ['10.0.1.0/24'] }]);
    expect(h.reconciler.ownerOf('10.0.0.0/24')).toBe('a');
    expect(h.reconciler.ownerOf('10.0.1.0/24')).toBe('c');
    expect(h.events.events).toEqual([]);
  });

  it('reports bad podCIDRs as Warning events and metrics, without throwing, and still allocates to others', async () => {
    const h = harness({ ranges: [parseRange('10.0.0.0/21', 24)] });
    h.cluster.add('good', { podCIDRs: ['10.0.0.0/24'] });
    h.cluster.add('malformed', { podCIDRs: ['10.0.1.300/24'] });
    h.cluster.add('hostbits', { podCIDRs: ['10.0.1.1/24'] });
    h.cluster.add('outside', { podCIDRs: ['192.168.0.0/24'] });
    h.cluster.add('same', { podCIDRs: ['10.0.0.0/24'] });
    h.cluster.add('wide', { podCIDRs: ['10.0.2.0/23'] });
    h.cluster.add('zinner', { podCIDRs: ['10.0.3.0/24'] });
    h.cluster.add('fresh');

    const summary = h.reconciler.rebuild(h.cluster.list());

    expect(summary.conflicts).toEqual({ malformed: 2, 'out-of-range': 1, duplicate: 1, overlap: 1 });
    expect(h.observer.conflicts.sort()).toEqual(['duplicate', 'malformed', 'malformed', 'out-of-range', 'overlap']);
    expect(h.events.events.map((e) => [e.node, e.type, e.reason])).toEqual(
      expect.arrayContaining([
        ['malformed', 'Warning', 'PodCIDRMalformed'],
        ['hostbits', 'Warning', 'PodCIDRMalformed'],
        ['outside', 'Warning', 'PodCIDROutOfRange'],
        ['same', 'Warning', 'PodCIDRConflict'],
        ['zinner', 'Warning', 'PodCIDRConflict'],
      ]),
    );
    expect(h.events.events).toHaveLength(5);
    const warn = h.lines.find((l) => l.level === 40 && l['node'] === 'zinner');
    expect(warn).toMatchObject({ cidr: '10.0.3.0/24', problem: 'overlap' });

    await h.reconciler.sync('fresh');
    // 10.0.0, 10.0.2 and 10.0.3 are held, and 10.0.1.0 as kubelet reads 10.0.1.1/24; 10.0.4.0 is next.
    expect(h.cluster.patches).toEqual([{ name: 'fresh', podCIDRs: ['10.0.4.0/24'] }]);
  });

  it('lets the first holder by name keep a duplicate whatever order the list comes in', () => {
    const h = harness();
    h.cluster.add('zeta', { podCIDRs: ['10.0.1.0/24'] });
    h.cluster.add('alpha', { podCIDRs: ['10.0.1.0/24'] });

    h.reconciler.rebuild(h.cluster.list());

    expect(h.reconciler.ownerOf('10.0.1.0/24')).toBe('alpha');
    expect(h.events.events).toEqual([expect.objectContaining({ node: 'zeta', reason: 'PodCIDRConflict' })]);
    expect(h.events.events[0]?.note).toContain('alpha');
  });

  it('lets the node our field manager patched keep a duplicate', () => {
    const h = harness({ fieldManager: 'podcidr-allocator' });
    h.cluster.add('alpha', { podCIDRs: ['10.0.1.0/24'], podCIDRManager: 'kubectl' });
    h.cluster.add('zeta', { podCIDRs: ['10.0.1.0/24'], podCIDRManager: 'podcidr-allocator' });

    h.reconciler.rebuild(h.cluster.list());

    expect(h.reconciler.ownerOf('10.0.1.0/24')).toBe('zeta');
    expect(h.events.reasons('alpha')).toEqual(['PodCIDRConflict']);
  });

  it('catches a /23 on one node covering the /24 of another, in either order', () => {
    for (const [first, second] of [
      ['10.0.0.0/23', '10.0.1.0/24'],
      ['10.0.1.0/24', '10.0.0.0/23'],
    ] as const) {
      const h = harness();
      h.cluster.add('a', { podCIDRs: [first] });
      h.cluster.add('b', { podCIDRs: [second] });
      const summary = h.reconciler.rebuild(h.cluster.list());
      expect(summary.conflicts.overlap).toBe(1);
      expect(h.events.reasons('b')).toEqual(['PodCIDRConflict']);
      expect(h.events.reasons('a')).toEqual([]);
    }
  });

  it('hands back, on a new term, what no listed node holds any more', () => {
    const h = harness();
    h.cluster.add('a', { podCIDRs: ['10.0.0.0/24'] });
    h.cluster.add('b', { podCIDRs: ['10.0.1.0/24'] });
    h.reconciler.rebuild(h.cluster.list());
    h.cluster.remove('b');

    h.reconciler.rebuild(h.cluster.list());

    expect(h.allocator.isAllocated('10.0.0.0/24')).toBe(true);
    expect(h.allocator.isAllocated('10.0.1.0/24')).toBe(false);
    expect(used(h.allocator)).toBe(1);
  });
});

describe('sync of nodes that carry podCIDRs', () => {
  it('refuses to allocate before the existing podCIDRs were rebuilt', async () => {
    const h = harness();
    h.cluster.add('a');

    await expect(h.reconciler.sync('a')).rejects.toThrow(/before rebuild/);
    expect(h.cluster.patches).toEqual([]);
  });

  it('reports a conflict once per node and CIDR, not on every resync', async () => {
    const h = harness();
    h.cluster.add('a', { podCIDRs: ['10.0.1.0/24'] });
    h.reconciler.rebuild(h.cluster.list());
    h.cluster.add('b', { podCIDRs: ['10.0.1.0/24'] });

    await h.reconciler.sync('b');
    await h.reconciler.sync('b');
    await h.reconciler.sync('b');

    expect(h.events.reasons('b')).toEqual(['PodCIDRConflict']);
    expect(h.observer.conflicts).toEqual(['duplicate']);
    expect(h.reconciler.ownerOf('10.0.1.0/24')).toBe('a');
  });

  it('occupies podCIDRs that someone else set at runtime', async () => {
    const h = harness();
    h.reconciler.rebuild([]);
    h.cluster.add('manual', { podCIDRs: ['10.0.0.0/24'] });
    h.cluster.add('new');

    await h.reconciler.sync('manual');
    await h.reconciler.sync('new');

    expect(h.cluster.patches).toEqual([{ name: 'new', podCIDRs: ['10.0.1.0/24'] }]);
  });
});

describe('allocation', () => {
  it('patches one CIDR per family, in family order, for a dual-stack cluster', async () => {
    const h = harness({ ranges: DUAL });
    h.cluster.add('a');
    h.reconciler.rebuild(h.cluster.list());

    await h.reconciler.sync('a');

    expect(h.cluster.patches).toEqual([{ name: 'a', podCIDRs: ['10.0.0.0/24', 'fd00::/64'] }]);
    expect(h.cluster.get('a')?.podCIDRs).toEqual(['10.0.0.0/24', 'fd00::/64']);
    expect(h.reconciler.ownerOf('fd00::/64')).toBe('a');
    expect(h.observer.allocations).toBe(1);
  });

  it('says a node is assigned from the patch going out until the node is gone', async () => {
    const h = harness();
    const a = h.cluster.add('a');
    const b = h.cluster.add('b');
    h.reconciler.rebuild(h.cluster.list());
    expect(h.reconciler.assigned(a)).toBe(false);
    const seen: boolean[] = [];
    h.cluster.scripts.push({ during: () => void seen.push(h.reconciler.assigned(a)) });

    await h.reconciler.sync('a');

    expect(seen).toEqual([true]);
    expect(h.reconciler.assigned(a)).toBe(true);
    expect(h.reconciler.assigned({ name: 'a', uid: 'a-recreated' })).toBe(false);
    expect(h.reconciler.assigned(b)).toBe(false);
    h.reconciler.nodeDeleted(h.cluster.remove('a') ?? a);
    expect(h.reconciler.assigned(a)).toBe(false);
  });

  it('keeps going when a metrics hook throws', async () => {
    const h = harness();
    h.cluster.add('a');
    h.reconciler.rebuild(h.cluster.list());
    h.observer.allocated = () => {
      throw new Error('metrics broke');
    };

    await h.reconciler.sync('a');

    expect(h.reconciler.ownerOf('10.0.0.0/24')).toBe('a');
  });

  it('does nothing for a node that is no longer in the lister', async () => {
    const h = harness();
    h.reconciler.rebuild([]);

    await h.reconciler.sync('ghost');

    expect(h.cluster.patches).toEqual([]);
    expect(used(h.allocator)).toBe(0);
  });

  it('adopts the CIDRs someone else set first and releases its own on conflict', async () => {
    const h = harness();
    h.cluster.add('a');
    h.reconciler.rebuild(h.cluster.list());
    h.cluster.scripts.push({ during: () => h.cluster.setPodCIDRs('a', ['10.0.3.0/24']) });

    await h.reconciler.sync('a');

    expect(h.observer.failures).toEqual(['conflict']);
    expect(h.reconciler.ownerOf('10.0.3.0/24')).toBe('a');
    expect(h.allocator.isAllocated('10.0.0.0/24')).toBe(false);
    expect(used(h.allocator)).toBe(1);
  });

  it('keeps the CIDRs of a timed-out patch reserved and retries with the same ones', async () => {
    const h = harness();
    h.cluster.add('a');
    h.cluster.add('b');
    h.reconciler.rebuild(h.cluster.list());
    h.cluster.scripts.push({ fail: 'timeout', landed: false });

    await expect(h.reconciler.sync('a')).rejects.toBeInstanceOf(PatchPendingError);
    expect(h.reconciler.pendingReservations()).toEqual(new Map([['a', ['10.0.0.0/24']]]));
    await h.reconciler.sync('b');
    await h.reconciler.sync('a');

    expect(h.cluster.patches).toEqual([
      { name: 'a', podCIDRs: ['10.0.0.0/24'] },
      { name: 'b', podCIDRs: ['10.0.1.0/24'] },
      { name: 'a', podCIDRs: ['10.0.0.0/24'] },
    ]);
    expect(h.reconciler.ownerOf('10.0.0.0/24')).toBe('a');
    expect(h.reconciler.pendingReservations().size).toBe(0);
  });

  it('owns the CIDRs of a timed-out patch that did land, found by re-reading the node', async () => {
    const h = harness();
    h.cluster.add('a');
    h.reconciler.rebuild(h.cluster.list());
    h.cluster.scripts.push({ fail: 'timeout', landed: true });

    await h.reconciler.sync('a');

    expect(h.cluster.patches).toHaveLength(1);
    expect(h.reconciler.ownerOf('10.0.0.0/24')).toBe('a');
    expect(h.observer.allocations).toBe(1);
  });

  it('keeps the reservation when the node cannot be re-read after a timeout', async () => {
    const h = harness();
    h.cluster.add('a');
    h.reconciler.rebuild(h.cluster.list());
    h.cluster.scripts.push({ fail: 'timeout', landed: true });
    h.cluster.getNodeFails = true;

    await expect(h.reconciler.sync('a')).rejects.toBeInstanceOf(PatchPendingError);
    h.cluster.getNodeFails = false;
    await h.reconciler.sync('a');

    // The cache now shows the write that had landed: adopted without another patch.
    expect(h.cluster.patches).toHaveLength(1);
    expect(h.reconciler.ownerOf('10.0.0.0/24')).toBe('a');
    expect(used(h.allocator)).toBe(1);
  });

  it('does not release after a timeout even when a later retry fails', async () => {
    const h = harness();
    h.cluster.add('a');
    h.reconciler.rebuild(h.cluster.list());
    h.cluster.scripts.push({ fail: 'timeout', landed: false }, { fail: 'failed' });

    await expect(h.reconciler.sync('a')).rejects.toThrow(PatchPendingError);
    await expect(h.reconciler.sync('a')).rejects.toThrow(PatchError);

    expect(h.reconciler.pendingReservations().get('a')).toEqual(['10.0.0.0/24']);
    expect(h.allocator.isAllocated('10.0.0.0/24')).toBe(true);
  });

  it('releases, records CIDRAssignmentFailed and throws when the patch fails', async () => {
    const h = harness();
    h.cluster.add('a');
    h.reconciler.rebuild(h.cluster.list());
    h.cluster.scripts.push({ fail: 'failed' });

    await expect(h.reconciler.sync('a')).rejects.toThrow(PatchError);

    expect(h.events.events).toEqual([expect.objectContaining({ node: 'a', type: 'Warning', reason: 'CIDRAssignmentFailed' })]);
    expect(used(h.allocator)).toBe(0);
    expect(h.reconciler.pendingReservations().size).toBe(0);
    expect(h.observer.failures).toEqual(['failed']);
  });

  it('releases when the node is gone by the time the patch arrives', async () => {
    const h = harness();
    h.cluster.add('a');
    h.reconciler.rebuild(h.cluster.list());
    h.cluster.scripts.push({ fail: 'not-found' });

    await h.reconciler.sync('a');

    expect(used(h.allocator)).toBe(0);
    expect(h.events.events).toEqual([]);
  });

  it('owns nothing when the node is deleted while its patch is on the wire', async () => {
    const h = harness();
    h.cluster.add('a');
    h.reconciler.rebuild(h.cluster.list());
    h.cluster.scripts.push({
      during: () => {
        const gone = h.cluster.remove('a');
        if (gone) h.reconciler.nodeDeleted(gone);
      },
    });

    await expect(h.reconciler.sync('a')).resolves.toBeUndefined();

    expect(used(h.allocator)).toBe(0);
    expect(h.reconciler.ownerOf('10.0.0.0/24')).toBeUndefined();
  });
});

describe('exhaustion', () => {
  it('records CIDRNotAvailable once, then allocates after a delete frees space', async () => {
    const h = harness({ ranges: [parseRange('10.0.0.0/23', 24)] });
    h.cluster.add('a', { podCIDRs: ['10.0.0.0/24'] });
    h.cluster.add('b', { podCIDRs: ['10.0.1.0/24'] });
    h.cluster.add('c');
    h.reconciler.rebuild(h.cluster.list());

    await expect(h.reconciler.sync('c')).rejects.toBeInstanceOf(RangeExhaustedError);
    await expect(h.reconciler.sync('c')).rejects.toBeInstanceOf(RangeExhaustedError);
    expect(h.events.events).toEqual([expect.objectContaining({ node: 'c', type: 'Warning', reason: 'CIDRNotAvailable' })]);
    expect(h.events.events[0]?.note).toMatch(/^Node c status is now: CIDRNotAvailable/);
    expect(h.reconciler.waitingNodes()).toEqual(['c']);
    expect(h.observer.waitingNodes).toBe(1);

    const gone = h.cluster.remove('a');
    if (gone) h.reconciler.nodeDeleted(gone);
    expect(h.requeued).toEqual([{ name: 'c', afterMs: undefined }]);
    await h.reconciler.sync('c');

    expect(h.cluster.get('c')?.podCIDRs).toEqual(['10.0.0.0/24']);
    expect(h.reconciler.waitingNodes()).toEqual([]);
    expect(h.observer.waitingNodes).toBe(0);
  });

  it('requeues waiting nodes for the end of the release quarantine', async () => {
    const h = harness({ ranges: [parseRange('10.0.0.0/24', 24)], quarantineMs: 60_000 });
    h.cluster.add('a', { podCIDRs: ['10.0.0.0/24'] });
    h.cluster.add('b');
    h.reconciler.rebuild(h.cluster.list());
    await expect(h.reconciler.sync('b')).rejects.toBeInstanceOf(RangeExhaustedError);

    const gone = h.cluster.remove('a');
    if (gone) h.reconciler.nodeDeleted(gone);
    h.clock.jump(10_000);
    await expect(h.reconciler.sync('b')).rejects.toBeInstanceOf(RangeExhaustedError);

    expect(h.requeued).toEqual([
      { name: 'b', afterMs: 60_000 },
      { name: 'b', afterMs: 50_000 },
    ]);
    h.clock.jump(50_000);
    await h.reconciler.sync('b');
    expect(h.cluster.get('b')?.podCIDRs).toEqual(['10.0.0.0/24']);
  });

  it('stops waiting for a node that is deleted', async () => {
    const h = harness({ ranges: [parseRange('10.0.0.0/24', 24)] });
    h.cluster.add('a', { podCIDRs: ['10.0.0.0/24'] });
    h.cluster.add('b');
    h.reconciler.rebuild(h.cluster.list());
    await expect(h.reconciler.sync('b')).rejects.toBeInstanceOf(RangeExhaustedError);

    const gone = h.cluster.remove('b');
    if (gone) h.reconciler.nodeDeleted(gone);

    expect(h.reconciler.waitingNodes()).toEqual([]);
    expect(h.allocator.isAllocated('10.0.0.0/24')).toBe(true);
  });
});

describe('deletion', () => {
  it('keeps the range of a node that is only marked for deletion, and allocates none to it', async () => {
    const h = harness();
    h.cluster.add('a', { podCIDRs: ['10.0.0.0/24'] });
    h.cluster.add('b');
    h.reconciler.rebuild(h.cluster.list());
    h.cluster.markDeleting('a');
    h.cluster.markDeleting('b');

    await h.reconciler.sync('a');
    await h.reconciler.sync('b');
    h.cluster.add('c');
    await h.reconciler.sync('c');

    expect(h.allocator.isAllocated('10.0.0.0/24')).toBe(true);
    expect(h.cluster.patches).toEqual([{ name: 'c', podCIDRs: ['10.0.1.0/24'] }]);
  });

  it('releases the range when the node is deleted', async () => {
    const h = harness();
    h.cluster.add('a');
    h.reconciler.rebuild(h.cluster.list());
    await h.reconciler.sync('a');

    const gone = h.cluster.remove('a');
    if (gone) h.reconciler.nodeDeleted(gone);

    expect(used(h.allocator)).toBe(0);
    expect(h.observer.releasedSubnets).toBe(1);
  });

  it('does not release a duplicate range when the later holder is deleted', () => {
    const h = harness();
    h.cluster.add('a', { podCIDRs: ['10.0.1.0/24'] });
    h.cluster.add('b', { podCIDRs: ['10.0.1.0/24'] });
    h.reconciler.rebuild(h.cluster.list());

    const gone = h.cluster.remove('b');
    if (gone) h.reconciler.nodeDeleted(gone);

    expect(h.allocator.isAllocated('10.0.1.0/24')).toBe(true);
    expect(h.reconciler.ownerOf('10.0.1.0/24')).toBe('a');
  });

  it('hands a duplicate range to the remaining holder when the first holder is deleted', () => {
    const h = harness();
    h.cluster.add('a', { podCIDRs: ['10.0.1.0/24'] });
    h.cluster.add('b', { podCIDRs: ['10.0.1.0/24'] });
    h.reconciler.rebuild(h.cluster.list());

    const gone = h.cluster.remove('a');
    if (gone) h.reconciler.nodeDeleted(gone);

    expect(h.allocator.isAllocated('10.0.1.0/24')).toBe(true);
    expect(h.reconciler.ownerOf('10.0.1.0/24')).toBe('b');
    h.cluster.remove('b');
    h.reconciler.nodeDeleted({ name: 'b', uid: '', resourceVersion: '', podCIDRs: [] });
    expect(used(h.allocator)).toBe(0);
  });

  it('releases only the part of a /23 that no other node holds', () => {
    const h = harness();
    h.cluster.add('a', { podCIDRs: ['10.0.0.0/23'] });
    h.cluster.add('b', { podCIDRs: ['10.0.1.0/24'] });
    h.reconciler.rebuild(h.cluster.list());

    const gone = h.cluster.remove('a');
    if (gone) h.reconciler.nodeDeleted(gone);

    expect(h.allocator.isAllocated('10.0.0.0/24')).toBe(false);
    expect(h.allocator.isAllocated('10.0.1.0/24')).toBe(true);
    expect(h.reconciler.ownerOf('10.0.1.0/24')).toBe('b');
  });

  it('keeps a node subnet that two smaller podCIDRs share until both nodes are gone', () => {
    const h = harness();
    h.cluster.add('a', { podCIDRs: ['10.0.2.0/25'] });
    h.cluster.add('b', { podCIDRs: ['10.0.2.128/25'] });
    h.reconciler.rebuild(h.cluster.list());

    const a = h.cluster.remove('a');
    if (a) h.reconciler.nodeDeleted(a);
    expect(h.allocator.isAllocated('10.0.2.0/24')).toBe(true);
    const b = h.cluster.remove('b');
    if (b) h.reconciler.nodeDeleted(b);
    expect(h.allocator.isAllocated('10.0.2.0/24')).toBe(false);
  });

  it('treats a node re-created under the same name as a new node', async () => {
    const h = harness();
    const old = h.cluster.add('a');
    h.reconciler.rebuild(h.cluster.list());
    await h.reconciler.sync('a');
    expect(h.cluster.get('a')?.podCIDRs).toEqual(['10.0.0.0/24']);

    // The delete was missed; the same name comes back with a new uid and no podCIDRs.
    h.cluster.remove('a');
    h.cluster.add('b');
    h.cluster.add('a');
    await h.reconciler.sync('b');
    await h.reconciler.sync('a');
    // A late delete of the old incarnation must not touch the new one.
    h.reconciler.nodeDeleted(old);

    expect(h.cluster.get('b')?.podCIDRs).toEqual(['10.0.1.0/24']);
    // The old incarnation's range went back; the cursor moves on (next-fit, like upstream).
    expect(h.cluster.get('a')?.podCIDRs).toEqual(['10.0.2.0/24']);
    expect(h.allocator.isAllocated('10.0.0.0/24')).toBe(false);
    expect(h.reconciler.ownerOf('10.0.2.0/24')).toBe('a');
    expect(used(h.allocator)).toBe(2);
  });

  it('releases what a node held when its re-created successor is deleted before being synced', async () => {
    const h = harness();
    h.cluster.add('a');
    h.reconciler.rebuild(h.cluster.list());
    await h.reconciler.sync('a');

    h.cluster.remove('a');
    const successor = h.cluster.add('a');
    h.cluster.remove('a');
    h.reconciler.nodeDeleted(successor);

    expect(used(h.allocator)).toBe(0);
  });
});

describe('rebuild with allocations carried from a fast start', () => {
  it('holds one whose node is listed without podCIDRs, and patches the same ones again', async () => {
    const h = harness();
    const fast = h.cluster.add('fast');
    h.cluster.add('other');
    h.reconciler.rebuild(h.cluster.list(), [{ name: 'fast', uid: fast.uid, cidrs: ['10.0.0.0/24'] }]);

    await h.reconciler.sync('other');
    await h.reconciler.sync('fast');

    expect(h.cluster.patches).toEqual([
      { name: 'other', podCIDRs: ['10.0.1.0/24'] },
      { name: 'fast', podCIDRs: ['10.0.0.0/24'] },
    ]);
    expect(h.reconciler.ownerOf('10.0.0.0/24')).toBe('fast');
  });

  it('holds one whose node is not listed yet, and adopts it when the node shows up', async () => {
    const h = harness();
    h.cluster.add('other');
    h.reconciler.rebuild(h.cluster.list(), [{ name: 'ghost', uid: 'ghost-uid', cidrs: ['10.0.0.0/24'] }]);
    expect(h.reconciler.assigned({ name: 'ghost', uid: 'ghost-uid' })).toBe(true);

    await h.reconciler.sync('other');
    h.cluster.nodes.set('ghost', { name: 'ghost', uid: 'ghost-uid', resourceVersion: '9', podCIDRs: ['10.0.0.0/24'] });
    await h.reconciler.sync('ghost');

    expect(h.cluster.patches).toEqual([{ name: 'other', podCIDRs: ['10.0.1.0/24'] }]);
    expect(h.reconciler.ownerOf('10.0.0.0/24')).toBe('ghost');
    expect(h.events.events).toEqual([]);
  });

  it('holds one whose node is missing from a list older than where it was seen: its events are to come', () => {
    const h = harness();
    h.reconciler.rebuild(h.cluster.list(), [{ name: 'new', uid: 'new-uid', cidrs: ['10.0.0.0/24'], landed: true, seenAt: '120' }], '100');

    expect(h.reconciler.assigned({ name: 'new', uid: 'new-uid' })).toBe(true);
    expect(used(h.allocator)).toBe(1);
  });

  it('lets go of one whose node is missing from a list at or past where it was seen: it was deleted', async () => {
    const h = harness();
    h.cluster.add('other');
    h.reconciler.rebuild(
      h.cluster.list(),
      [
        { name: 'gone', uid: 'gone-uid', cidrs: ['10.0.0.0/24'], landed: true, seenAt: '100' },
        { name: 'gone-too', uid: 'gone-too-uid', cidrs: ['10.0.1.0/24'], seenAt: '99' },
      ],
      '100',
    );

    expect(used(h.allocator)).toBe(0);
    expect(h.reconciler.pendingReservations().size).toBe(0);
    await h.reconciler.sync('other');
    expect(h.cluster.patches).toEqual([{ name: 'other', podCIDRs: ['10.0.0.0/24'] }]);
  });

  it('holds one whose node is missing when resourceVersions cannot be compared', () => {
    const h = harness();
    h.reconciler.rebuild(h.cluster.list(), [{ name: 'gone', uid: 'gone-uid', cidrs: ['10.0.0.0/24'], seenAt: 'abc' }], '100');

    expect(used(h.allocator)).toBe(1);
  });

  it('carries nothing for a node listed with its podCIDRs or under another uid', async () => {
    const h = harness();
    const landed = h.cluster.add('landed', { podCIDRs: ['10.0.0.0/24'] });
    h.cluster.add('recreated');
    h.reconciler.rebuild(h.cluster.list(), [
      { name: 'landed', uid: landed.uid, cidrs: ['10.0.0.0/24'] },
      { name: 'recreated', uid: 'recreated-old-uid', cidrs: ['10.0.1.0/24'] },
    ]);

    expect(h.reconciler.pendingReservations().size).toBe(0);
    expect(used(h.allocator)).toBe(1);
    await h.reconciler.sync('recreated');
    expect(h.cluster.patches).toEqual([{ name: 'recreated', podCIDRs: ['10.0.1.0/24'] }]);
  });

  it('refuses one whose range a listed node holds or that lies outside the ranges, and says so', () => {
    const h = harness();
    h.cluster.add('holder', { podCIDRs: ['10.0.0.0/24'] });
    const fast = h.cluster.add('fast');
    h.reconciler.rebuild(h.cluster.list(), [
      { name: 'fast', uid: fast.uid, cidrs: ['10.0.0.0/24'] },
      { name: 'far', uid: 'far-uid', cidrs: ['10.9.0.0/24'] },
    ]);

    expect(h.reconciler.pendingReservations().size).toBe(0);
    expect(h.reconciler.ownerOf('10.0.0.0/24')).toBe('holder');
    expect(used(h.allocator)).toBe(1);
    expect(h.lines.filter((l) => l.msg.startsWith('not carrying'))).toHaveLength(2);
  });
});
