// A stand-in for KubeClient.stream: each call gets a Feed the test writes watch lines into.

import type { Query, StreamResponse } from '../../../src/kube/client.js';
import type { StreamClient } from '../../../src/kube/json-watch.js';

/** A response body the test writes into; aborting the request's signal fails it, as undici does. */
export class Feed implements AsyncIterable<Uint8Array> {
  readonly #queue: (Uint8Array | Error | null)[] = [];
  #wake: (() => void) | undefined;

  /** One watch event as a JSON line; split in two chunks to exercise reassembly. */
  event(type: string, object: unknown): void {
    const line = Buffer.from(`${JSON.stringify({ type, object })}\n`);
    const cut = Math.floor(line.length / 2);
    this.#put(line.subarray(0, cut));
    this.#put(line.subarray(cut));
  }

  end(): void {
    this.#put(null);
  }

  fail(err: Error): void {
    this.#put(err);
  }

  #put(item: Uint8Array | Error | null): void {
    this.#queue.push(item);
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      while (this.#queue.length === 0) await new Promise<void>((resolve) => (this.#wake = resolve));
      const item = this.#queue.shift();
      if (item === null || item === undefined) return;
      if (item instanceof Error) throw item;
      yield item;
    }
  }
}

export interface StreamCall {
  readonly path: string;
  readonly query: Query;
  readonly accept: string;
  readonly signal: AbortSignal;
  readonly feed: Feed;
}

export class FakeStream implements StreamClient {
  readonly calls: StreamCall[] = [];
  /** When set, the next stream is refused with this status and body. */
  refuse: { status: number; body: unknown } | undefined;

  async stream(
    path: string,
    request: { readonly query: Query; readonly accept: string; readonly signal: AbortSignal },
  ): Promise<StreamResponse> {
    const feed = new Feed();
    this.calls.push({ path, ...request, feed });
    request.signal.addEventListener('abort', () => feed.fail(new DOMException('aborted', 'AbortError')), { once: true });
    if (this.refuse !== undefined) {
      const { status, body } = this.refuse;
      return { status, contentType: 'application/json', body: (async function* () { yield Buffer.from(JSON.stringify(body)); })() };
    }
    return { status: 200, contentType: 'application/json', body: feed };
  }

  get last(): StreamCall {
    const call = this.calls.at(-1);
    if (call === undefined) throw new Error('no watch');
    return call;
  }
}

/** Lets pending stream reads and handlers run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
