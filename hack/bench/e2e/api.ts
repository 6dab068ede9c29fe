// The benchmark's own API client: plain HTTPS with the admin certificate, separate from every contestant.
// Creates go through a bounded pool; the watch reads raw lines and never parses a whole Node.

import { Agent, request } from 'node:https';
import * as k8s from '@kubernetes/client-node';

export interface Cluster {
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** Reads server and admin credentials (embedded data) from a kubeconfig like hack/lib/control-plane writes. */
export function clusterFromKubeconfig(kubeconfigPath: string): Cluster {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  const decode = (b64: string | undefined, what: string): string => {
    if (b64 === undefined) throw new Error(`${kubeconfigPath}: no embedded ${what}`);
    return Buffer.from(b64, 'base64').toString('utf8');
  };
  if (cluster === null || user === null) throw new Error(`${kubeconfigPath}: no current cluster or user`);
  return {
    kubeconfigPath,
    server: cluster.server,
    ca: decode(cluster.caData, 'certificate-authority-data'),
    cert: decode(user.certData, 'client-certificate-data'),
    key: decode(user.keyData, 'client-key-data'),
  };
}

export class BenchApi {
  readonly #cluster: Cluster;
  readonly #agent: Agent;

  constructor(cluster: Cluster, maxSockets = 64) {
    this.#cluster = cluster;
    this.#agent = new Agent({ keepAlive: true, maxSockets, ca: cluster.ca, cert: cluster.cert, key: cluster.key });
  }

  close(): void {
    this.#agent.destroy();
  }

  /** One request; resolves with status and body text. */
  send(method: string, path: string, body?: string, contentType = 'application/json'): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { Accept: 'application/json' };
      if (body !== undefined) {
        headers['Content-Type'] = contentType;
        headers['Content-Length'] = String(Buffer.byteLength(body));
      }
      const req = request(new URL(path, this.#cluster.server), { method, agent: this.#agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  async createNode(json: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.send('POST', '/api/v1/nodes', json);
      if (res.status === 201) return;
      // 429 under a flood of creates: the server asks to come back; anything else is a bench bug.
      if (res.status === 429 && attempt < 20) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      throw new Error(`create node: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
    }
  }

  /** Runs create(i) for i in [from, to) with at most `concurrency` in flight. */
  async createNodes(from: number, to: number, concurrency: number, body: (i: number) => string): Promise<void> {
    let next = from;
    const worker = async (): Promise<void> => {
      while (next < to) {
        const i = next++;
        await this.createNode(body(i));
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, to - from) }, worker));
  }

  async deleteNodes(labelSelector: string): Promise<void> {
    const res = await this.send('DELETE', `/api/v1/nodes?labelSelector=${encodeURIComponent(labelSelector)}`);
    if (res.status !== 200) throw new Error(`delete nodes: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
    // deletecollection returns before every object is gone from a later list; wait until none is left.
    for (;;) {
      const left = await this.send('GET', `/api/v1/nodes?limit=1&labelSelector=${encodeURIComponent(labelSelector)}`);
      if (left.status === 200 && (JSON.parse(left.body) as { items: unknown[] }).items.length === 0) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * Watches Nodes matching the selectors from "now" and reports each node once, when it is first
   * seen holding a podCIDR. Reading lines as text keeps the benchmark's own CPU out of the way.
   */
  watchAllocated(
    query: { labelSelector?: string; fieldSelector?: string },
    onAllocated: (name: string) => void,
  ): { stop(): void; ready: Promise<void> } {
    const seen = new Set<string>();
    return this.watchNodes(query, (line) => {
      if (!line.includes('"podCIDR":"')) return;
      const name = /"metadata":\{"name":"([^"]+)"/.exec(line)?.[1];
      if (name !== undefined && !seen.has(name)) {
        seen.add(name);
        onAllocated(name);
      }
    });
  }

  /** Times the server ended one of this client's watches early (a watcher it found too slow). */
  reconnects = 0;

  /**
   * watchLines that resumes where it ended: the API server closes a watch whose reader falls
   * behind, so every reader of a busy Node watch must pick up from the last resourceVersion.
   */
  watchNodes(query: { labelSelector?: string; fieldSelector?: string }, onLine: (line: string) => void): { stop(): void; ready: Promise<void> } {
    let resourceVersion = '';
    let current: { stop(): void } | undefined;
    let stopped = false;
    const open = (): Promise<void> => {
      const w = this.watchLines(
        { ...query, resourceVersion },
        (line) => {
          if (line.startsWith('{"type":"ERROR"')) {
            // 410 Gone: too old to resume; start over (the reader de-duplicates the replayed ADDs).
            resourceVersion = '';
            return;
          }
          const rv = /"resourceVersion":"(\d+)"/.exec(line)?.[1];
          if (rv !== undefined) resourceVersion = rv;
          onLine(line);
        },
        () => {
          if (stopped) return;
          this.reconnects += 1;
          void open().catch(() => setTimeout(() => void open().catch(() => undefined), 500));
        },
      );
      current = w;
      return w.ready;
    };
    return {
      ready: open(),
      stop: () => {
        stopped = true;
        current?.stop();
      },
    };
  }

  /**
   * A Node watch over HTTP/1.1 on its own connection, one callback per event line. ready settles
   * when the server answered; onEnd runs when the stream ends for any reason other than stop().
   */
  watchLines(
    query: { labelSelector?: string; fieldSelector?: string; resourceVersion?: string },
    onLine: (line: string) => void,
    onEnd?: (err?: Error) => void,
  ): { stop(): void; ready: Promise<void> } {
    const params = new URLSearchParams({ watch: 'true', timeoutSeconds: '3600' });
    if (query.labelSelector) params.set('labelSelector', query.labelSelector);
    if (query.fieldSelector) params.set('fieldSelector', query.fieldSelector);
    if (query.resourceVersion) params.set('resourceVersion', query.resourceVersion);
    let req: ReturnType<typeof request> | undefined;
    let stopped = false;
    const end = (err?: Error): void => {
      if (!stopped) onEnd?.(err);
      stopped = true;
    };
    const ready = new Promise<void>((resolve, reject) => {
      req = request(
        new URL(`/api/v1/nodes?${params.toString()}`, this.#cluster.server),
        { method: 'GET', ca: this.#cluster.ca, cert: this.#cluster.cert, key: this.#cluster.key },
        (res) => {
          if (res.statusCode !== 200) {
            reject(new Error(`watch nodes: HTTP ${res.statusCode ?? 0}`));
            return;
          }
          resolve();
          let rest = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            rest += chunk;
            let from = 0;
            let nl = rest.indexOf('\n');
            while (nl >= 0) {
              onLine(rest.slice(from, nl));
              from = nl + 1;
              nl = rest.indexOf('\n', from);
            }
            rest = rest.slice(from);
          });
          res.on('end', () => end());
          res.on('error', (err) => end(err));
        },
      );
      req.on('error', (err) => {
        reject(err);
        end(err);
      });
      req.end();
    });
    return {
      stop: () => {
        stopped = true;
        req?.destroy();
      },
      ready,
    };
  }
}
