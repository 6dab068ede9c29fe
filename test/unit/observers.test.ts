// guarded(): an observer whose hooks may throw, made safe to call from state changes.

import { describe, expect, it } from 'vitest';
import { guarded } from '../../src/observers.js';

interface Hooks {
  seen?(a: number, b: string): void;
  broken?(): void;
  absent?(): void;
}

describe('guarded', () => {
  it('passes every argument to the hook, ignores a throw, and leaves a missing hook missing', () => {
    const calls: [number, string][] = [];
    const observer: Hooks = {
      seen: (a, b) => calls.push([a, b]) && undefined,
      broken: () => {
        throw new Error('metrics are down');
      },
    };
    const safe = guarded(observer, ['seen', 'broken', 'absent']);
    safe.seen?.(1, 'x');
    expect(() => safe.broken?.()).not.toThrow();
    expect(safe.absent).toBeUndefined();
    expect(calls).toEqual([[1, 'x']]);
  });

  it('calls a class observer with its own this, and gives no hooks for no observer', () => {
    class Counter implements Hooks {
      count = 0;
      seen(): void {
        this.count += 1;
      }
    }
    const counter = new Counter();
    guarded<Hooks>(counter, ['seen']).seen?.(1, 'y');
    expect(counter.count).toBe(1);
    expect(guarded<Hooks>(undefined, ['seen']).seen).toBeUndefined();
  });
});
