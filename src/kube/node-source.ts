// The informer's NodeSource in JSON (--kube-api-content-type=application/json): paginated lists and a watch with bookmarks.
// Nodes are converted to NodeInfo as they arrive, so whole Nodes never outlive one page or one event.

import type { V1Node } from '@kubernetes/client-node';
import {
  type NodeListOptions,
  type NodePage,
  type NodeSource,
  type NodeWatchHandlers,
  type NodeWatchOptions,
  ResourceExpiredError,
} from '../controller/ports.js';
import { toNodeInfo } from './node-info.js';
import { type RestClient, jsonBody } from './client.js';
import { apiFailure, describeKubeError } from './errors.js';
import { type StreamClient, type WatchEvent, openJsonWatch, watchEventError } from './json-watch.js';

export interface KubeNodeSourceOptions {
  /** KubeClient has both calls. */
  readonly client: RestClient & StreamClient;
  readonly labelSelector?: string;
}

const NODES = '/api/v1/nodes';

/** A NodeList as JSON: the continue token is "continue" on the wire. */
interface NodeList {
  readonly metadata?: { readonly resourceVersion?: string; readonly continue?: string };
  readonly items: V1Node[];
}

export class KubeNodeSource implements NodeSource {
  readonly #client: RestClient & StreamClient;
  readonly #labelSelector: string | undefined;

  constructor(options: KubeNodeSourceOptions) {
    this.#client = options.client;
    this.#labelSelector = options.labelSelector;
  }

  async list(options: NodeListOptions): Promise<NodePage> {
    let list: NodeList;
    try {
      const query = { limit: options.limit, continue: options.continueToken, labelSelector: this.#labelSelector };
      list = jsonBody<NodeList>(await this.#client.request('GET', NODES, { query, signal: options.signal }));
    } catch (err) {
      throw failure('list nodes', err);
    }
    const continueToken = list.metadata?.continue;
    return {
      nodes: list.items.map(toNodeInfo),
      resourceVersion: list.metadata?.resourceVersion ?? '',
      continueToken: continueToken === undefined || continueToken === '' ? undefined : continueToken,
    };
  }

  async watch(options: NodeWatchOptions, handlers: NodeWatchHandlers): Promise<void> {
    const query = {
      resourceVersion: options.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: options.timeoutSeconds,
      labelSelector: this.#labelSelector,
    };
    let events: AsyncIterable<WatchEvent>;
    try {
      events = await openJsonWatch(this.#client, NODES, query, options.signal);
    } catch (err) {
      throw failure('watch nodes', err);
    }
    void pump(events, handlers);
  }
}

async function pump(events: AsyncIterable<WatchEvent>, handlers: NodeWatchHandlers): Promise<void> {
  try {
    for await (const event of events) {
      switch (event.type) {
        case 'ADDED':
        case 'MODIFIED':
        case 'DELETED':
          handlers.onEvent(event.type, toNodeInfo(event.object as V1Node));
          break;
        case 'BOOKMARK':
          handlers.onBookmark(bookmarkVersion(event.object));
          break;
        case 'ERROR':
          return handlers.onClose(failure('watch nodes', watchEventError(event.object)));
      }
    }
    handlers.onClose();
  } catch (err) {
    handlers.onClose(err);
  }
}

function bookmarkVersion(object: unknown): string {
  const meta = (object as { metadata?: { resourceVersion?: unknown } } | null)?.metadata;
  return typeof meta?.resourceVersion === 'string' ? meta.resourceVersion : '';
}

/** 410 Gone (an expired resourceVersion or continue token) is what the informer relists on. */
function failure(what: string, err: unknown): Error {
  const message = `${what}: ${describeKubeError(err)}`;
  if (apiFailure(err)?.code === 410) return new ResourceExpiredError(message, { cause: err });
  return new Error(message, { cause: err });
}
