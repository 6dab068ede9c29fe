import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../../src/time.js';
import {
  type HttpMethod,
  type HttpRequest,
  type HttpResponse,
  RequestTimeoutError,
  type TransportOptions,
  WriteFencedError,
  createTransport,
} from '../../../src/kube/transport.js';
import { ManualClock } from '../../support/manual-clock.js';

interface Sent {
  readonly at: number;
  readonly headers: Record<string, string>;
  readonly signal: AbortSignal | undefined;
}

type Reply = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

/** A server stand-in: answers each request with the next reply (the last one repeats). */
class FakeHttp {
  readonly sent: Sent[] = [];
  readonly #clock: ManualClock;
  readonly #replies: Reply[];

  constructor(clock: ManualClock, replies: Reply[]) {
    this.#clock = clock;
    this.#replies = replies;
  }

  send(request: HttpRequest): Promise<HttpResponse> {
    const signal = request.signal;
    this.sent.push({ at: this.#clock.now(), headers: { ...request.headers }, signal });
    const reply = this.#replies.length > 1 ? this.#replies.shift() : this.#replies[0];
    if (reply === undefined || reply === 'hang') {
      return new Promise((_resolve, reject) => {
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }
    const text = reply.body ?? '{}';
    return Promise.resolve({
      status: reply.status,
      headers: reply.headers ?? {},
      body: {
        text: async () => text,
        bytes: async () => Buffer.from(text),
        stream: async function* () {
          yield Buffer.from(text);
        },
      },
    });
  }
}

function setup(replies: Reply[], options: Partial<TransportOptions> = {}) {
  const clock = new ManualClock();
  const http = new FakeHttp(clock, replies);
  const observed: string[] = [];
  const transport = createTransport({
    timeoutMs: 1000,
    clock,
    inner: (request: HttpRequest) => http.send(request),
    onRequest: (verb, code, seconds) => observed.push(`${verb} ${code} ${seconds}`),
    ...options,
  });
  const send = (signal?: AbortSignal, method: HttpMethod = 'GET'): Promise<HttpResponse> =>
    transport.send({ method, url: 'https://api.example/api/v1/nodes', headers: {}, ...(signal ? { signal } : {}) });
  return { clock, http, observed, send };
}

describe('createTransport', () => {
  it('sends the User-Agent on every request', async () => {
    const { http, send } = setup([{ status: 200 }], { userAgent: 'podcidr-allocator/1.2.3' });
    await send();
    expect(http.sent[0]?.headers['User-Agent']).toBe('podcidr-allocator/1.2.3');
  });

  it('holds a burst beyond the bucket back and releases it at qps, dropping nothing', async () => {
    const clock = new ManualClock();
    const { http, send } = setup([{ status: 200 }], { bucket: new TokenBucket(5, 3, clock), clock });
    const all = Promise.all(Array.from({ length: 8 }, () => send()));
    await clock.advance(0);
    expect(http.sent).toHaveLength(3);
    await clock.advance(200);
    expect(http.sent).toHaveLength(4);
    await clock.advance(800);
    expect(http.sent).toHaveLength(8);
    expect((await all).map((r) => r.status)).toEqual(Array(8).fill(200));
  });

  it('fails a request that gets no answer within the timeout with RequestTimeoutError', async () => {
    const { clock, send, observed } = setup(['hang'], { timeoutMs: 500 });
    const result = send().catch((err: unknown) => err);
    await clock.advance(499);
    await clock.advance(1);
    const err = await result;
    expect(err).toBeInstanceOf(RequestTimeoutError);
    expect(observed).toEqual(['GET <error> 0.5']);
  });

  it('stops the timeout once the response body has been read', async () => {
    const { clock, send } = setup([{ status: 200, body: '{"kind":"NodeList"}' }]);
    const response = await send();
    expect(clock.pending()).toBe(1);
    expect(await response.body.text()).toBe('{"kind":"NodeList"}');
    expect(clock.pending()).toBe(0);
  });

  it('stops the timeout once a streamed body has been read to its end', async () => {
    const { clock, send } = setup([{ status: 200, body: '{"kind":"NodeList"}' }]);
    const response = await send();
    const chunks: string[] = [];
    for await (const chunk of response.body.stream()) {
      expect(clock.pending()).toBe(1);
      chunks.push(Buffer.from(chunk).toString());
    }
    expect(chunks.join('')).toBe('{"kind":"NodeList"}');
    expect(clock.pending()).toBe(0);
  });

  it('honours a signal set by the caller as well as its own timeout', async () => {
    const { clock, send } = setup(['hang'], { timeoutMs: 60_000 });
    const caller = new AbortController();
    const result = send(caller.signal).catch((err: unknown) => err);
    await clock.advance(10);
    caller.abort(new Error('caller gave up'));
    expect(await result).toMatchObject({ message: 'caller gave up' });
  });

  it('retries a 429 after its Retry-After and returns the later answer', async () => {
    const { clock, http, send, observed } = setup([
      { status: 429, headers: { 'retry-after': '2' } },
      { status: 429, headers: {} },
      { status: 200 },
    ]);
    const result = send();
    await clock.advance(1999);
    expect(http.sent).toHaveLength(1);
    await clock.advance(1);
    expect(http.sent).toHaveLength(2);
    await clock.advance(1000);
    expect((await result).status).toBe(200);
    expect(observed.map((o) => o.split(' ')[1])).toEqual(['429', '429', '200']);
  });

  it('gives up on 429 after the configured retries and returns the 429', async () => {
    const { clock, http, send } = setup([{ status: 429, headers: { 'retry-after': '1' } }], { max429Retries: 2 });
    const result = send();
    await clock.advance(10_000);
    expect((await result).status).toBe(429);
    expect(http.sent).toHaveLength(3);
  });

  it('caps a long Retry-After', async () => {
    const { clock, http, send } = setup([{ status: 429, headers: { 'retry-after': '3600' } }, { status: 200 }], {
      maxRetryAfterMs: 5000,
    });
    const result = send();
    await clock.advance(5000);
    expect(http.sent).toHaveLength(2);
    expect((await result).status).toBe(200);
  });

  it('takes a fresh token for every retry', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1, 1, clock);
    const { http, send } = setup([{ status: 429, headers: { 'retry-after': '0' } }, { status: 200 }], {
      bucket,
      clock,
    });
    const result = send();
    await clock.advance(999);
    expect(http.sent).toHaveLength(1);
    await clock.advance(1);
    expect(http.sent).toHaveLength(2);
    expect((await result).status).toBe(200);
  });

  it('rejects a timeout that is not positive', () => {
    expect(() => createTransport({ timeoutMs: 0 })).toThrow(/timeout must be > 0/);
  });

  it('refuses a write when mayWrite says no after the rate-limit wait, and still sends reads', async () => {
    let allowed = true;
    const clock = new ManualClock();
    const { http, send } = setup([{ status: 200 }], { bucket: new TokenBucket(1, 1, clock), clock, mayWrite: () => allowed });
    const first = send(undefined, 'PATCH');
    await clock.advance(0);
    await first;
    expect(http.sent).toHaveLength(1);
    // The second write waits a second for its token; leadership ends meanwhile.
    const refused = expect(send(undefined, 'PATCH')).rejects.toBeInstanceOf(WriteFencedError);
    allowed = false;
    await clock.advance(1000);
    await refused;
    expect(http.sent).toHaveLength(1);
    const read = send(undefined, 'GET');
    await clock.advance(1000);
    await read;
    expect(http.sent).toHaveLength(2);
  });
});
