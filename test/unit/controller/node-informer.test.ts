import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type NodeEventHandlers,
  NodeInformer,
  type NodeInformerOptions,
} from '../../../src/controller/node-informer.js';
import { type NodeInfo, ResourceExpiredError } from '../../../src/controller/ports.js';
import { FakeSource, node } from './fake-node-source.js';
import { ManualClock, settle } from '../../support/manual-clock.js';

interface Recorded {
  events: string[];
  deleted: NodeInfo[];
}

function record(): { handlers: NodeEventHandlers; seen: Recorded } {
  const seen: Recorded = { events: [], deleted: [] };
  return {
    seen,
    handlers: {
      add: (n) => seen.events.push(`add ${n.name}@${n.resourceVersion}`),
      update: (o, n) => seen.events.push(`update ${n.name} ${o.resourceVersion}->${n.resourceVersion}`),
      delete: (n) => {
        seen.events.push(`delete ${n.name}@${n.resourceVersion}`);
        seen.deleted.push(n);
      },
    },
  };
}

const running: NodeInformer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((i) => i.stop()));
});

function setup(options: Partial<NodeInformerOptions> = {}): {
  informer: NodeInformer;
  source: FakeSource;
  clock: ManualClock;
  seen: Recorded;
  logs: Record<string, unknown>[];
} {
  const source = new FakeSource();
  const clock = new ManualClock();
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const informer = new NodeInformer({ source, log, clock, random: () => 0, pageSize: 2, ...options });
  const { handlers, seen } = record();
  informer.addHandlers(handlers);
  running.push(informer);
  return { informer, source, clock, seen, logs };
}

describe('NodeInformer', () => {
  it('lists every page, fills the cache, reports adds and becomes synced', async () => {
    const { informer, source, clock, seen } = setup();
    source.set(node('a', '1'), node('b', '2'), node('c', '3'), node('d', '4'), node('e', '5'));
    expect(informer.hasSynced()).toBe(false);
    const synced = informer.waitForSync();
    informer.start();
    await clock.advance(0);
    expect(await synced).toBe(true);
    expect(informer.hasSynced()).toBe(true);
    expect(source.lists.map((l) => [l.limit, l.continueToken])).toEqual([
      [2, undefined],
      [2, '2'],
      [2, '4'],
    ]);
    expect(seen.events).toEqual(['add a@1', 'add b@2', 'add c@3', 'add d@4', 'add e@5']);
    expect(informer.get('c')).toEqual(node('c', '3'));
    expect(informer.list().map((n) => n.name)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('watches from the list resourceVersion with a randomised server timeout of 5 to 10 minutes', async () => {
    const { informer, source, clock } = setup({ random: () => 0.5 });
    informer.start();
    await clock.advance(0);
    expect(source.current.options.resourceVersion).toBe('100');
    expect(source.current.options.timeoutSeconds).toBe(450);
  });

  it('applies watch events to the cache and reports add, update and delete', async () => {
    const { informer, source, clock, seen } = setup();
    source.set(node('a', '1'));
    informer.start();
    await clock.advance(0);
    const { handlers } = source.current;
    handlers.onEvent('ADDED', node('b', '101'));
    handlers.onEvent('MODIFIED', node('a', '102', { podCIDRs: ['10.0.0.0/24'] }));
    handlers.onEvent('DELETED', node('b', '103'));
    expect(seen.events).toEqual(['add a@1', 'add b@101', 'update a 1->102', 'delete b@103']);
    expect(informer.get('a')?.podCIDRs).toEqual(['10.0.0.0/24']);
    expect(informer.get('b')).toBeUndefined();
    expect(informer.lastSyncResourceVersion()).toBe('103');
  });

  it('keeps the cached uid and podCIDRs objects across updates and relists that leave them equal', async () => {
    const { informer, source, clock } = setup();
    source.set(node('a', '1', { podCIDRs: ['10.0.0.0/24'] }));
    informer.start();
    await clock.advance(0);
    const first = informer.get('a');
    source.current.handlers.onEvent('MODIFIED', node('a', '2', { podCIDRs: ['10.0.0.0/24'] }));
    source.current.handlers.onEvent('MODIFIED', node('a', '3', { podCIDRs: ['10.0.0.0/24'], deletionTimestamp: '2026-01-01T00:00:00Z' }));
    const updated = informer.get('a');
    expect(updated?.resourceVersion).toBe('3');
    expect(updated?.deletionTimestamp).toBe('2026-01-01T00:00:00Z');
    expect(updated?.podCIDRs).toBe(first?.podCIDRs);
    source.set(node('a', '4', { podCIDRs: ['10.0.0.0/24'], deletionTimestamp: '2026-01-01T00:00:00Z' }));
    source.current.handlers.onClose(new ResourceExpiredError());
    await clock.advance(0);
    expect(informer.get('a')?.resourceVersion).toBe('4');
    expect(informer.get('a')?.podCIDRs).toBe(first?.podCIDRs);
    source.current.handlers.onEvent('MODIFIED', node('a', '5', { uid: 'other', podCIDRs: ['10.0.0.0/24'] }));
    expect(informer.get('a')?.podCIDRs).not.toBe(first?.podCIDRs);
  });

  it('stores a change of resourceVersion alone without reporting an update', async () => {
    const { informer, source, clock, seen } = setup();
    source.set(node('a', '1'));
    informer.start();
    await clock.advance(0);
    source.current.handlers.onEvent('MODIFIED', node('a', '150'));
    expect(seen.events).toEqual(['add a@1']);
    expect(informer.get('a')?.resourceVersion).toBe('150');
  });

  it('reports a Node recreated under the same name as a delete of the old one and an add', async () => {
    const { informer, source, clock, seen } = setup();
    source.set(node('a', '1'));
    informer.start();
    await clock.advance(0);
    source.current.handlers.onEvent('MODIFIED', node('a', '9', { uid: 'other' }));
    expect(seen.events).toEqual(['add a@1', 'delete a@1', 'add a@9']);
  });

  it('reconnects after a clean close from the last resourceVersion, bookmarks included, without relisting', async () => {
    const { informer, source, clock } = setup();
    informer.start();
    await clock.advance(0);
    source.current.handlers.onEvent('ADDED', node('a', '120'));
    source.current.handlers.onBookmark('130');
    await clock.advance(60_000);
    source.current.handlers.onClose();
    await clock.advance(0);
    expect(source.watches).toHaveLength(2);
    expect(source.current.options.resourceVersion).toBe('130');
    expect(source.lists).toHaveLength(1);
    expect(informer.get('a')).toBeDefined();
  });

  it('relists on 410 Gone and reports nodes that vanished meanwhile as deletes with their last known state', async () => {
    const { informer, source, clock, seen } = setup();
    source.set(node('a', '1', { podCIDRs: ['10.0.0.0/24'] }), node('b', '2'), node('c', '3'));
    informer.start();
    await clock.advance(0);
    seen.events.length = 0;
    source.nodes.delete('a');
    source.set(node('b', '200', { podCIDRs: ['10.0.1.0/24'] }), node('d', '201'));
    source.resourceVersion = '201';
    source.current.handlers.onClose(new ResourceExpiredError());
    await clock.advance(0);
    expect(source.lists.map((l) => l.continueToken)).toEqual([undefined, '2', undefined, '2']);
    expect(seen.events.sort()).toEqual(['add d@201', 'delete a@1', 'update b 2->200']);
    expect(seen.deleted[0]?.podCIDRs).toEqual(['10.0.0.0/24']);
    expect(informer.list().map((n) => n.name)).toEqual(['b', 'c', 'd']);
    expect(source.current.options.resourceVersion).toBe('201');
  });

  it('starts the list over when its continue token expires half way', async () => {
    const { informer, source, clock } = setup();
    source.set(node('a', '1'), node('b', '2'), node('c', '3'));
    // The second call (the first continue) fails with 410.
    const first = source.list.bind(source);
    let calls = 0;
    source.list = async (options) => {
      calls += 1;
      const page = await first(options);
      if (calls === 2) throw new ResourceExpiredError('continue expired');
      return page;
    };
    informer.start();
    await clock.advance(0);
    expect(informer.hasSynced()).toBe(true);
    expect(informer.list()).toHaveLength(3);
    expect(source.lists.map((l) => l.continueToken)).toEqual([undefined, '2', undefined, '2']);
  });

  it('retries a failed list with exponential, jittered backoff and stays unsynced until it works', async () => {
    const { informer, source, clock, logs } = setup({ random: () => 0.5 });
    source.set(node('a', '1'));
    source.listErrors.push(new Error('connect ECONNREFUSED'), new Error('503'), new Error('403'));
    informer.start();
    await clock.advance(0);
    expect(source.lists).toHaveLength(1);
    // 800 ms × (1 + 0.2 × 0.5) = 880 ms, then 1760 ms, then 3520 ms.
    await clock.advance(879);
    expect(source.lists).toHaveLength(1);
    await clock.advance(1);
    expect(source.lists).toHaveLength(2);
    await clock.advance(1760);
    expect(source.lists).toHaveLength(3);
    expect(informer.hasSynced()).toBe(false);
    await clock.advance(3520);
    expect(source.lists).toHaveLength(4);
    expect(informer.hasSynced()).toBe(true);
    const warnings = logs.filter((l) => l.level === 40).map((l) => l.delayMs);
    expect(warnings).toEqual([880, 1760, 3520]);
  });

  it('caps the backoff and resets it after a watch that stayed up for the healthy period', async () => {
    const { informer, source, clock, logs } = setup({ maxBackoffMs: 5000, healthyAfterMs: 60_000 });
    informer.start();
    await clock.advance(0);
    for (let i = 0; i < 5; i++) {
      source.current.handlers.onClose(new Error('stream reset'));
      await clock.advance(10_000);
    }
    const delays = (): unknown[] => logs.filter((l) => l.level === 40).map((l) => l.delayMs);
    expect(delays()).toEqual([800, 1600, 3200, 5000, 5000]);
    await clock.advance(60_000);
    source.current.handlers.onClose(new Error('stream reset'));
    await clock.advance(0);
    expect(delays().at(-1)).toBe(800);
  });

  it('backs off when the server closes a new watch at once instead of spinning', async () => {
    const { informer, source, clock } = setup();
    informer.start();
    await clock.advance(0);
    source.current.handlers.onClose();
    await clock.advance(0);
    expect(source.watches).toHaveLength(1);
    await clock.advance(800);
    expect(source.watches).toHaveLength(2);
  });

  it('restarts a watch that failed to open, after backoff', async () => {
    const { informer, source, clock } = setup();
    source.watchErrors.push(Object.assign(new Error('Forbidden'), { statusCode: 403 }));
    informer.start();
    await clock.advance(0);
    expect(source.watches).toHaveLength(0);
    await clock.advance(800);
    expect(source.watches).toHaveLength(1);
  });

  it('aborts and restarts a watch that stays silent past the watchdog, but not one that sends bookmarks', async () => {
    const { informer, source, clock } = setup({ watchdogMs: 300_000 });
    informer.start();
    await clock.advance(0);
    for (let i = 0; i < 10; i++) {
      await clock.advance(60_000);
      source.current.handlers.onBookmark(String(200 + i));
    }
    expect(source.watches).toHaveLength(1);
    const quiet = source.current;
    await clock.advance(300_000);
    expect(quiet.options.signal.aborted).toBe(true);
    await clock.advance(800);
    expect(source.watches).toHaveLength(2);
    expect(source.current.options.resourceVersion).toBe('209');
    expect(source.lists).toHaveLength(1);
  });

  it('logs a throwing handler and still calls the others and keeps watching', async () => {
    const { informer, source, clock, logs } = setup();
    const calls: string[] = [];
    informer.addHandlers({
      add: () => {
        throw new Error('handler bug');
      },
    });
    informer.addHandlers({ add: (n) => calls.push(n.name) });
    informer.start();
    await clock.advance(0);
    source.current.handlers.onEvent('ADDED', node('a', '101'));
    source.current.handlers.onEvent('ADDED', node('b', '102'));
    expect(calls).toEqual(['a', 'b']);
    expect(logs.filter((l) => l.msg === 'node event handler threw; continuing')).toHaveLength(2);
    expect(informer.get('b')).toBeDefined();
  });

  it('stops without restarting even though the aborted watch reports an error', async () => {
    const { informer, source, clock } = setup();
    informer.start();
    await clock.advance(0);
    const open = source.current;
    await informer.stop();
    expect(open.options.signal.aborted).toBe(true);
    await clock.advance(120_000);
    expect(source.watches).toHaveLength(1);
    expect(source.lists).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });

  it('stops promptly even when the source never reports the end of the aborted stream', async () => {
    const { informer, source, clock } = setup();
    source.ignoreAbort = true;
    informer.start();
    await clock.advance(0);
    let stopped = false;
    const stopping = informer.stop().then(() => {
      stopped = true;
    });
    await settle();
    expect(stopped).toBe(true);
    await stopping;
    expect(clock.pending()).toBe(0);
  });

  it('stops while waiting out a backoff', async () => {
    const { informer, source, clock } = setup();
    source.listErrors.push(new Error('down'));
    informer.start();
    await clock.advance(0);
    const waiting = informer.waitForSync();
    await informer.stop();
    expect(await waiting).toBe(false);
    await clock.advance(60_000);
    expect(source.lists).toHaveLength(1);
  });

  it('gives up waiting for sync when the caller aborts', async () => {
    const { informer, source, clock } = setup();
    source.listErrors.push(new Error('down'));
    informer.start();
    await clock.advance(0);
    const controller = new AbortController();
    const waiting = informer.waitForSync(controller.signal);
    controller.abort();
    expect(await waiting).toBe(false);
  });

  it('ignores events a watch delivers after it was replaced', async () => {
    const { informer, source, clock, seen } = setup();
    informer.start();
    await clock.advance(0);
    const old = source.current;
    await clock.advance(60_000);
    old.handlers.onClose();
    await clock.advance(0);
    old.handlers.onEvent('ADDED', node('ghost', '999'));
    await settle();
    expect(seen.events).toEqual([]);
    expect(informer.get('ghost')).toBeUndefined();
  });
});

describe('NodeInformer.listedAfter', () => {
  /** Settles when the promise does; lets a test tell "still waiting" from "done". */
  function track(promise: Promise<boolean>): { readonly result: boolean | undefined } {
    const state: { result: boolean | undefined } = { result: undefined };
    void promise.then((r) => (state.result = r));
    return state;
  }

  it('resolves at once, without listing again, when the list behind the cache started later', async () => {
    const { informer, source, clock } = setup();
    await clock.advance(1_000);
    informer.start();
    await clock.advance(0);
    const watch = source.current;
    expect(await informer.listedAfter(999)).toBe(true);
    await clock.advance(0);
    expect(source.fullLists).toBe(1);
    expect(source.watches).toHaveLength(1);
    expect(watch.options.signal.aborted).toBe(false);
  });

  it('relists only once the clock has passed the time asked for, as a list started at it would not do', async () => {
    const { informer, source, clock } = setup();
    informer.start();
    await clock.advance(0);
    const fresh = track(informer.listedAfter(0));
    await clock.advance(0);
    expect(source.fullLists).toBe(1);
    expect(fresh.result).toBeUndefined();
    await clock.advance(1);
    expect(source.fullLists).toBe(2);
    expect(fresh.result).toBe(true);
  });

  it('refuses a time still to come on its clock', async () => {
    const { informer, clock } = setup();
    informer.start();
    await clock.advance(1_000);
    await expect(informer.listedAfter(Date.now())).rejects.toThrow(RangeError);
  });

  it('ends the watch and lists exactly once more when the list is older, reporting what changed meanwhile', async () => {
    const { informer, source, clock, seen } = setup();
    source.set(node('a', '1'), node('b', '2'));
    informer.start();
    await clock.advance(5_000);
    const old = source.current;
    seen.events.length = 0;
    // Changes the watch never delivered: the relist finds them.
    source.nodes.delete('a');
    source.set(node('b', '300', { podCIDRs: ['10.0.0.0/24'] }), node('c', '301'));
    source.resourceVersion = '301';

    const fresh = track(informer.listedAfter(4_000));
    await clock.advance(0);
    expect(fresh.result).toBe(true);
    expect(old.options.signal.aborted).toBe(true);
    expect(source.fullLists).toBe(2);
    expect(seen.events.sort()).toEqual(['add c@301', 'delete a@1', 'update b 2->300']);
    expect(source.watches).toHaveLength(2);
    expect(source.current.options.resourceVersion).toBe('301');
    // Satisfied now: asking again for the same time lists nothing more.
    expect(await informer.listedAfter(4_000)).toBe(true);
    await clock.advance(60_000);
    expect(source.fullLists).toBe(2);
  });

  it('waits for the first list when the informer has not started yet, and needs no second one', async () => {
    const { informer, source, clock } = setup();
    source.set(node('a', '1'));
    const fresh = track(informer.listedAfter(-1));
    await clock.advance(10_000);
    expect(fresh.result).toBeUndefined();
    informer.start();
    await clock.advance(0);
    expect(fresh.result).toBe(true);
    expect(source.fullLists).toBe(1);
  });

  it('lists again after a list in flight that started before the time asked for', async () => {
    const { informer, source, clock } = setup();
    let release = (): void => undefined;
    source.listGate = new Promise((resolve) => (release = resolve));
    informer.start();
    await clock.advance(100);
    const older = track(informer.listedAfter(-1));
    const newer = track(informer.listedAfter(50));
    source.listGate = undefined;
    release();
    await clock.advance(0);
    expect(older.result).toBe(true);
    expect(newer.result).toBe(true);
    expect(source.fullLists).toBe(2);
    expect(source.watches).toHaveLength(1);
  });

  it('counts a relist after 410 Gone as a list like any other', async () => {
    const { informer, source, clock } = setup();
    informer.start();
    await clock.advance(2_000);
    source.current.handlers.onClose(new ResourceExpiredError());
    await clock.advance(0);
    expect(source.fullLists).toBe(2);
    expect(await informer.listedAfter(1_000)).toBe(true);
    await clock.advance(0);
    expect(source.fullLists).toBe(2);
  });

  it('retries a failing relist with the usual backoff until one succeeds', async () => {
    const { informer, source, clock, logs } = setup();
    informer.start();
    await clock.advance(1_000);
    source.listErrors.push(new Error('503'), new Error('503'));
    const fresh = track(informer.listedAfter(500));
    await clock.advance(0);
    expect(fresh.result).toBeUndefined();
    expect(source.fullLists).toBe(2);
    await clock.advance(800);
    expect(source.fullLists).toBe(3);
    expect(fresh.result).toBeUndefined();
    await clock.advance(1_600);
    expect(source.fullLists).toBe(4);
    expect(fresh.result).toBe(true);
    const warnings = logs.filter((l) => l.msg === 'node list failed; retrying').map((l) => l.delayMs);
    expect(warnings).toEqual([800, 1600]);
  });

  it('resolves false when the caller aborts, and keeps the informer watching', async () => {
    const { informer, source, clock } = setup();
    informer.start();
    await clock.advance(1_000);
    source.listErrors.push(new Error('down'));
    const controller = new AbortController();
    const fresh = track(informer.listedAfter(500, controller.signal));
    await clock.advance(100);
    controller.abort();
    await clock.advance(0);
    expect(fresh.result).toBe(false);
    expect(await informer.listedAfter(500, controller.signal)).toBe(false);
    // Past the backoff, the informer recovers by itself; nobody asks for a fresher list any more.
    await clock.advance(10_000);
    expect(informer.hasSynced()).toBe(true);
    expect(source.current.options.signal.aborted).toBe(false);
  });

  it('resolves false when the informer stops first', async () => {
    const { informer, source, clock } = setup();
    source.listErrors.push(new Error('down'));
    informer.start();
    await clock.advance(600);
    const fresh = track(informer.listedAfter(500));
    await informer.stop();
    await settle();
    expect(fresh.result).toBe(false);
    expect(await informer.listedAfter(500)).toBe(false);
  });
});
