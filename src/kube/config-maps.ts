// The controller's own ConfigMaps and Events about them: read, write with optimistic concurrency, and
// watch one ConfigMap by name (fieldSelector, so a Role scoped by resourceNames allows it); the watch relists after every end.

import type { V1ConfigMap } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type RestClient, jsonBody } from './client.js';
import { apiFailure, describeKubeError } from './errors.js';
import { type EventBody, createEvent } from './event-sink.js';
import { type StreamClient, openJsonWatch, watchEventError } from './json-watch.js';
import { microTime } from './micro-time.js';
import {
  ConfigMapConflictError,
  type ConfigMapData,
  type ConfigMapStore,
  type EventRegarding,
  type EventType,
  type ObjectEventSink,
} from '../controller/ports.js';
import { systemClock, wait } from '../time.js';

export interface KubeConfigMapStoreOptions {
  /** KubeClient has both calls. */
  readonly client: RestClient & StreamClient;
  /** watch()'s list and watch go through this one when set: a cache's reads, on a budget apart from writes. */
  readonly watchClient?: RestClient & StreamClient;
  readonly namespace: string;
  readonly log: Logger;
  /** Wait after a watch ends before relisting; default 1 s. */
  readonly retryMs?: number;
}

export class KubeConfigMapStore implements ConfigMapStore {
  readonly #o: KubeConfigMapStoreOptions;

  constructor(options: KubeConfigMapStoreOptions) {
    this.#o = options;
  }

  async read(name: string, signal?: AbortSignal): Promise<ConfigMapData | undefined> {
    try {
      const response = await this.#o.client.request('GET', `${this.#path()}/${encodeURIComponent(name)}`, { signal });
      return toData(jsonBody<V1ConfigMap>(response));
    } catch (err) {
      if (apiFailure(err)?.code === 404) return undefined;
      throw err;
    }
  }

  async write(name: string, data: Record<string, string>, resourceVersion: string | undefined, signal?: AbortSignal): Promise<string> {
    const namespace = this.#o.namespace;
    const body: V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace, resourceVersion, labels: { 'app.kubernetes.io/name': 'podcidr-allocator' } },
      data,
    };
    try {
      const response =
        resourceVersion === undefined
          ? await this.#o.client.request('POST', this.#path(), { body, signal })
          : await this.#o.client.request('PUT', `${this.#path()}/${encodeURIComponent(name)}`, { body, signal });
      return jsonBody<V1ConfigMap>(response).metadata?.resourceVersion ?? '';
    } catch (err) {
      const code = apiFailure(err)?.code;
      if (code === 409) throw new ConfigMapConflictError(name, { cause: err });
      throw err;
    }
  }

  async watch(name: string, onChange: (cm: ConfigMapData | undefined) => void, signal: AbortSignal): Promise<void> {
    const retryMs = this.#o.retryMs ?? 1000;
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.#listThenWatch(name, onChange, signal);
        failures = 0;
      } catch (err) {
        failures += 1;
        // A missing grant or an unreachable server must not turn into a request a second.
        const level = failures === 5 ? 'warn' : 'debug';
        if (!signal.aborted) this.#o.log[level]({ configMap: name, failures, error: describeKubeError(err) }, 'ConfigMap watch failed; relisting');
      }
      await wait(systemClock, Math.min(retryMs * 2 ** Math.min(failures, 6), 60_000), signal);
    }
  }

  /** One list, then one watch from its resourceVersion until the watch ends (or signal aborts). */
  async #listThenWatch(name: string, onChange: (cm: ConfigMapData | undefined) => void, signal: AbortSignal): Promise<void> {
    const client = this.#o.watchClient ?? this.#o.client;
    const fieldSelector = `metadata.name=${name}`;
    const list = jsonBody<{ metadata?: { resourceVersion?: string }; items: V1ConfigMap[] }>(
      await client.request('GET', this.#path(), { query: { fieldSelector }, signal }),
    );
    const first = list.items[0];
    onChange(first === undefined ? undefined : toData(first));
    const query = { fieldSelector, resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 300 };
    try {
      const events = await openJsonWatch(client, this.#path(), query, signal);
      for await (const event of events) {
        if (event.type === 'ADDED' || event.type === 'MODIFIED') onChange(toData(event.object as V1ConfigMap));
        else if (event.type === 'DELETED') onChange(undefined);
        else if (event.type === 'ERROR') throw watchEventError(event.object);
      }
    } catch (err) {
      // Stopping aborts the stream: that is an end, not a failure.
      if (!signal.aborted) throw err;
    }
  }

  #path(): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.#o.namespace)}/configmaps`;
  }
}

function toData(cm: V1ConfigMap): ConfigMapData {
  return {
    name: cm.metadata?.name ?? '',
    uid: cm.metadata?.uid ?? '',
    resourceVersion: cm.metadata?.resourceVersion ?? '',
    data: cm.data ?? {},
  };
}

export interface KubeObjectEventsOptions {
  readonly api: RestClient;
  readonly namespace: string;
  readonly identity: string;
  readonly log: Logger;
  readonly windowMs?: number;
  readonly now?: () => number;
}

export class KubeObjectEvents implements ObjectEventSink {
  readonly #o: KubeObjectEventsOptions;
  /** key -> when last written; a handful of keys (reasons about two ConfigMaps), pruned on use. */
  readonly #written = new Map<string, number>();
  #sequence = 0;

  constructor(options: KubeObjectEventsOptions) {
    this.#o = options;
  }

  emit(regarding: EventRegarding, type: EventType, reason: string, note: string): void {
    const now = (this.#o.now ?? Date.now)();
    const windowMs = this.#o.windowMs ?? 10 * 60_000;
    for (const [key, at] of this.#written) if (now - at >= windowMs) this.#written.delete(key);
    const key = `${regarding.kind}\u0000${regarding.name}\u0000${type}\u0000${reason}\u0000${note}`;
    if (this.#written.has(key)) return;
    this.#written.set(key, now);
    void this.#create(regarding, type, reason, note);
  }

  async #create(regarding: EventRegarding, type: EventType, reason: string, note: string): Promise<void> {
    // The API server puts Events about cluster-scoped objects in "default", as it does for Nodes.
    const namespace = regarding.clusterScoped ? 'default' : this.#o.namespace;
    this.#sequence = (this.#sequence + 1) % 1_000_000;
    const body: EventBody = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: `${regarding.name}.${(BigInt(Date.now()) * 1_000_000n + BigInt(this.#sequence)).toString(16)}`, namespace },
      eventTime: microTime(),
      reportingController: 'podcidr-allocator',
      reportingInstance: this.#o.identity,
      action: 'AllocatePodCIDR',
      reason,
      type,
      note: note.length > 1000 ? `${note.slice(0, 997)}...` : note,
      regarding: {
        kind: regarding.kind,
        apiVersion: regarding.apiVersion ?? 'v1',
        name: regarding.name,
        namespace: regarding.clusterScoped ? undefined : namespace,
        uid: regarding.uid || undefined,
      },
    };
    try {
      await createEvent(this.#o.api, namespace, body);
    } catch (err) {
      this.#o.log.warn({ reason, regarding: regarding.name, error: describeKubeError(err) }, 'could not record event');
    }
  }
}

