// The Kubernetes client the controller uses: API classes sharing one rate-limited, timed transport.
// Every request carries our User-Agent and waits for the client-wide token bucket (client-go's qps/burst).

import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { request as undiciRequest } from 'undici';
import { type Clock, TokenBucket, systemClock } from '../controller/rate-limiter.js';
import { withSharedConnections } from './dispatcher.js';
import { type RequestObserver, createTransport } from './transport.js';

export interface KubeClientOptions {
  /** Sustained requests per second (--kube-api-qps). */
  readonly qps: number;
  /** Requests allowed at once above qps (--kube-api-burst). */
  readonly burst: number;
  /** Upper bound for one request; default 30 s. Watches are not bound by it. */
  readonly requestTimeoutMs?: number;
  /** Times a 429 is retried after its Retry-After before it is returned; default 3. */
  readonly max429Retries?: number;
  /**
   * k8s.Watch aborts a stream that is silent this long (its default, 30 s, is shorter than the
   * server's one-minute bookmark interval). Default 6 min: above the informer's 5 min watchdog,
   * which then decides. Bookmarks count as activity.
   */
  readonly watchInactivityTimeoutMs?: number;
  /** Default "podcidr-allocator/<package version>". */
  readonly userAgent?: string;
  readonly onRequest?: RequestObserver;
  /** Writes are refused (WriteFencedError) while this returns false; see TransportOptions.mayWrite. */
  readonly mayWrite?: () => boolean;
  readonly clock?: Clock;
}

export interface KubeClient {
  readonly kubeConfig: k8s.KubeConfig;
  readonly core: k8s.CoreV1Api;
  readonly events: k8s.EventsV1Api;
  readonly coordination: k8s.CoordinationV1Api;
  /** For streams; it bypasses the transport, so callers take a token with throttle() first. */
  readonly watch: k8s.Watch;
  readonly userAgent: string;
  /** Waits for a rate-limit token; for requests that do not go through the API classes. */
  throttle(signal?: AbortSignal): Promise<void>;
  /** Any other generated API class on the same transport. */
  makeApi<T>(api: new (configuration: k8s.Configuration) => T): T;
  /**
   * A GET through the transport (rate limit, timeout, 429 retries) whose 200 body goes to consume
   * chunk by chunk as it arrives (the returned body is then empty), so a large list is never held
   * whole; other answers come back whole.
   */
  getStreamed(path: string, request: RawRequest, consume: (chunk: Uint8Array) => void): Promise<RawResponse>;
  /** A long GET (a watch): takes a rate-limit token, then is bound only by signal. */
  stream(path: string, request: RawRequest & { readonly signal: AbortSignal }): Promise<StreamResponse>;
}

export interface RawRequest {
  readonly query: Readonly<Record<string, string | number | boolean | undefined>>;
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

export function createKubeClient(kubeConfig: k8s.KubeConfig, options: KubeClientOptions): KubeClient {
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) throw new Error('the Kubernetes client configuration has no current cluster');
  const clock = options.clock ?? systemClock;
  const bucket = new TokenBucket(options.qps, options.burst, clock);
  const userAgent = options.userAgent ?? `podcidr-allocator/${packageVersion()}`;
  const httpApi = createTransport({
    bucket,
    timeoutMs: options.requestTimeoutMs ?? 30_000,
    max429Retries: options.max429Retries,
    userAgent,
    onRequest: options.onRequest,
    mayWrite: options.mayWrite,
    clock,
  });
  // A configuration of our own (not makeApiClient) so that the transport is ours; it also drops
  // client-node's default User-Agent middleware, which is why the transport sets the header.
  const pooled = withSharedConnections(kubeConfig);
  const configuration = k8s.createConfiguration({
    baseServer: new k8s.ServerConfiguration(cluster.server, {}),
    authMethods: { default: pooled },
    httpApi,
  });
  const makeApi = <T>(api: new (c: k8s.Configuration) => T): T => new api(configuration);
  const prepare = async (path: string, request: RawRequest): Promise<k8s.RequestContext> => {
    const context = new k8s.RequestContext(requestUrl(cluster.server, path, request.query), k8s.HttpMethod.GET);
    context.setHeaderParam('Accept', request.accept);
    // Uncompressed: gzip of large Nodes costs the API server more CPU than the bytes cost the network.
    context.setHeaderParam('Accept-Encoding', 'identity');
    context.setHeaderParam('User-Agent', userAgent);
    if (request.signal) context.setSignal(request.signal);
    await pooled.applySecurityAuthentication(context);
    return context;
  };
  const watch = new k8s.Watch(withUserAgent(pooled, userAgent));
  // requestTimeoutMs is private in the typings but is the only way to set the inactivity timeout.
  Reflect.set(watch, 'requestTimeoutMs', options.watchInactivityTimeoutMs ?? 6 * 60_000);
  return {
    kubeConfig,
    core: makeApi(k8s.CoreV1Api),
    events: makeApi(k8s.EventsV1Api),
    coordination: makeApi(k8s.CoordinationV1Api),
    watch,
    userAgent,
    throttle: (signal) => bucket.take(signal),
    makeApi,
    getStreamed: async (path, request, consume) => {
      const response = await httpApi.send(await prepare(path, request)).toPromise();
      const contentType = response.headers['content-type'] ?? '';
      const stream = response.httpStatusCode === 200 ? response.body.stream() : null;
      if (stream === null) return { status: response.httpStatusCode, contentType, body: await response.body.binary() };
      for await (const chunk of stream) consume(chunk);
      return { status: 200, contentType, body: Buffer.alloc(0) };
    },
    stream: async (path, request) => {
      await bucket.take(request.signal);
      const context = await prepare(path, request);
      const response = await undiciRequest(context.getUrl(), {
        headers: context.getHeaders(),
        dispatcher: context.getDispatcher(),
        signal: request.signal,
      });
      const contentType = response.headers['content-type'];
      return { status: response.statusCode, contentType: typeof contentType === 'string' ? contentType : '', body: response.body };
    },
  };
}

function requestUrl(server: string, path: string, query: RawRequest['query']): string {
  const url = new URL(server.replace(/\/$/, '') + path);
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  return url.toString();
}

/** A view of kubeConfig whose requests also carry userAgent (k8s.Watch sends only auth headers). */
function withUserAgent(kubeConfig: k8s.KubeConfig, userAgent: string): k8s.KubeConfig {
  const view = Object.create(kubeConfig) as k8s.KubeConfig;
  view.applySecurityAuthentication = async (context) => {
    await kubeConfig.applySecurityAuthentication(context);
    context.setHeaderParam('User-Agent', userAgent);
  };
  return view;
}

let cachedVersion: string | undefined;

/** This package's version; the file runs from src/kube (tsx) and dist/src/kube (built), so look upwards. */
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
