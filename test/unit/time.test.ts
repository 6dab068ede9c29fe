// repeat(): a timer on the injected clock that runs until its signal aborts.

import { describe, expect, it } from 'vitest';
import { repeat } from '../../src/time.js';
import { ManualClock } from '../support/manual-clock.js';

describe('repeat', () => {
  it('runs every interval from one interval after the start, and never after the signal aborts', async () => {
    const clock = new ManualClock();
    const stop = new AbortController();
    const at: number[] = [];
    repeat(clock, 100, stop.signal, () => at.push(clock.now()));
    await clock.advance(99);
    expect(at).toEqual([]);
    await clock.advance(251);
    expect(at).toEqual([100, 200, 300]);
    stop.abort();
    await clock.advance(1000);
    expect(at).toEqual([100, 200, 300]);
    expect(clock.pending()).toBe(0);
  });

  it('starts nothing for a signal already aborted, and stops when the callback aborts it', async () => {
    const clock = new ManualClock();
    repeat(clock, 10, AbortSignal.abort(), () => expect.unreachable());
    expect(clock.pending()).toBe(0);
    const stop = new AbortController();
    let runs = 0;
    repeat(clock, 10, stop.signal, () => {
      runs += 1;
      if (runs === 2) stop.abort();
    });
    await clock.advance(100);
    expect(runs).toBe(2);
    expect(clock.pending()).toBe(0);
  });
});
