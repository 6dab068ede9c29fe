// ClusterCIDRs (networking.x-k8s.io/v1) from the API server: list then watch, relisting after every end,
// our finalizer written under a resourceVersion test, status through its subresource. A missing CRD or grant reads as no pools.

import type { Logger } from 'pino';
import { type RestClient, jsonBody } from './client.js';
import { apiFailure, describeKubeError } from './errors.js';
import { type StreamClient, openJsonWatch, watchEventError } from './json-watch.js';
import type { ClusterCIDRHandlers, ClusterCIDRObject, ClusterCIDRStatus, ClusterCIDRStore } from '../controller/ports.js';
import { systemClock, wait } from '../time.js';

export const CLUSTER_CIDRS_PATH = '/apis/networking.x-k8s.io/v1/clustercidrs';

export interface KubeClusterCIDRStoreOptions {
  readonly client: RestClient & StreamClient;
  readonly log: Logger;
  /** Wait after a watch ends before relisting; default 1 s. */
  readonly retryMs?: number;
  /** Wait before looking again for a CRD or grant that is missing; default 30 s. */
  readonly absentRetryMs?: number;
}

interface RawObject {
  readonly metadata?: {
    readonly name?: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
    readonly generation?: number;
    readonly deletionTimestamp?: string;
    readonly finalizers?: readonly string[];
  };
  readonly spec?: unknown;
}

/** The API has no ClusterCIDRs here (404: no CRD) or we may not read them (403). */
class PoolsUnavailable extends Error {
  constructor(readonly code: number) {
    super(code === 404 ? 'the ClusterCIDR CRD is not installed' : 'no grant to list ClusterCIDRs');
  }
}

/** One list of every ClusterCIDR (for `check`); a missing CRD (404) or grant (403) reads as `unavailable`. */
export async function listClusterCIDRs(
  client: RestClient,
  signal?: AbortSignal,
): Promise<{ readonly objects: readonly ClusterCIDRObject[] } | { readonly unavailable: string }> {
  try {
    const list: { items: RawObject[] } = jsonBody(await client.request('GET', CLUSTER_CIDRS_PATH, { signal }));
    return { objects: list.items.map(toObject) };
  } catch (err) {
    const code = apiFailure(err)?.code;
    if (code === 404 || code === 403) return { unavailable: new PoolsUnavailable(code).message };
    throw err;
  }
}

export class KubeClusterCIDRStore implements ClusterCIDRStore {
  readonly #o: KubeClusterCIDRStoreOptions;

  constructor(options: KubeClusterCIDRStoreOptions) {
    this.#o = options;
  }

  async watch(handlers: ClusterCIDRHandlers, signal: AbortSignal): Promise<void> {
    let failures = 0;
    let absent: number | undefined;
    while (!signal.aborted) {
      let pause = this.#o.retryMs ?? 1000;
      try {
        await this.#listThenWatch(handlers, signal);
        failures = 0;
        absent = undefined;
      } catch (err) {
        if (err instanceof PoolsUnavailable) {
          if (absent !== err.code) this.#o.log.info({ reason: err.message }, 'no ClusterCIDR pools: serving --cluster-cidr only');
          absent = err.code;
          handlers.listed([]);
          pause = this.#o.absentRetryMs ?? 30_000;
        } else {
          failures += 1;
          const level = failures === 5 ? 'warn' : 'debug';
          if (!signal.aborted) this.#o.log[level]({ failures, error: describeKubeError(err) }, 'ClusterCIDR watch failed; relisting');
          pause = Math.min(pause * 2 ** Math.min(failures, 6), 60_000);
        }
      }
      await wait(systemClock, pause, signal);
    }
  }

  async setFinalizers(name: string, resourceVersion: string, finalizers: readonly string[], signal?: AbortSignal): Promise<void> {
    // A JSON patch's test makes this a compare-and-swap: a finalizer someone else added meanwhile stays.
    const body = [
      { op: 'test', path: '/metadata/resourceVersion', value: resourceVersion },
      { op: 'replace', path: '/metadata/finalizers', value: finalizers },
    ];
    await this.#o.client.request('PATCH', `${CLUSTER_CIDRS_PATH}/${encodeURIComponent(name)}`, {
      body,
      contentType: 'application/json-patch+json',
      signal,
    });
  }

  async writeStatus(name: string, status: ClusterCIDRStatus, signal?: AbortSignal): Promise<void> {
    await this.#o.client.request('PATCH', `${CLUSTER_CIDRS_PATH}/${encodeURIComponent(name)}/status`, {
      body: { status },
      contentType: 'application/merge-patch+json',
      signal,
    });
  }

  async #listThenWatch(handlers: ClusterCIDRHandlers, signal: AbortSignal): Promise<void> {
    const client = this.#o.client;
    let list: { metadata?: { resourceVersion?: string }; items: RawObject[] };
    try {
      list = jsonBody(await client.request('GET', CLUSTER_CIDRS_PATH, { signal }));
    } catch (err) {
      const code = apiFailure(err)?.code;
      if (code === 404 || code === 403) throw new PoolsUnavailable(code);
      throw err;
    }
    handlers.listed(list.items.map(toObject));
    const query = { resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 300 };
    try {
      const events = await openJsonWatch(client, CLUSTER_CIDRS_PATH, query, signal);
      for await (const event of events) {
        if (event.type === 'ADDED' || event.type === 'MODIFIED') handlers.changed(toObject(event.object as RawObject));
        else if (event.type === 'DELETED') handlers.deleted(toObject(event.object as RawObject).name);
        else if (event.type === 'ERROR') throw watchEventError(event.object);
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    }
  }
}

function toObject(raw: RawObject): ClusterCIDRObject {
  const m = raw.metadata ?? {};
  return {
    name: m.name ?? '',
    uid: m.uid ?? '',
    resourceVersion: m.resourceVersion ?? '',
    generation: m.generation ?? 0,
    ...(m.deletionTimestamp !== undefined && { deletionTimestamp: m.deletionTimestamp }),
    finalizers: m.finalizers ?? [],
    spec: raw.spec,
  };
}
