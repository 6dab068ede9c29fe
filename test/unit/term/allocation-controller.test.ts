import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AllocationController,
  type AllocationControllerOptions,
} from '../../../src/term/allocation-controller.js';
import { NodeInformer } from '../../../src/controller/node-informer.js';
import { termHandle } from '../../../src/term/features/index.js';
import type { NodeInfo, NodeWriter } from '../../../src/controller/ports.js';
import { FakeSource, node } from '../controller/fake-node-source.js';
import { ManualClock } from '../../support/manual-clock.js';
import { RecordingEvents } from '../controller/reconciler-fakes.js';
import { parseRange } from '../../../src/allocator/range-spec.js';

/** Patches land in the fake API server; the informer sees them only when the test delivers a watch event. */
class SourceWriter implements NodeWriter {
  readonly patches: { name: string; podCIDRs: readonly string[] }[] = [];

  constructor(readonly source: FakeSource) {}

  async patchPodCIDRs(name: string, podCIDRs: readonly string[]): Promise<void> {
    await Promise.resolve();
    this.patches.push({ name, podCIDRs });
    const current = this.source.nodes.get(name);
    if (current !== undefined) this.source.set({ ...current, podCIDRs: [...podCIDRs] });
  }

  async getNode(name: string): Promise<NodeInfo | undefined> {
    await Promise.resolve();
    return this.source.nodes.get(name);
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

function setup(): { source: FakeSource; clock: ManualClock; informer: NodeInformer; writer: SourceWriter } {
  const source = new FakeSource();
  const clock = new ManualClock();
  const log = pino({ level: 'silent' });
  const informer = new NodeInformer({ source, log, clock, random: () => 0 });
  const writer = new SourceWriter(source);
  cleanups.push(() => informer.stop());
  return { source, clock, informer, writer };
}

/** A term as run's #lead makes it; the caller aborts the returned controller to end it. */
function startTerm(
  { informer, writer }: { informer: NodeInformer; writer: SourceWriter },
  termStart: number,
  extra: Partial<AllocationControllerOptions> = {},
): { controller: AllocationController; stop: AbortController; done: Promise<unknown> } {
  const stop = new AbortController();
  const controller = new AllocationController(
    {
      ranges: [parseRange('10.0.0.0/23', 24)],
      reserved: [],
      quarantineMs: 0,
      lister: informer,
      termStart,
      writer,
      events: new RecordingEvents(),
      logger: pino({ level: 'silent' }),
      workers: 1,
      fieldManager: 'podcidr-allocator',
      ...extra,
    },
    stop.signal,
  );
  informer.addHandlers({
    add: (n) => controller.nodeChanged(n),
    update: (_o, n) => controller.nodeChanged(n),
    delete: (n) => controller.nodeDeleted(n),
  });
  const done = controller.run(stop.signal);
  cleanups.push(async () => {
    stop.abort();
    await done;
  });
  return { controller, stop, done };
}

/** A term started a tick before its informer's first list, as a leader starts one after the Lease. */
async function startListedTerm(
  h: ReturnType<typeof setup>,
  extra: Partial<AllocationControllerOptions> = {},
): Promise<ReturnType<typeof startTerm>> {
  const termStart = h.clock.now();
  // performance.now() moves between two readings; this clock moves only when told.
  await h.clock.advance(1);
  h.informer.start();
  return startTerm(h, termStart, extra);
}

describe('AllocationController', () => {
  it('lists the nodes once from process start to the first allocation when the informer starts after the term', async () => {
    const h = setup();
    h.source.set(node('a', '1', { podCIDRs: ['10.0.0.0/24'] }), node('b', '2'));
    await h.clock.advance(1_000);
    await startListedTerm(h);
    await h.clock.advance(0);

    expect(h.writer.patches).toEqual([{ name: 'b', podCIDRs: ['10.0.1.0/24'] }]);
    expect(h.source.fullLists).toBe(1);
  });

  it('relists a standby’s warm cache once when its term starts, so ranges the last leader wrote are occupied', async () => {
    const h = setup();
    h.source.set(node('a', '1'), node('b', '2'));
    h.informer.start();
    await h.clock.advance(5_000);
    // The previous leader's patch of a: on the server, but never delivered by this replica's watch.
    h.source.set(node('a', '3', { podCIDRs: ['10.0.0.0/24'] }));
    h.source.resourceVersion = '3';
    const termStart = h.clock.now();
    startTerm(h, termStart);
    await h.clock.advance(1);

    expect(h.writer.patches).toEqual([{ name: 'b', podCIDRs: ['10.0.1.0/24'] }]);
    expect(h.source.fullLists).toBe(2);
  });

  it('after its rebuild syncs only the nodes listed without podCIDRs', async () => {
    const h = setup();
    h.source.set(node('a', '1', { podCIDRs: ['10.0.0.0/24'] }), node('b', '2'));
    const { controller } = await startListedTerm(h);
    const sync = vi.spyOn(controller.reconciler, 'sync');
    await h.clock.advance(0);
    expect(sync.mock.calls).toEqual([['b']]);
    expect(controller.reconciler.ownerOf('10.0.0.0/24')).toBe('a');
    expect(h.writer.patches).toEqual([{ name: 'b', podCIDRs: ['10.0.1.0/24'] }]);
  });

  it('takes every informer event after its rebuild, a delete included, with no replay', async () => {
    const h = setup();
    h.source.set(node('a', '1', { podCIDRs: ['10.0.0.0/24'] }), node('b', '2', { podCIDRs: ['10.0.1.0/24'] }));
    const { controller } = await startListedTerm(h);
    await h.clock.advance(0);
    expect(controller.allocator.usage()[0]?.used).toBe(2);

    h.source.current.handlers.onEvent('DELETED', node('a', '4', { podCIDRs: ['10.0.0.0/24'] }));
    h.source.current.handlers.onEvent('ADDED', node('c', '5'));
    await h.clock.advance(0);
    expect(h.writer.patches).toEqual([{ name: 'c', podCIDRs: ['10.0.0.0/24'] }]);
  });

  it('counts a node it patched as in progress until the watch shows the podCIDRs', async () => {
    const h = setup();
    h.source.set(node('a', '1'), node('b', '2'));
    const { controller } = await startListedTerm(h);
    await h.clock.advance(0);
    expect(h.writer.patches.map((p) => p.name)).toEqual(['a', 'b']);
    const handle = termHandle(controller, h.informer);
    const cached = h.informer.get('a');
    expect(cached?.podCIDRs).toEqual([]);
    expect(controller.queue.pending('a')).toBe(false);
    expect(cached && handle.inProgress(cached)).toBe(true);
    // Another node of that name (deleted and re-created meanwhile) is not the one patched.
    expect(handle.inProgress({ name: 'a', uid: 'a-again' })).toBe(false);
    expect(handle.inProgress({ name: 'never-seen', uid: 'x' })).toBe(false);
  });

  it('waits for the watch to show a carried patch that landed, and sends again one of unknown outcome', async () => {
    const h = setup();
    h.source.set(node('landed', '1'), node('unsure', '2'));
    const carried = [
      { name: 'landed', uid: 'uid-landed', cidrs: ['10.0.0.0/24'], landed: true },
      { name: 'unsure', uid: 'uid-unsure', cidrs: ['10.0.1.0/24'] },
    ];
    const { controller } = await startListedTerm(h, { carried });
    await h.clock.advance(0);
    expect(h.writer.patches).toEqual([{ name: 'unsure', podCIDRs: ['10.0.1.0/24'] }]);
    expect(controller.reconciler.assigned({ name: 'landed', uid: 'uid-landed' })).toBe(true);

    h.source.current.handlers.onEvent('MODIFIED', node('landed', '3', { podCIDRs: ['10.0.0.0/24'] }));
    await h.clock.advance(0);
    expect(h.writer.patches).toHaveLength(1);
    expect(controller.reconciler.ownerOf('10.0.0.0/24')).toBe('landed');
  });

  it('ends without a rebuild or a write when the term ends while the list keeps failing', async () => {
    const h = setup();
    h.source.set(node('a', '1'));
    h.source.listErrors.push(new Error('503'), new Error('503'), new Error('503'));
    const { controller, stop, done } = await startListedTerm(h);
    await h.clock.advance(1_000);
    stop.abort();
    expect(await done).toBeUndefined();
    expect(h.writer.patches).toEqual([]);
    await expect(controller.reconciler.sync('a')).rejects.toThrow(/before rebuild/);
  });

  it('keeps a patch the cache does not show yet when ranges are appended', async () => {
    const h = setup();
    h.source.set(node('a', '1'), node('b', '2'));
    const { controller } = await startListedTerm(h);
    await h.clock.advance(0);
    expect(h.writer.patches.map((p) => p.podCIDRs[0])).toEqual(['10.0.0.0/24', '10.0.1.0/24']);
    // The watch has not shown the patches yet; a node waits outside the ranges in force.
    h.source.current.handlers.onEvent('ADDED', node('outside', '3', { podCIDRs: ['10.0.3.0/24'] }));
    h.source.current.handlers.onEvent('ADDED', node('c', '4'));
    await h.clock.advance(0);
    termHandle(controller, h.informer).appendRanges([parseRange('10.0.2.0/23', 24)]);
    // Before any sync: what landed is still held, so the next allocation cannot be given it.
    expect(controller.allocator.usage().map((u) => u.used)).toEqual([2, 1]);
    expect(controller.reconciler.ownerOf('10.0.0.0/24')).toBe('a');
    await h.clock.advance(0);
    const given = h.writer.patches.map((p) => `${p.name} ${p.podCIDRs.join(',')}`);
    expect(given).toEqual(['a 10.0.0.0/24', 'b 10.0.1.0/24', 'c 10.0.2.0/24']);
    expect(controller.reconciler.ownerOf('10.0.3.0/24')).toBe('outside');
  });
});
