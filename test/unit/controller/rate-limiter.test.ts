import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BucketRateLimiter,
  ItemExponentialRateLimiter,
  MaxOfRateLimiter,
  defaultControllerRateLimiter,
} from '../../../src/controller/rate-limiter.js';
import { TokenBucket, sleep } from '../../../src/time.js';
import { ManualClock } from '../../support/manual-clock.js';

describe('TokenBucket', () => {
  it('lets a full burst through without delay, then spaces callers by 1/qps', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(5, 10, clock);
    const delays = Array.from({ length: 13 }, () => bucket.reserve());
    expect(delays.slice(0, 10)).toEqual(Array(10).fill(0));
    expect(delays.slice(10)).toEqual([200, 400, 600]);
  });

  it('refills at qps up to burst and no further', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10, 3, clock);
    for (let i = 0; i < 3; i++) bucket.reserve();
    expect(bucket.available()).toBe(0);
    await clock.advance(100);
    expect(bucket.available()).toBeCloseTo(1, 9);
    await clock.advance(60_000);
    expect(bucket.available()).toBe(3);
  });

  it('delays rather than drops: every taker eventually proceeds, in order', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(2, 1, clock);
    const done: number[] = [];
    const takers = [0, 1, 2, 3].map((i) => bucket.take().then(() => done.push(i)));
    await clock.advance(0);
    expect(done).toEqual([0]);
    await clock.advance(500);
    expect(done).toEqual([0, 1]);
    await clock.advance(1000);
    expect(done).toEqual([0, 1, 2, 3]);
    await Promise.all(takers);
  });

  it('handles a very large qps without ever delaying or producing NaN', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(Number.POSITIVE_INFINITY, 1, clock);
    for (let i = 0; i < 1000; i++) expect(bucket.reserve()).toBe(0);
    const fast = new TokenBucket(1e12, 1, clock);
    for (let i = 0; i < 1000; i++) expect(fast.reserve()).toBeLessThan(1e-6);
  });

  it('rejects a zero or negative qps and a burst below one', () => {
    expect(() => new TokenBucket(0, 1)).toThrow(/qps must be > 0/);
    expect(() => new TokenBucket(-1, 1)).toThrow(/qps must be > 0/);
    expect(() => new TokenBucket(Number.NaN, 1)).toThrow(/qps must be > 0/);
    expect(() => new TokenBucket(1, 0)).toThrow(/burst must be an integer >= 1/);
    expect(() => new TokenBucket(1, 1.5)).toThrow(/burst must be an integer >= 1/);
  });

  it('never lets more than burst + qps × window requests act in any time window', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 500 }), { minLength: 1, maxLength: 200 }),
        (qps, burst, gaps) => {
          const clock = new ManualClock();
          const bucket = new TokenBucket(qps, burst, clock);
          // Each request acts at the time the bucket tells it to.
          const actAt: number[] = [];
          for (const gap of gaps) {
            clock.jump(gap);
            actAt.push(clock.now() + bucket.reserve());
          }
          actAt.sort((a, b) => a - b);
          for (let i = 0; i < actAt.length; i++) {
            for (let j = i; j < actAt.length; j++) {
              const window = ((actAt[j] ?? 0) - (actAt[i] ?? 0)) / 1000;
              expect(j - i + 1).toBeLessThanOrEqual(burst + window * qps + 1e-6);
            }
          }
        },
      ),
    );
  });
});

describe('sleep', () => {
  it('rejects with the abort reason when the signal fires before the time is up', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    const slept = sleep(clock, 1000, controller.signal);
    controller.abort(new Error('stopped'));
    await expect(slept).rejects.toThrow('stopped');
    expect(clock.pending()).toBe(0);
  });
});

describe('ItemExponentialRateLimiter', () => {
  it('doubles per failure from the base and caps at the maximum', () => {
    const limiter = new ItemExponentialRateLimiter<string>(5, 1_000_000);
    const delays = Array.from({ length: 22 }, () => limiter.when('a'));
    expect(delays.slice(0, 4)).toEqual([5, 10, 20, 40]);
    expect(delays[17]).toBe(655_360);
    expect(delays[18]).toBe(1_000_000);
    expect(delays[21]).toBe(1_000_000);
    expect(limiter.numRequeues('a')).toBe(22);
  });

  it('keeps keys independent and starts over after forget', () => {
    const limiter = new ItemExponentialRateLimiter<string>(5, 1000);
    limiter.when('a');
    limiter.when('a');
    expect(limiter.when('b')).toBe(5);
    limiter.forget('a');
    expect(limiter.numRequeues('a')).toBe(0);
    expect(limiter.when('a')).toBe(5);
  });

  it('stays at the maximum after thousands of failures', () => {
    const limiter = new ItemExponentialRateLimiter<string>(5, 1000);
    for (let i = 0; i < 5000; i++) limiter.when('a');
    expect(limiter.when('a')).toBe(1000);
  });
});

describe('defaultControllerRateLimiter', () => {
  it('uses per-key backoff while the overall bucket has tokens', () => {
    const limiter = defaultControllerRateLimiter<string>(new ManualClock());
    expect([limiter.when('a'), limiter.when('a'), limiter.when('a')]).toEqual([5, 10, 20]);
  });

  it('is limited by the 10 qps bucket once 100 retries have been spent', () => {
    const limiter = defaultControllerRateLimiter<string>(new ManualClock());
    for (let i = 0; i < 100; i++) expect(limiter.when(`node-${i}`)).toBe(5);
    expect(limiter.when('node-100')).toBe(100);
    expect(limiter.when('node-101')).toBe(200);
  });

  it('forgets a key in every limiter it combines', () => {
    const clock = new ManualClock();
    const limiter = new MaxOfRateLimiter<string>(
      new ItemExponentialRateLimiter(5, 1000),
      new ItemExponentialRateLimiter(1, 1000),
      new BucketRateLimiter(new TokenBucket(10, 100, clock)),
    );
    limiter.when('a');
    limiter.when('a');
    expect(limiter.numRequeues('a')).toBe(2);
    limiter.forget('a');
    expect(limiter.numRequeues('a')).toBe(0);
    expect(limiter.when('a')).toBe(5);
  });
});
