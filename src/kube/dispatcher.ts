// One keep-alive HTTP/1.1 connection pool per client, replaced when the TLS material changes
// (a rotated client certificate); through an http(s) proxy when the kubeconfig names one.

import { Agent, type Dispatcher, ProxyAgent } from 'undici';
import type { TlsMaterial } from './access.js';

/**
 * HTTP/1.1 on purpose: undici's HTTP/2 keeps Node's 64 KiB flow-control windows, so one shared
 * connection carries little per round trip, and the API server closes a Node watch it cannot flush
 * fast enough ("unresponsive" watcher) every few dozen large Nodes. Separate HTTP/1.1 connections
 * give the watch its own socket.
 */
export class ConnectionPool {
  readonly #proxyUrl: string | undefined;
  #current: { key: string; dispatcher: Dispatcher } | undefined;

  constructor(proxyUrl?: string) {
    this.#proxyUrl = proxyUrl;
  }

  dispatcher(tls: TlsMaterial): Dispatcher {
    const key = JSON.stringify([tls.ca, tls.cert, tls.key, tls.rejectUnauthorized, tls.servername]);
    if (this.#current === undefined || this.#current.key !== key) {
      // The old pool finishes what it carries, then closes; new requests use the new credentials.
      void this.#current?.dispatcher.close().catch(() => undefined);
      this.#current = { key, dispatcher: this.#create(tls) };
    }
    return this.#current.dispatcher;
  }

  async close(): Promise<void> {
    await this.#current?.dispatcher.close();
    this.#current = undefined;
  }

  #create(tls: TlsMaterial): Dispatcher {
    // 30 s keep-alive probes, below common load-balancer idle timeouts (client-go does the same).
    const keepAlive = { keepAlive: true, keepAliveInitialDelay: 30_000 };
    if (this.#proxyUrl !== undefined) {
      return new ProxyAgent({ uri: this.#proxyUrl, requestTls: tls, allowH2: false, connect: keepAlive });
    }
    return new Agent({ connect: { ...tls, ...keepAlive }, allowH2: false });
  }
}
