// A plain-HTTP hop in front of the shared API server that gives a controller a big cluster's pace: a
// full Node list answers late (as 50,000 Nodes take seconds to list) and watch streams arrive in small
// pieces (as a replay of many fat Nodes does). Every request still reaches the real API server, with the
// admin credentials; only the timing of the replies changes.
import type * as k8s from '@kubernetes/client-node';
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request, type RequestOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { sleep, systemClock } from '../../src/time.js';

export interface SlowApiProxyOptions {
  /** How late a Node list of more than one Node answers. */
  readonly listDelayMs: number;
  /** Watch replies are passed on in pieces of this many bytes... */
  readonly watchPieceBytes: number;
  /** ...one every this many milliseconds. */
  readonly watchPieceMs: number;
}

export class SlowApiProxy {
  readonly #server: Server;
  readonly kubeconfigPath: string;

  private constructor(server: Server, kubeconfigPath: string) {
    this.#server = server;
    this.kubeconfigPath = kubeconfigPath;
  }

  /** Listens on loopback and writes a kubeconfig for it into dir. */
  static async start(kc: k8s.KubeConfig, dir: string, options: SlowApiProxyOptions): Promise<SlowApiProxy> {
    const upstream = new URL(kc.getCurrentCluster()?.server ?? '');
    const tls: RequestOptions = {};
    await kc.applyToHTTPSOptions(tls);
    const server = createServer((req, res) => void forward(req, res, upstream, tls, options));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const kubeconfigPath = join(dir, `slow-proxy-${port}.kubeconfig`);
    await writeFile(kubeconfigPath, kubeconfig(`http://127.0.0.1:${port}`));
    return new SlowApiProxy(server, kubeconfigPath);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

function kubeconfig(server: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'slow', cluster: { server } }],
    users: [{ name: 'slow', user: {} }],
    contexts: [{ name: 'slow', context: { cluster: 'slow', user: 'slow' } }],
    'current-context': 'slow',
  });
}

async function forward(req: IncomingMessage, res: ServerResponse, upstream: URL, tls: RequestOptions, o: SlowApiProxyOptions): Promise<void> {
  const url = new URL(req.url ?? '/', upstream);
  const kind = classify(req.method, url);
  if (kind === 'list') await sleep(systemClock, o.listDelayMs);
  const out = request(
    { ...tls, hostname: upstream.hostname, port: upstream.port, method: req.method, path: url.pathname + url.search, headers: { ...req.headers, host: upstream.host } },
    (reply) => {
      res.writeHead(reply.statusCode ?? 502, reply.headers);
      const body = kind === 'watch' ? reply.pipe(new Trickle(o.watchPieceBytes, o.watchPieceMs)) : reply;
      body.pipe(res);
    },
  );
  out.on('error', () => res.destroy());
  res.on('close', () => out.destroy());
  req.pipe(out);
}

function classify(method: string | undefined, url: URL): 'list' | 'watch' | 'other' {
  if (method !== 'GET' || url.pathname !== '/api/v1/nodes') return 'other';
  const watch = url.searchParams.get('watch');
  if (watch === '1' || watch === 'true') return 'watch';
  return url.searchParams.get('limit') === '1' ? 'other' : 'list';
}

/** Passes bytes on in pieces, one per interval, in order. */
class Trickle extends Transform {
  readonly #bytes: number;
  readonly #ms: number;

  constructor(bytes: number, ms: number) {
    super();
    this.#bytes = bytes;
    this.#ms = ms;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    void this.#pass(chunk).then(() => done(), done);
  }

  async #pass(chunk: Buffer): Promise<void> {
    for (let at = 0; at < chunk.length; at += this.#bytes) {
      this.push(chunk.subarray(at, at + this.#bytes));
      await sleep(systemClock, this.#ms);
    }
  }
}
