// Helpers for integration tests: the shared control plane, typed clients, per-file names and cleanup.
// Every object a scope creates carries its label, so files never collide and cleanup() finds exactly its own.
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { describe, inject } from 'vitest';
import { type KubeClient, type KubeClientOptions, createKubeClient } from '../../src/kube/client.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import type { ControlPlaneInfo } from './context.js';

export type { ControlPlaneInfo } from './context.js';

export function controlPlane(): ControlPlaneInfo {
  return inject('controlPlane');
}

/** describe() when the control plane is up; otherwise skipped (global-setup already said why, loudly). */
export const describeWithControlPlane: typeof describe.skip = controlPlane().available ? describe : describe.skip;

export interface KubeClients {
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  coordination: k8s.CoordinationV1Api;
  events: k8s.EventsV1Api;
}

/** Clients for the admin kubeconfig of the shared control plane. */
export function kubeClients(): KubeClients {
  const cp = controlPlane();
  if (!cp.available) throw new Error(`no control plane: ${cp.reason}`);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    coordination: kc.makeApiClient(k8s.CoordinationV1Api),
    events: kc.makeApiClient(k8s.EventsV1Api),
  };
}

/** The controller's own client for the admin kubeconfig, loaded the way `run` loads it. */
export async function ourClient(options: Partial<KubeClientOptions> = {}): Promise<KubeClient> {
  const cp = controlPlane();
  if (!cp.available) throw new Error(`no control plane: ${cp.reason}`);
  const access = await loadKubeConfig({ kubeconfig: cp.kubeconfigPath }, { env: {} });
  return createKubeClient(access, { qps: 100, burst: 100, ...options });
}

export const SCOPE_LABEL = 'test.podcidr-allocator.io/scope';

/**
 * A per-file namespace of names: nodes are cluster-scoped and test files share one apiserver.
 * Names look like `<prefix>-<random>-<base>-<n>`; objects get `labels` so `cleanup()` deletes them.
 */
export class TestScope {
  readonly id: string;
  readonly labels: Record<string, string>;
  readonly selector: string;
  #count = 0;

  constructor(prefix: string) {
    const slug = prefix.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
    this.id = `${slug}-${randomBytes(3).toString('hex')}`;
    this.labels = { [SCOPE_LABEL]: this.id };
    this.selector = `${SCOPE_LABEL}=${this.id}`;
  }

  name(base: string): string {
    this.#count += 1;
    return `${this.id}-${base}-${this.#count}`;
  }

  /** A Node body with this scope's labels and no podCIDR. */
  node(base = 'node'): k8s.V1Node {
    return { apiVersion: 'v1', kind: 'Node', metadata: { name: this.name(base), labels: { ...this.labels } } };
  }

  /** Deletes this scope's nodes and its leases and events in the given namespaces. */
  async cleanup(clients: KubeClients, namespaces: string[] = ['default', 'kube-system']): Promise<void> {
    await clients.core.deleteCollectionNode({ labelSelector: this.selector });
    for (const namespace of namespaces) {
      await clients.coordination.deleteCollectionNamespacedLease({ namespace, labelSelector: this.selector });
      await clients.events.deleteCollectionNamespacedEvent({ namespace, labelSelector: this.selector });
    }
  }
}

export interface ApiError {
  code: number;
  reason: string | undefined;
  message: string | undefined;
}

/** The HTTP code and the Status reason/message of a failed call; rethrows anything that is not an ApiException. */
export function apiError(err: unknown): ApiError {
  if (!(err instanceof k8s.ApiException)) throw err;
  const body: unknown = typeof err.body === 'string' ? safeJson(err.body) : err.body;
  const status = (body ?? {}) as { reason?: unknown; message?: unknown };
  return {
    code: err.code,
    reason: typeof status.reason === 'string' ? status.reason : undefined,
    message: typeof status.message === 'string' ? status.message : undefined,
  };
}

/** Runs fn expecting an ApiException and returns its parsed error; fails if fn succeeds. */
export async function expectApiError(fn: () => Promise<unknown>): Promise<ApiError> {
  try {
    await fn();
  } catch (err) {
    return apiError(err);
  }
  throw new Error('expected the API call to fail, but it succeeded');
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
