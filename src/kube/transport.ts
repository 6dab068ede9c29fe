// The HTTP layer under every API call: a client-wide token bucket, a per-request timeout, 429 retries.
// Requests wait for a token (never dropped); a request that outlives its timeout fails with RequestTimeoutError.

import * as k8s from '@kubernetes/client-node';
import { Readable } from 'node:stream';
import { type Dispatcher, request as undiciRequest } from 'undici';
import { type Clock, type TokenBucket, sleep, systemClock } from '../controller/rate-limiter.js';

/** Called once per HTTP attempt: verb (GET, PATCH…), status code or "<error>", seconds to the response headers. */
export type RequestObserver = (verb: string, code: string, seconds: number) => void;

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
  /** The HTTP library underneath; client-node's undici fetch by default. Tests pass a fake. */
  readonly inner?: k8s.PromiseHttpLibrary;
}

/** An HttpLibrary for k8s.createConfiguration({ httpApi }). */
export function createTransport(options: TransportOptions): k8s.HttpLibrary {
  const transport = new Transport(options);
  return k8s.wrapHttpLibrary({ send: (request) => transport.send(request) });
}

class Transport {
  readonly #bucket: TokenBucket | undefined;
  readonly #timeoutMs: number;
  readonly #max429Retries: number;
  readonly #maxRetryAfterMs: number;
  readonly #userAgent: string | undefined;
  readonly #onRequest: RequestObserver | undefined;
  readonly #clock: Clock;
  readonly #inner: k8s.PromiseHttpLibrary;
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
    this.#inner = options.inner ?? requestLibrary();
    this.#mayWrite = options.mayWrite;
  }

  async send(request: k8s.RequestContext): Promise<k8s.ResponseContext> {
    if (this.#userAgent !== undefined) request.setHeaderParam('User-Agent', this.#userAgent);
    // A signal set by per-call middleware (e.g. a caller's deadline) still applies on every attempt.
    const callerSignal = request.getSignal();
    const verb = request.getHttpMethod();
    for (let attempt = 0; ; attempt++) {
      await this.#bucket?.take(callerSignal);
      // Checked after the wait, which can be long: leadership may have ended meanwhile.
      if (this.#mayWrite !== undefined && verb !== k8s.HttpMethod.GET && !this.#mayWrite()) {
        throw new WriteFencedError(verb);
      }
      const timeout = new AbortController();
      const cancelTimer = this.#clock.setTimer(
        () => timeout.abort(new RequestTimeoutError(this.#timeoutMs)),
        this.#timeoutMs,
      );
      request.setSignal(callerSignal ? AbortSignal.any([callerSignal, timeout.signal]) : timeout.signal);
      const started = this.#clock.now();
      let response: k8s.ResponseContext;
      try {
        response = await this.#inner.send(request);
      } catch (err) {
        cancelTimer();
        this.#observe(verb, '<error>', started);
        if (timeout.signal.aborted && !(err instanceof RequestTimeoutError)) {
          throw new RequestTimeoutError(this.#timeoutMs, { cause: err });
        }
        throw err;
      }
      this.#observe(verb, String(response.httpStatusCode), started);
      if (response.httpStatusCode === 429 && attempt < this.#max429Retries) {
        const waitMs = this.#retryAfterMs(response.headers['retry-after']);
        // Read the body so the connection returns to the pool.
        await response.body.text().catch(() => undefined);
        cancelTimer();
        await sleep(this.#clock, waitMs, callerSignal);
        continue;
      }
      return releasingOnBody(response, cancelTimer);
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
function releasingOnBody(response: k8s.ResponseContext, release: () => void): k8s.ResponseContext {
  const body = response.body;
  const wrapped: k8s.ResponseBody = {
    text: () => body.text().finally(release),
    binary: () => body.binary().finally(release),
    stream: () => body.stream()?.pipeThrough(new TransformStream({ flush: release })) ?? null,
  };
  return new k8s.ResponseContext(response.httpStatusCode, response.headers, wrapped);
}

/**
 * In place of client-node's IsomorphicFetchHttpLibrary: undici's request() rather than fetch(), which
 * allocates far less per call (no WHATWG Request, Response, Headers or web stream), and whose
 * binary() works (the fetch library's calls Response.buffer(), which undici's Response lacks).
 */
function requestLibrary(): k8s.PromiseHttpLibrary {
  return {
    send: async (request) => {
      const response = await undiciRequest(request.getUrl(), {
        method: request.getHttpMethod().toString() as Dispatcher.HttpMethod,
        body: request.getBody() as string | undefined,
        headers: request.getHeaders(),
        signal: request.getSignal(),
        dispatcher: request.getDispatcher(),
      });
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(response.headers)) {
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      const body: k8s.ResponseBody = {
        text: () => response.body.text(),
        binary: async () => Buffer.from(await response.body.arrayBuffer()),
        stream: () => Readable.toWeb(response.body) as ReadableStream<Uint8Array>,
      };
      return new k8s.ResponseContext(response.statusCode, headers, body);
    },
  };
}
