// The handoff kept fresh while a term runs: written when the cache moved, never two writes at once,
// and a failed write tried again at the next refresh.

import { describe, expect, it } from 'vitest';
import { HandoffRefresh } from '../../../src/term/handoff-refresh.js';
import type { Handoff } from '../../../src/term/handoff.js';
import { ManualClock, settle } from '../../support/manual-clock.js';

const INTERVAL = 1_000;

/** A cache whose resourceVersion the test moves, and a store whose writes the test answers. */
class Fixture {
  readonly clock = new ManualClock();
  readonly stop = new AbortController();
  resourceVersion = '';
  /** Handoffs taken: each walks every cached node. */
  taken = 0;
  readonly written: string[] = [];
  readonly answers: ((ok: boolean) => void)[] = [];
  readonly refresh: HandoffRefresh;

  constructor(intervalMs = INTERVAL) {
    this.refresh = new HandoffRefresh({
      intervalMs,
      clock: this.clock,
      resourceVersion: () => this.resourceVersion,
      take: () => {
        this.taken++;
        return this.resourceVersion === '' ? undefined : { resourceVersion: this.resourceVersion, ranges: [] };
      },
      write: (handoff: Handoff) => {
        this.written.push(handoff.resourceVersion);
        return new Promise<boolean>((resolve) => this.answers.push(resolve));
      },
    });
  }

  async answer(ok: boolean): Promise<void> {
    this.answers.shift()?.(ok);
    await settle();
  }
}

describe('HandoffRefresh', () => {
  it('writes at each interval once the cache has a resourceVersion, and only when it moved', async () => {
    const f = new Fixture();
    f.refresh.start(f.stop.signal);
    await f.clock.advance(INTERVAL);
    expect(f.written).toEqual([]);

    f.resourceVersion = '10';
    await f.clock.advance(INTERVAL);
    await f.answer(true);
    await f.clock.advance(INTERVAL);
    f.resourceVersion = '12';
    await f.clock.advance(INTERVAL);
    await f.answer(true);

    expect(f.written).toEqual(['10', '12']);
    // Only when the cache had moved: not before it had a resourceVersion, nor at 10 again.
    expect(f.taken).toBe(2);
  });

  it('starts no write while one is in flight', async () => {
    const f = new Fixture();
    f.resourceVersion = '10';
    f.refresh.start(f.stop.signal);
    await f.clock.advance(INTERVAL);
    f.resourceVersion = '11';
    await f.clock.advance(INTERVAL);
    expect(f.written).toEqual(['10']);

    await f.answer(true);
    await f.clock.advance(INTERVAL);
    expect(f.written).toEqual(['10', '11']);
  });

  it('writes the same resourceVersion again after a failed write', async () => {
    const f = new Fixture();
    f.resourceVersion = '10';
    f.refresh.start(f.stop.signal);
    await f.clock.advance(INTERVAL);
    await f.answer(false);
    await f.clock.advance(INTERVAL);

    expect(f.written).toEqual(['10', '10']);
  });

  it('settles only once the write in flight is answered', async () => {
    const f = new Fixture();
    f.resourceVersion = '10';
    f.refresh.start(f.stop.signal);
    await f.clock.advance(INTERVAL);
    let settled = false;
    void f.refresh.settled().then(() => (settled = true));
    await settle();
    expect(settled).toBe(false);

    await f.answer(true);
    expect(settled).toBe(true);
  });

  it('stops refreshing when the term ends', async () => {
    const f = new Fixture();
    f.resourceVersion = '10';
    f.refresh.start(f.stop.signal);
    f.stop.abort();
    await f.clock.advance(INTERVAL * 3);

    expect(f.written).toEqual([]);
  });

  it('never refreshes with an interval of 0', async () => {
    const f = new Fixture(0);
    f.resourceVersion = '10';
    f.refresh.start(f.stop.signal);
    await f.clock.advance(INTERVAL * 3);

    expect(f.written).toEqual([]);
    expect(f.clock.pending()).toBe(0);
  });
});
