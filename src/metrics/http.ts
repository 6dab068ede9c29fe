// The operational HTTP endpoint: /healthz (liveness), /readyz (readiness), /metrics (Prometheus).
// Probes are evaluated on every request; the registry is the one passed in, never the global one.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

export interface ProbeResult {
  readonly ok: boolean;
  readonly reason?: string;
}

export type Probe = () => ProbeResult | Promise<ProbeResult>;

export interface HttpServerOptions {
  /** 'host:port', '[v6]:port' or ':port' (all interfaces); port 0 picks a free one. */
  readonly address: string;
  readonly registry: Registry;
  /** Liveness: false means "restart me" (e.g. the elector is stuck). */
  readonly healthz: Probe;
  /** Readiness: false until caches have synced, and so on. */
  readonly readyz: Probe;
  readonly logger: Logger;
}

export interface HttpServer {
  /** The bound address as 'host:port' ('[v6]:port' for IPv6), with the real port when 0 was asked. */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface ListenAddress {
  /** undefined: all interfaces. */
  readonly host: string | undefined;
  readonly port: number;
}

export class ListenAddressError extends Error {
  constructor(readonly address: string, reason: string) {
    super(`invalid listen address ${JSON.stringify(address)}: ${reason}`);
    this.name = 'ListenAddressError';
  }
}

/** Parses 'host:port', '[v6]:port' or ':port'; throws ListenAddressError. */
export function parseListenAddress(address: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  if (match === null) {
    throw new ListenAddressError(address, "expected 'host:port', '[ipv6]:port' or ':port'");
  }
  const port = Number(match[3]);
  if (port > 65535) throw new ListenAddressError(address, 'port must be between 0 and 65535');
  const host = match[1] ?? match[2];
  return { host: host === undefined || host === '' ? undefined : host, port };
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { host, port } = parseListenAddress(options.address);
  const log = options.logger;
  const server = createServer((req, res) => {
    handle(options, req, res).catch((err: unknown) => {
      log.error({ err, path: req.url }, 'http handler failed');
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  await listen(server, host, port);
  const bound = boundAddress(server);
  const shown = bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  log.info({ address: shown }, 'serving /healthz, /readyz and /metrics');
  return {
    address: shown,
    port: bound.port,
    close: () => close(server),
  };
}

async function handle(options: HttpServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0];
  if (path !== '/healthz' && path !== '/readyz' && path !== '/metrics') {
    send(res, 404, 'not found\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    send(res, 405, 'method not allowed\n');
    return;
  }
  if (path === '/metrics') {
    const body = await options.registry.metrics();
    send(res, 200, body, options.registry.contentType);
    return;
  }
  const result = path === '/healthz' ? await options.healthz() : await options.readyz();
  if (result.ok) {
    send(res, 200, 'ok\n');
  } else {
    // 500 for liveness like kube's healthz; 503 for readiness so load balancers simply skip us.
    send(res, path === '/healthz' ? 500 : 503, `${result.reason ?? 'not ok'}\n`);
  }
}

function send(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'no-store');
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function boundAddress(server: Server): AddressInfo {
  const bound = server.address();
  if (bound === null || typeof bound === 'string') throw new Error('http server is not bound to a TCP port');
  return bound;
}

function listen(server: Server, host: string | undefined, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Stops accepting, and drops idle keep-alive connections so close() does not wait for clients. */
function close(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeIdleConnections();
  });
}
