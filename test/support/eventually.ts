// Polling for tests that wait on something outside their control (a control plane, a process):
// ask again, on the real clock, until the answer is there or the time is up.

import { sleep, systemClock } from '../../src/time.js';

export interface EventuallyOptions {
  /** Give up after this long; 30 s unless told. */
  readonly timeoutMs?: number;
  /** Pause between two probes; 100 ms unless told. */
  readonly intervalMs?: number;
  /** The error's message on timeout; a function is read then, so it can tell the last state seen. */
  readonly message?: string | (() => string);
}

/**
 * Calls probe until it returns something other than undefined, and returns that. A probe that
 * throws counts as "not yet"; after timeoutMs the error thrown names the wait and carries the
 * probe's last error as its cause.
 */
export async function eventually<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  { timeoutMs = 30_000, intervalMs = 100, message }: EventuallyOptions = {},
): Promise<T> {
  const deadline = systemClock.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (systemClock.now() > deadline) {
      const text = typeof message === 'function' ? message() : (message ?? `condition not met within ${timeoutMs} ms`);
      throw new Error(text, { cause: last });
    }
    await sleep(systemClock, intervalMs);
  }
}
