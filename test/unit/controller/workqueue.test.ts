import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ItemExponentialRateLimiter } from '../../../src/controller/rate-limiter.js';
import { WorkQueue, runWorkers } from '../../../src/controller/workqueue.js';
import { type WorkQueueObserver } from '../../../src/controller/ports.js';
import { ManualClock, settle } from '../../support/manual-clock.js';

function newQueue(observer?: WorkQueueObserver): { queue: WorkQueue; clock: ManualClock } {
  const clock = new ManualClock();
  return { queue: new WorkQueue({ clock, observer }), clock };
}

/** Takes whatever is queued right now without waiting. */
async function drainNow(queue: WorkQueue): Promise<string[]> {
  const keys: string[] = [];
  while (queue.len() > 0) {
    const key = await queue.get();
    if (key === undefined) break;
    keys.push(key);
  }
  return keys;
}

describe('WorkQueue', () => {
  it('hands keys out in the order they were added', async () => {
    const { queue } = newQueue();
    for (const key of ['a', 'b', 'c']) queue.add(key);
    expect(await drainNow(queue)).toEqual(['a', 'b', 'c']);
  });

  it('says a key is pending while it is queued or held, and not once done or only delayed', async () => {
    const { queue } = newQueue();
    queue.add('a');
    queue.addAfter('later', 60_000);
    expect([queue.pending('a'), queue.pending('later'), queue.pending('never')]).toEqual([true, false, false]);
    const key = await queue.get();
    expect(queue.pending('a')).toBe(true);
    queue.done(key ?? '');
    expect(queue.pending('a')).toBe(false);
  });

  it('ignores an add of a key that is already queued', async () => {
    const { queue } = newQueue();
    queue.add('a');
    queue.add('b');
    queue.add('a');
    expect(queue.len()).toBe(2);
    expect(await drainNow(queue)).toEqual(['a', 'b']);
  });

  it('does not hand a key to a second worker while the first holds it, and re-queues it after done', async () => {
    const { queue } = newQueue();
    queue.add('a');
    const key = await queue.get();
    expect(key).toBe('a');
    queue.add('a');
    queue.add('a');
    expect(queue.len()).toBe(0);
    queue.done('a');
    expect(queue.len()).toBe(1);
    expect(await queue.get()).toBe('a');
    queue.done('a');
    expect(queue.len()).toBe(0);
  });

  it('wakes a waiting worker when a key arrives', async () => {
    const { queue } = newQueue();
    const got = queue.get();
    queue.add('a');
    expect(await got).toBe('a');
    expect(queue.len()).toBe(0);
  });

  it('delays addAfter keys until their time and keeps the earliest of two times', async () => {
    const { queue, clock } = newQueue();
    queue.addAfter('a', 1000);
    queue.addAfter('a', 300);
    queue.addAfter('a', 5000);
    await clock.advance(299);
    expect(queue.len()).toBe(0);
    await clock.advance(1);
    expect(queue.len()).toBe(1);
    await drainNow(queue);
    await clock.advance(10_000);
    expect(queue.len()).toBe(0);
  });

  it('adds immediately when addAfter is given no delay', () => {
    const { queue } = newQueue();
    queue.addAfter('a', 0);
    expect(queue.len()).toBe(1);
  });

  it('backs a failing key off exponentially and resets after forget', async () => {
    const clock = new ManualClock();
    const queue = new WorkQueue({ clock, rateLimiter: new ItemExponentialRateLimiter(5, 1000) });
    queue.addRateLimited('a');
    await clock.advance(4);
    expect(queue.len()).toBe(0);
    await clock.advance(1);
    expect(await drainNow(queue)).toEqual(['a']);
    queue.done('a');
    queue.addRateLimited('a');
    await clock.advance(9);
    expect(queue.len()).toBe(0);
    await clock.advance(1);
    expect(queue.len()).toBe(1);
    expect(queue.numRequeues('a')).toBe(2);
    queue.forget('a');
    expect(queue.numRequeues('a')).toBe(0);
  });

  it('gives waiting workers undefined and drops queued and delayed keys on shutDown', async () => {
    const { queue, clock } = newQueue();
    const waiting = queue.get();
    queue.shutDown();
    expect(await waiting).toBeUndefined();

    const second = newQueue();
    second.queue.add('a');
    second.queue.addAfter('b', 100);
    expect(second.clock.pending()).toBe(1);
    second.queue.shutDown();
    expect(second.clock.pending()).toBe(0);
    second.queue.add('c');
    expect(await second.queue.get()).toBeUndefined();
    await second.clock.advance(1000);
    expect(second.queue.len()).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it('lets workers finish queued keys on shutDownWithDrain and resolves when they are done', async () => {
    const { queue } = newQueue();
    queue.add('a');
    queue.add('b');
    const held = await queue.get();
    let drained = false;
    const drain = queue.shutDownWithDrain().then(() => {
      drained = true;
    });
    queue.add('c');
    expect(await queue.get()).toBe('b');
    queue.done('b');
    expect(await queue.get()).toBeUndefined();
    await settle();
    expect(drained).toBe(false);
    queue.done(held ?? '');
    await drain;
    expect(drained).toBe(true);
  });

  it('reports adds, depth, retries and latencies to its observer', async () => {
    const seen = { adds: 0, retries: 0, depth: [] as number[], latency: [] as number[], work: [] as number[] };
    const { queue, clock } = newQueue({
      onAdd: () => seen.adds++,
      onRetry: () => seen.retries++,
      onDepth: (d) => seen.depth.push(d),
      onQueueLatency: (s) => seen.latency.push(s),
      onWorkDuration: (s) => seen.work.push(s),
    });
    queue.add('a');
    queue.add('a');
    queue.add('b');
    await clock.advance(2000);
    await queue.get();
    await clock.advance(500);
    queue.done('a');
    queue.addRateLimited('a');
    expect(seen.adds).toBe(2);
    expect(seen.retries).toBe(1);
    expect(seen.depth).toEqual([1, 2, 1]);
    expect(seen.latency).toEqual([2]);
    expect(seen.work).toEqual([0.5]);
  });

  it('matches a model of client-go semantics under any sequence of operations', async () => {
    type Op = { op: 'add' | 'get' | 'done'; key: string };
    const opArb = fc.record({
      op: fc.constantFrom<Op['op']>('add', 'get', 'done'),
      key: fc.constantFrom('a', 'b', 'c', 'd'),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 60 }), async (ops) => {
        const { queue } = newQueue();
        // Model: an ordered queue, a dirty set, a processing set.
        const modelQueue: string[] = [];
        const dirty = new Set<string>();
        const processing = new Set<string>();
        for (const { op, key } of ops) {
          if (op === 'add') {
            queue.add(key);
            if (!dirty.has(key)) {
              dirty.add(key);
              if (!processing.has(key)) modelQueue.push(key);
            }
          } else if (op === 'get') {
            if (modelQueue.length === 0) continue;
            const expected = modelQueue.shift();
            expect(await queue.get()).toBe(expected);
            if (expected !== undefined) {
              dirty.delete(expected);
              processing.add(expected);
            }
          } else if (processing.has(key)) {
            queue.done(key);
            processing.delete(key);
            if (dirty.has(key)) modelQueue.push(key);
          }
          expect(queue.len()).toBe(modelQueue.length);
        }
      }),
    );
  });
});

describe('runWorkers', () => {
  it('forgets keys whose handler succeeds and retries keys whose handler throws', async () => {
    const clock = new ManualClock();
    const queue = new WorkQueue({ clock, rateLimiter: new ItemExponentialRateLimiter(5, 1000) });
    const calls: string[] = [];
    let failuresLeft = 2;
    const running = runWorkers(queue, 2, async (key) => {
      calls.push(key);
      if (key === 'bad' && failuresLeft-- > 0) throw new Error('patch failed');
    });
    queue.add('good');
    queue.add('bad');
    await clock.advance(0);
    expect(calls.sort()).toEqual(['bad', 'good']);
    expect(queue.numRequeues('bad')).toBe(1);
    await clock.advance(5);
    expect(calls.filter((k) => k === 'bad')).toHaveLength(2);
    await clock.advance(10);
    expect(calls.filter((k) => k === 'bad')).toHaveLength(3);
    expect(queue.numRequeues('bad')).toBe(0);
    await clock.advance(10_000);
    expect(calls).toHaveLength(4);
    queue.shutDown();
    await running;
  });

  it('never runs the same key on two workers at once', async () => {
    const clock = new ManualClock();
    const queue = new WorkQueue({ clock });
    const active = new Set<string>();
    let overlaps = 0;
    let runs = 0;
    const running = runWorkers(queue, 4, async (key) => {
      if (active.has(key)) overlaps++;
      active.add(key);
      runs++;
      await new Promise<void>((resolve) => clock.setTimer(resolve, 10));
      active.delete(key);
    });
    for (let round = 0; round < 20; round++) {
      for (const key of ['a', 'b', 'a', 'c', 'a']) queue.add(key);
      await clock.advance(3);
    }
    await clock.advance(1000);
    queue.shutDown();
    await running;
    expect(overlaps).toBe(0);
    expect(runs).toBeGreaterThan(3);
  });

  it('rejects a worker count below one', async () => {
    await expect(runWorkers(new WorkQueue(), 0, () => {})).rejects.toThrow(/worker count/);
  });
});
