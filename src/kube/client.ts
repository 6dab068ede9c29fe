// The Kubernetes client the controller uses: plain HTTP requests over one rate-limited, timed transport.
// Every request carries our User-Agent and waits for the client-wide token bucket (client-go's qps/burst).

import { readFileSync } from 'node:fs';
import { type Clock, TokenBucket, systemClock } from '../time.js';
import type { ClusterAccess } from './access.js';
import { ConnectionPool } from './dispatcher.js';
import { ApiError } from './errors.js';
import {
  type HttpMethod,
  type HttpRequest,
  type HttpResponse,
  type HttpSend,
  createTransport,
  undiciSend,
} from './transport.js';
import { type RequestObserver } from '../controller/ports.js';

export interface KubeClientOptions {
  /** Sustained requests per second (--kube-api-qps). */
  readonly qps: number;
  /** Requests allowed at once above qps (--kube-api-burst). */
  readonly burst: number;
  /** Upper bound for one request; default 30 s. Watches are not bound by it. */
  readonly requestTimeoutMs?: number;
  /** Times a 429 is retried after its Retry-After before it is returned; default 3. */
  readonly max429Retries?: number;
  /** Default "podcidr-allocator/<package version>". */
  readonly userAgent?: string;
  readonly onRequest?: RequestObserver;
  /** Writes are refused (WriteFencedError) while this returns false; see TransportOptions.mayWrite. */
  readonly mayWrite?: () => boolean;
  readonly clock?: Clock;
  /** The HTTP exchange underneath; tests pass a fake. */
  readonly send?: HttpSend;
}

export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

export interface KubeRequest {
  readonly query?: Query;
  /** Sent as is when a string, else as JSON. */
  readonly body?: unknown;
  /** Default application/json when there is a body. */
  readonly contentType?: string;
  /** Default application/json. */
  readonly accept?: string;
  readonly signal?: AbortSignal;
}

export interface RawRequest {
  readonly query: Query;
  readonly accept: string;
  readonly signal?: AbortSignal;
}

export interface RawResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: Buffer;
}

export interface StreamResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: AsyncIterable<Uint8Array>;
}

/** The one call the API adapters need; KubeClient has it, tests fake it. */
export interface RestClient {
  request(method: HttpMethod, path: string, request?: KubeRequest): Promise<RawResponse>;
}

export interface KubeClient extends RestClient {
  readonly access: ClusterAccess;
  readonly userAgent: string;
  /** Waits for a rate-limit token; for requests that do not go through the transport. */
  throttle(signal?: AbortSignal): Promise<void>;
  /**
   * A GET through the transport (rate limit, timeout, 429 retries) whose 200 body goes to consume
   * chunk by chunk as it arrives (the returned body is then empty), so a large list is never held
   * whole; other answers come back whole.
   */
  getStreamed(path: string, request: RawRequest, consume: (chunk: Uint8Array) => void): Promise<RawResponse>;
  /** A long GET (a watch): takes a rate-limit token, then is bound only by signal. */
  stream(path: string, request: RawRequest & { readonly signal: AbortSignal }): Promise<StreamResponse>;
  /** Closes the connection pool. */
  close(): Promise<void>;
}

export function createKubeClient(access: ClusterAccess, options: KubeClientOptions): KubeClient {
  const clock = options.clock ?? systemClock;
  const bucket = new TokenBucket(options.qps, options.burst, clock);
  const userAgent = options.userAgent ?? `podcidr-allocator/${packageVersion()}`;
  const inner = options.send ?? undiciSend;
  const transport = createTransport({
    bucket,
    timeoutMs: options.requestTimeoutMs ?? 30_000,
    max429Retries: options.max429Retries,
    userAgent,
    onRequest: options.onRequest,
    mayWrite: options.mayWrite,
    clock,
    inner,
  });
  const pool = new ConnectionPool(access.proxyUrl);
  const server = access.server.replace(/\/$/, '');

  const prepare = async (method: HttpMethod, path: string, request: KubeRequest): Promise<HttpRequest> => {
    const credentials = await access.credentials();
    const headers: Record<string, string> = {
      ...credentials.headers,
      Accept: request.accept ?? 'application/json',
      // Uncompressed: gzip of large Nodes costs the API server more CPU than the bytes cost the network.
      'Accept-Encoding': 'identity',
      'User-Agent': userAgent,
    };
    let body: string | undefined;
    if (request.body !== undefined) {
      body = typeof request.body === 'string' ? request.body : JSON.stringify(request.body);
      headers['Content-Type'] = request.contentType ?? 'application/json';
    }
    return {
      method,
      url: requestUrl(server, path, request.query ?? {}),
      headers,
      ...(body !== undefined ? { body } : {}),
      ...(request.signal !== undefined ? { signal: request.signal } : {}),
      dispatcher: pool.dispatcher(credentials.tls),
    };
  };

  /** A 401 renews the credential (a rotated token, an expired exec credential) and is retried once. */
  const send = async (
    method: HttpMethod,
    path: string,
    request: KubeRequest,
    via: HttpSend,
  ): Promise<HttpResponse> => {
    const response = await via(await prepare(method, path, request));
    if (response.status !== 401 || !(await access.renew())) return response;
    await response.body.text().catch(() => undefined);
    return via(await prepare(method, path, request));
  };

  return {
    access,
    userAgent,
    throttle: (signal) => bucket.take(signal),
    request: async (method, path, request = {}) => {
      const response = await send(method, path, request, (r) => transport.send(r));
      return { status: response.status, contentType: contentTypeOf(response), body: await response.body.bytes() };
    },
    getStreamed: async (path, request, consume) => {
      const response = await send('GET', path, request, (r) => transport.send(r));
      const contentType = contentTypeOf(response);
      if (response.status !== 200) return { status: response.status, contentType, body: await response.body.bytes() };
      for await (const chunk of response.body.stream()) consume(chunk);
      return { status: 200, contentType, body: Buffer.alloc(0) };
    },
    stream: async (path, request) => {
      await bucket.take(request.signal);
      const response = await send('GET', path, request, (r) =>
        inner({ ...r, headers: { ...r.headers, 'User-Agent': userAgent } }),
      );
      return { status: response.status, contentType: contentTypeOf(response), body: response.body.stream() };
    },
    close: () => pool.close(),
  };
}

/** The parsed JSON body of a 2xx answer; any other answer throws ApiError. */
export function jsonBody<T>(response: RawResponse): T {
  if (response.status < 200 || response.status > 299) throw new ApiError(response.status, response.body);
  return JSON.parse(response.body.toString('utf8')) as T;
}

function contentTypeOf(response: HttpResponse): string {
  return response.headers['content-type'] ?? '';
}

function requestUrl(server: string, path: string, query: Query): string {
  const url = new URL(server + path);
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  return url.toString();
}

let cachedVersion: string | undefined;

/**
 * This package's version. The code runs from src/kube (tsx) or bundled in dist/bundle (the image), so
 * look upwards for our package.json.
 */
export function packageVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  cachedVersion = 'unknown';
  for (let dir = new URL('.', import.meta.url); dir.pathname !== '/'; dir = new URL('..', dir)) {
    try {
      const pkg: unknown = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8'));
      if (typeof pkg === 'object' && pkg !== null && 'name' in pkg && pkg.name === 'podcidr-allocator') {
        if ('version' in pkg && typeof pkg.version === 'string') cachedVersion = pkg.version;
        break;
      }
    } catch {
      // no package.json here: look one level up
    }
  }
  return cachedVersion;
}
