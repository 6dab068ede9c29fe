// One keep-alive HTTP/1.1 connection pool per client, instead of client-node's new undici Agent
// (a new TLS connection) for every request. Proxy and plain-HTTP settings keep client-node's own handling.

import type { Cluster } from '@kubernetes/client-node';
import * as k8s from '@kubernetes/client-node';
import type { AgentOptions } from 'node:https';
import { Agent, type Dispatcher } from 'undici';

type CreateDispatcher = (cluster: Cluster | null, agentOptions: AgentOptions) => Dispatcher | undefined;

/** The TLS material that decides which connections may be shared; a rotated client certificate changes it. */
const TLS_KEYS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

/**
 * A view of kubeConfig whose requests share one pool. HTTP/1.1 on purpose: undici's HTTP/2 keeps
 * Node's 64 KiB flow-control windows, so one shared connection carries little per round trip, and
 * the API server closes a Node watch it cannot flush fast enough ("unresponsive" watcher) every few
 * dozen large Nodes. Separate HTTP/1.1 connections give the watch its own socket.
 */
export function withSharedConnections(kubeConfig: k8s.KubeConfig): k8s.KubeConfig {
  const original = Reflect.get(kubeConfig, 'createDispatcher') as CreateDispatcher;
  let pooled: { options: AgentOptions; agent: Agent } | undefined;
  const createDispatcher: CreateDispatcher = (cluster, agentOptions) => {
    const options = kubeConfig.createDispatcherOptions(cluster, agentOptions);
    if (options.type !== 'agent') return original.call(kubeConfig, cluster, agentOptions);
    if (pooled === undefined || !sameTls(pooled.options, agentOptions)) {
      // The old pool finishes what it carries, then closes; new requests use the new credentials.
      void pooled?.agent.close().catch(() => undefined);
      pooled = { options: agentOptions, agent: new Agent({ connect: options.connect, allowH2: false }) };
    }
    return pooled.agent;
  };
  const view = Object.create(kubeConfig) as k8s.KubeConfig;
  // createDispatcher is private in the typings; applySecurityAuthentication calls it on `this`.
  Reflect.set(view, 'createDispatcher', createDispatcher);
  return view;
}

function sameTls(a: AgentOptions, b: AgentOptions): boolean {
  return TLS_KEYS.every((k) => {
    const x: unknown = a[k];
    const y: unknown = b[k];
    if (Buffer.isBuffer(x) && Buffer.isBuffer(y)) return x.equals(y);
    return x === y;
  });
}
