import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteQueue } from '../../../src/kube/protobuf.js';

type Op = { kind: 'push'; bytes: Uint8Array } | { kind: 'take' | 'drop' | 'peek'; n: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('push' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ kind: fc.constantFrom('take' as const, 'drop' as const, 'peek' as const), n: fc.nat({ max: 60 }) }),
);

/** The varint at model[offset], as a plain reading of the bytes gives it. */
function modelVarint(model: number[], offset: number): { value: number; size: number } | undefined {
  let value = 0;
  for (let i = 0; i < 10 && offset + i < model.length; i++) {
    const byte = model[offset + i] ?? 0;
    value += (byte & 0x7f) * 128 ** i;
    if (byte < 0x80) return { value, size: i + 1 };
  }
  return undefined;
}

describe('ByteQueue', () => {
  it('gives the bytes of a plain array however they were pushed, taken, dropped and peeked', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const queue = new ByteQueue();
        let model: number[] = [];
        for (const o of ops) {
          if (o.kind === 'push') {
            queue.push(o.bytes);
            model = [...model, ...o.bytes];
          } else if (o.kind === 'take') {
            const n = Math.min(o.n, model.length);
            expect([...queue.take(n)]).toEqual(model.slice(0, n));
            model = model.slice(n);
          } else if (o.kind === 'drop') {
            expect(queue.drop(o.n)).toBe(Math.min(o.n, model.length));
            model = model.slice(o.n);
          } else {
            const offset = Math.min(o.n, model.length);
            // An over-long varint throws in both; the model stops at 10 bytes and says undefined.
            const want = modelVarint(model, offset);
            if (want !== undefined || model.length - offset < 10) expect(queue.peekVarint(offset)).toEqual(want);
          }
          expect(queue.length).toBe(model.length);
        }
      }),
    );
  });
});
