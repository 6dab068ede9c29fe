// The fast start over a fake Node source and the fake API server: it allocates only what the handoff
// left free, only to nodes the watch from the handoff showed, never releases, and hands over all it did.

import { describe, expect, it } from 'vitest';
import { CATCH_UP_WATCH_SECONDS, FastStart } from '../../../src/term/fast-start.js';
import type { Handoff } from '../../../src/term/handoff.js';
import { type NodeInfo, ResourceExpiredError } from '../../../src/controller/ports.js';
import { FakeSource } from '../controller/fake-node-source.js';
import { FakeCluster, RecordingEvents, memoryLogger } from '../controller/reconciler-fakes.js';
import { parseRange } from '../../../src/allocator/range-spec.js';

const RANGES = [parseRange('10.0.0.0/28', 30)];

/** Four /30 subnets; the first was taken when the last term ended. */
const HANDOFF: Handoff = { resourceVersion: '500', ranges: [{ clusterCIDR: '10.0.0.0/28', nodeMask: 30, runs: [0, 0] }] };

function setup(handoff: Handoff = HANDOFF) {
  const source = new FakeSource();
  const cluster = new FakeCluster();
  const events = new RecordingEvents();
  const { logger, lines } = memoryLogger();
  const term = new AbortController();
  const fast = new FastStart(
    { handoff, ranges: RANGES, reserved: [], quarantineMs: 0, source, writer: cluster, events, logger, workers: 2, fieldManager: 'podcidr-allocator' },
    term.signal,
  );
  /** A node the cluster has and the watch shows now. */
  const show = (info: NodeInfo, type: 'ADDED' | 'MODIFIED' | 'DELETED' = 'ADDED'): void => {
    if (type !== 'DELETED') cluster.nodes.set(info.name, info);
    source.current.handlers.onEvent(type, info);
  };
  return { source, cluster, events, lines, term, fast, show };
}

/** Lets queued syncs and their patches run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

function joined(name: string, podCIDRs: string[] = [], resourceVersion = '600'): NodeInfo {
  return { name, uid: `${name}-uid`, resourceVersion, podCIDRs };
}

describe('FastStart', () => {
  it('watches from the handoff and allocates what it left free to the nodes that join', async () => {
    const { source, cluster, fast, show } = setup();
    fast.start();
    await settle();
    expect(source.current.options.resourceVersion).toBe('500');
    show(joined('new-1', [], '601'));
    show(joined('new-2', [], '602'));
    await settle();
    expect(cluster.patches).toEqual([
      { name: 'new-1', podCIDRs: ['10.0.0.4/30'] },
      { name: 'new-2', podCIDRs: ['10.0.0.8/30'] },
    ]);
    const carried = await fast.finish();
    expect(carried).toEqual([
      { name: 'new-1', uid: 'new-1-uid', cidrs: ['10.0.0.4/30'], landed: true, seenAt: '601' },
      { name: 'new-2', uid: 'new-2-uid', cidrs: ['10.0.0.8/30'], landed: true, seenAt: '602' },
    ]);
  });

  it('holds what replayed nodes carry, and keeps a deleted node\'s range', async () => {
    const { cluster, events, fast, show } = setup();
    fast.start();
    await settle();
    // Patched by the last leader after its handoff was read, then deleted: its range stays taken.
    show(joined('old', ['10.0.0.4/30']), 'MODIFIED');
    show(joined('old', ['10.0.0.4/30']), 'DELETED');
    show(joined('late', ['10.0.0.8/30']), 'MODIFIED');
    show(joined('new'));
    await settle();
    expect(cluster.patches).toEqual([{ name: 'new', podCIDRs: ['10.0.0.12/30'] }]);
    expect(events.events).toEqual([]);
    show(joined('one-more'));
    await settle();
    // Nothing is left: the range is exhausted until the list's term frees what is no one's.
    expect(cluster.patches).toHaveLength(1);
    expect(events.reasons('one-more')).toEqual(['CIDRNotAvailable']);
    await fast.finish();
  });

  it('sends nothing once finished, and hands over a patch of unknown outcome', async () => {
    const { cluster, fast, show } = setup();
    fast.start();
    await settle();
    // The retry's backoff runs on real timers: on a loaded machine it may come before finish(), so
    // it times out as well.
    cluster.scripts.push({ fail: 'timeout', late: true }, { fail: 'timeout', late: true });
    cluster.getNodeFails = true;
    show(joined('slow'));
    await settle();
    const carried = await fast.finish();
    expect(carried).toEqual([{ name: 'slow', uid: 'slow-uid', cidrs: ['10.0.0.4/30'], seenAt: '600' }]);
    const sent = cluster.patches.length;
    show(joined('after'));
    await settle();
    expect(cluster.patches).toHaveLength(sent);
    expect(new Set(cluster.patches.map((p) => p.name))).toEqual(new Set(['slow']));
  });

  it('stops taking nodes when the handoff is too old to watch from', async () => {
    const { source, cluster, lines, fast } = setup();
    source.watchErrors.push(new ResourceExpiredError());
    fast.start();
    await settle();
    expect(source.watches).toHaveLength(0);
    expect(lines.some((l) => l.msg.includes('too old to watch from'))).toBe(true);
    expect(await fast.finish()).toEqual([]);
    expect(cluster.patches).toEqual([]);
  });

  it('stops when the term ends', async () => {
    const { cluster, term, fast, show } = setup();
    fast.start();
    await settle();
    term.abort();
    show(joined('too-late'));
    await settle();
    expect(cluster.patches).toEqual([]);
    expect(await fast.finish()).toEqual([]);
  });

  it('allocates nothing while the watch replays what came before the present', async () => {
    const { source, cluster, fast, show } = setup();
    // The present, read after the Lease was taken: a dead leader wrote up to 700 after the handoff.
    source.resourceVersion = '700';
    fast.start();
    await settle();
    show(joined('waiting', [], '610'));
    await settle();
    expect(cluster.patches).toEqual([]);
    // The dead leader gave the first free subnet away at 650; the replay shows it only now.
    show(joined('given', ['10.0.0.4/30'], '650'), 'MODIFIED');
    await settle();
    expect(cluster.patches).toEqual([]);
    source.current.handlers.onBookmark('700');
    await settle();
    expect(cluster.patches).toEqual([{ name: 'waiting', podCIDRs: ['10.0.0.8/30'] }]);
    show(joined('new', [], '710'));
    await settle();
    expect(cluster.patches.at(-1)).toEqual({ name: 'new', podCIDRs: ['10.0.0.12/30'] });
    await fast.finish();
  });

  it('counts what the watch showed before the present was read', async () => {
    const { source, cluster, fast, show } = setup();
    let answer = (): void => undefined;
    source.listGate = new Promise((resolve) => (answer = resolve));
    source.resourceVersion = '700';
    fast.start();
    await settle();
    show(joined('early', [], '720'));
    await settle();
    expect(cluster.patches).toEqual([]);
    answer();
    await settle();
    expect(source.lists.map((l) => [l.limit, l.continueToken])).toEqual([[1, undefined]]);
    expect(cluster.patches).toEqual([{ name: 'early', podCIDRs: ['10.0.0.4/30'] }]);
    await fast.finish();
  });

  it('watches in short spells until it is caught up, each from where the last one came to', async () => {
    const { source, cluster, fast, show } = setup();
    source.resourceVersion = '700';
    fast.start();
    await settle();
    expect(source.current.options.timeoutSeconds).toBe(CATCH_UP_WATCH_SECONDS);
    show(joined('waiting', [], '640'));
    source.current.handlers.onClose();
    await settle();
    expect(source.watches.map((w) => w.options.resourceVersion)).toEqual(['500', '640']);
    source.current.handlers.onBookmark('705');
    await settle();
    expect(cluster.patches.map((p) => p.name)).toEqual(['waiting']);
    source.current.handlers.onClose();
    await settle();
    expect(source.current.options).toMatchObject({ resourceVersion: '705', timeoutSeconds: 300 });
    await fast.finish();
  });

  it('allocates nothing when it cannot tell the present', async () => {
    for (const present of [new Error('connection refused'), 'not-a-number']) {
      const { source, cluster, lines, fast, show } = setup();
      if (present instanceof Error) source.listErrors.push(present);
      else source.resourceVersion = present;
      fast.start();
      await settle();
      show(joined('waiting', [], '99999'));
      source.current.handlers.onBookmark('100000');
      await settle();
      expect(cluster.patches).toEqual([]);
      expect(lines.some((l) => l.msg.includes('nodes wait for the node list'))).toBe(true);
      expect(await fast.finish()).toEqual([]);
    }
  });

  it('hands over a patch that timed out and landed, as the read that settled it showed', async () => {
    const { cluster, fast, show } = setup();
    fast.start();
    await settle();
    cluster.scripts.push({ fail: 'timeout', landed: true });
    show(joined('slow'));
    await settle();
    expect(cluster.nodes.get('slow')?.podCIDRs).toEqual(['10.0.0.4/30']);
    expect(await fast.finish()).toEqual([{ name: 'slow', uid: 'slow-uid', cidrs: ['10.0.0.4/30'], landed: true, seenAt: '601' }]);
  });

  it('hands over where it last saw each node, its delete too, so a later list can tell it is gone', async () => {
    const { cluster, fast, show } = setup();
    fast.start();
    await settle();
    // Every patch times out, the work queue's retries too: their backoff runs on the real clock.
    for (let i = 0; i < 20; i++) cluster.scripts.push({ fail: 'timeout', late: true });
    cluster.getNodeFails = true;
    show(joined('brief', [], '601'));
    await settle();
    show(joined('brief', [], '640'), 'DELETED');
    expect(await fast.finish()).toEqual([{ name: 'brief', uid: 'brief-uid', cidrs: ['10.0.0.4/30'], seenAt: '640' }]);
  });

  it('does not watch from a handoff whose resourceVersion gives no ordered replay', async () => {
    for (const resourceVersion of ['0', '', 'abc']) {
      const { source, cluster, lines, fast } = setup({ ...HANDOFF, resourceVersion });
      fast.start();
      await settle();
      expect(source.watches).toHaveLength(0);
      expect(cluster.patches).toEqual([]);
      expect(lines.some((l) => l.msg.includes('no resourceVersion to watch from'))).toBe(true);
      expect(await fast.finish()).toEqual([]);
    }
  });
});
