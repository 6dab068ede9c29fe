// The HTTP layer under every API call: a client-wide token bucket, a per-request timeout, 429 retries.
// Requests wait for a token (never dropped); a request that outlives its timeout fails with RequestTimeoutError.

import { type Dispatcher, request as undiciRequest } from 'undici';
import { type Clock, type TokenBucket, sleep, systemClock } from '../time.js';
import type { RequestObserver } from '../controller/ports.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  readonly method: HttpMethod;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly signal?: AbortSignal;
  readonly dispatcher?: Dispatcher;
}

/** A response body, read once in one of three ways. */
export interface ResponseBody {
  text(): Promise<string>;
  bytes(): Promise<Buffer>;
  stream(): AsyncIterable<Uint8Array>;
}

export interface HttpResponse {
  readonly status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: ResponseBody;
}

/** One HTTP exchange; undici's request() in production, a fake in tests. */
export type HttpSend = (request: HttpRequest) => Promise<HttpResponse>;

/** The request did not complete within its timeout; whether the server acted on it is unknown. */
export class RequestTimeoutError extends Error {
  constructor(
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(`request timed out after ${timeoutMs} ms`, options);
    this.name = 'RequestTimeoutError';
  }
}

/** A write refused before it was sent, because this replica may not write any more (see mayWrite). */
export class WriteFencedError extends Error {
  constructor(verb: string) {
    super(`${verb} not sent: this replica no longer holds the leader lease`);
    this.name = 'WriteFencedError';
  }
}

export interface TransportOptions {
  /** Client-side rate limit shared by every request; none when absent. */
  readonly bucket?: TokenBucket;
  /** Upper bound for one attempt, from sending to the end of the response body. */
  readonly timeoutMs: number;
  /** 429 responses are retried this many times after Retry-After; then the 429 is returned. Default 3. */
  readonly max429Retries?: number;
  /** Longest Retry-After honoured. Default 30 s. */
  readonly maxRetryAfterMs?: number;
  readonly userAgent?: string;
  readonly onRequest?: RequestObserver;
  readonly clock?: Clock;
  /**
   * Asked right before a write (POST, PUT, PATCH, DELETE) leaves, after its rate-limit wait; false
   * fails it with WriteFencedError. Reads are never fenced (standbys keep their cache warm).
   */
  readonly mayWrite?: () => boolean;
  /** The HTTP exchange underneath; undici's request() by default. Tests pass a fake. */
  readonly inner?: HttpSend;
}

export interface Transport {
  send(request: HttpRequest): Promise<HttpResponse>;
}

export function createTransport(options: TransportOptions): Transport {
  return new RateLimitedTransport(options);
}

class RateLimitedTransport implements Transport {
  readonly #bucket: TokenBucket | undefined;
  readonly #timeoutMs: number;
  readonly #max429Retries: number;
  readonly #maxRetryAfterMs: number;
  readonly #userAgent: string | undefined;
  readonly #onRequest: RequestObserver | undefined;
  readonly #clock: Clock;
  readonly #inner: HttpSend;
  readonly #mayWrite: (() => boolean) | undefined;

  constructor(options: TransportOptions) {
    if (!(options.timeoutMs > 0)) throw new RangeError(`request timeout must be > 0 ms, got ${options.timeoutMs}`);
    this.#bucket = options.bucket;
    this.#timeoutMs = options.timeoutMs;
    this.#max429Retries = options.max429Retries ?? 3;
    this.#maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
    this.#userAgent = options.userAgent;
    this.#onRequest = options.onRequest;
    this.#clock = options.clock ?? systemClock;
    this.#inner = options.inner ?? undiciSend;
    this.#mayWrite = options.mayWrite;
  }

  async send(request: HttpRequest): Promise<HttpResponse> {
    const headers = this.#userAgent === undefined ? request.headers : { ...request.headers, 'User-Agent': this.#userAgent };
    // The caller's signal (e.g. a lease deadline) applies on every attempt, next to our own timeout.
    const callerSignal = request.signal;
    const verb = request.method;
    for (let attempt = 0; ; attempt++) {
      await this.#bucket?.take(callerSignal);
      // Checked after the wait, which can be long: leadership may have ended meanwhile.
      if (this.#mayWrite !== undefined && verb !== 'GET' && !this.#mayWrite()) throw new WriteFencedError(verb);
      const timeout = new AbortController();
      const cancelTimer = this.#clock.setTimer(
        () => timeout.abort(new RequestTimeoutError(this.#timeoutMs)),
        this.#timeoutMs,
      );
      const signal = callerSignal ? AbortSignal.any([callerSignal, timeout.signal]) : timeout.signal;
      const started = this.#clock.now();
      let response: HttpResponse;
      try {
        response = await this.#inner({ ...request, headers, signal });
      } catch (err) {
        cancelTimer();
        this.#observe(verb, '<error>', started);
        if (timeout.signal.aborted && !(err instanceof RequestTimeoutError)) {
          throw new RequestTimeoutError(this.#timeoutMs, { cause: err });
        }
        throw err;
      }
      this.#observe(verb, String(response.status), started);
      if (response.status === 429 && attempt < this.#max429Retries) {
        const waitMs = this.#retryAfterMs(response.headers['retry-after']);
        // Read the body so the connection returns to the pool.
        await response.body.text().catch(() => undefined);
        cancelTimer();
        await sleep(this.#clock, waitMs, callerSignal);
        continue;
      }
      return { ...response, body: releasingOnBody(response.body, cancelTimer) };
    }
  }

  #observe(verb: string, code: string, started: number): void {
    this.#onRequest?.(verb, code, (this.#clock.now() - started) / 1000);
  }

  /** Retry-After is delta-seconds or an HTTP date; absent or unreadable means one second. */
  #retryAfterMs(header: string | undefined): number {
    let ms = 1000;
    if (header !== undefined && header.trim() !== '') {
      const seconds = Number(header);
      if (Number.isFinite(seconds)) ms = seconds * 1000;
      else {
        const date = Date.parse(header);
        if (!Number.isNaN(date)) ms = date - Date.now();
      }
    }
    return Math.min(this.#maxRetryAfterMs, Math.max(0, ms));
  }
}

/** The timeout keeps running while the body streams in; it is cleared once the body has been read. */
function releasingOnBody(body: ResponseBody, release: () => void): ResponseBody {
  return {
    text: () => body.text().finally(release),
    bytes: () => body.bytes().finally(release),
    stream: () => releasingStream(body.stream(), release),
  };
}

async function* releasingStream(chunks: AsyncIterable<Uint8Array>, release: () => void): AsyncGenerator<Uint8Array> {
  try {
    yield* chunks;
  } finally {
    release();
  }
}

/**
 * undici's request() rather than fetch(): it allocates far less per call (no WHATWG Request,
 * Response, Headers or web stream).
 */
export async function undiciSend(request: HttpRequest): Promise<HttpResponse> {
  const response = await undiciRequest(request.url, {
    method: request.method,
    body: request.body,
    headers: request.headers,
    signal: request.signal,
    dispatcher: request.dispatcher,
  });
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return {
    status: response.statusCode,
    headers,
    body: {
      text: () => response.body.text(),
      bytes: async () => Buffer.from(await response.body.arrayBuffer()),
      stream: () => response.body,
    },
  };
}
