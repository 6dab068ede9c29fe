// The informer's NodeSource over the API server: paginated CoreV1Api.listNode and a k8s.Watch with bookmarks.
// Nodes are converted to NodeInfo as they arrive, so whole Nodes never outlive one page or one event.

import * as k8s from '@kubernetes/client-node';
import {
  type NodeListOptions,
  type NodePage,
  type NodeSource,
  type NodeWatchHandlers,
  type NodeWatchOptions,
  ResourceExpiredError,
} from '../controller/node-informer.js';
import { toNodeInfo } from '../controller/node-info.js';
import { apiFailure, describeKubeError } from './errors.js';

/** The parts of a k8s.Watch used here. */
export interface WatchClient {
  watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController>;
}

export interface KubeNodeSourceOptions {
  readonly core: Pick<k8s.CoreV1Api, 'listNode'>;
  readonly watch: WatchClient;
  /** Waits for a client rate-limit token before a watch is opened (watches bypass the API transport). */
  readonly throttle?: (signal?: AbortSignal) => Promise<void>;
  readonly labelSelector?: string;
}

export class KubeNodeSource implements NodeSource {
  readonly #core: Pick<k8s.CoreV1Api, 'listNode'>;
  readonly #watch: WatchClient;
  readonly #throttle: ((signal?: AbortSignal) => Promise<void>) | undefined;
  readonly #labelSelector: string | undefined;

  constructor(options: KubeNodeSourceOptions) {
    this.#core = options.core;
    this.#watch = options.watch;
    this.#throttle = options.throttle;
    this.#labelSelector = options.labelSelector;
  }

  async list(options: NodeListOptions): Promise<NodePage> {
    let list: k8s.V1NodeList;
    try {
      list = await this.#core.listNode(
        { limit: options.limit, _continue: options.continueToken, labelSelector: this.#labelSelector },
        listOptions(options.signal),
      );
    } catch (err) {
      if (apiFailure(err)?.code === 410) {
        throw new ResourceExpiredError(`list nodes: ${describeKubeError(err)}`, { cause: err });
      }
      throw new Error(`list nodes: ${describeKubeError(err)}`, { cause: err });
    }
    const continueToken = list.metadata?._continue;
    return {
      nodes: list.items.map(toNodeInfo),
      resourceVersion: list.metadata?.resourceVersion ?? '',
      continueToken: continueToken === undefined || continueToken === '' ? undefined : continueToken,
    };
  }

  async watch(options: NodeWatchOptions, handlers: NodeWatchHandlers): Promise<void> {
    await this.#throttle?.(options.signal);
    let closed = false;
    // done() may run before watch() returns (a failed connect), so the controller is set late.
    const stream: { controller?: AbortController } = {};
    const close = (err?: unknown): void => {
      if (closed) return;
      closed = true;
      stream.controller?.abort();
      handlers.onClose(err);
    };
    const started = await this.#watch.watch(
      '/api/v1/nodes',
      {
        resourceVersion: options.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: options.timeoutSeconds,
        labelSelector: this.#labelSelector,
      },
      (phase, object) => {
        if (closed) return;
        switch (phase) {
          case 'ADDED':
          case 'MODIFIED':
          case 'DELETED':
            // Watch events are plain JSON (string timestamps); toNodeInfo accepts both forms.
            handlers.onEvent(phase, toNodeInfo(object as k8s.V1Node));
            break;
          case 'BOOKMARK':
            handlers.onBookmark(bookmarkVersion(object));
            break;
          case 'ERROR':
            close(statusError(object));
            break;
        }
      },
      (err) => close(err === null || err === undefined ? undefined : watchError(err)),
    );
    stream.controller = started;
    if (closed || options.signal.aborted) started.abort();
    else options.signal.addEventListener('abort', () => started.abort(), { once: true });
  }
}

function bookmarkVersion(object: unknown): string {
  const meta = (object as { metadata?: { resourceVersion?: unknown } } | null)?.metadata;
  return typeof meta?.resourceVersion === 'string' ? meta.resourceVersion : '';
}

/** An ERROR watch event carries a metav1.Status; 410 means our resourceVersion is too old. */
function statusError(object: unknown): Error {
  const status = (object ?? {}) as { code?: unknown; reason?: unknown; message?: unknown };
  const text = `watch nodes: ${String(status.code ?? '?')} ${String(status.reason ?? '')}: ${String(status.message ?? '')}`;
  return status.code === 410 ? new ResourceExpiredError(text) : new Error(text);
}

/** k8s.Watch reports a non-200 answer as an Error with statusCode. */
function watchError(err: unknown): unknown {
  const statusCode = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof statusCode !== 'number') return err;
  const message = `watch nodes: HTTP ${statusCode} ${err instanceof Error ? err.message : ''}`.trim();
  return statusCode === 410 ? new ResourceExpiredError(message, { cause: err }) : new Error(message, { cause: err });
}

/**
 * Per-call middleware: attaches signal, asks for an uncompressed page, and drops each Node's status from a list page before
 * client-node deserializes it. toNodeInfo reads metadata and spec only, and client-node's typed
 * deserialization of a whole page of Nodes (status.images: tens of KB each) costs several times
 * the JSON parse. Appended, so the client's own configuration stays in force.
 */
function listOptions(signal: AbortSignal): k8s.ConfigurationOptions {
  const middleware: k8s.ObservableMiddleware = {
    pre: (context) => {
      context.setSignal(signal);
      // Uncompressed: gzip of 500 Nodes costs the API server more CPU than the bytes cost the network.
      context.setHeaderParam('Accept-Encoding', 'identity');
      return new k8s.Observable(Promise.resolve(context));
    },
    post: (response) => new k8s.Observable(withoutStatus(response)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

async function withoutStatus(response: k8s.ResponseContext): Promise<k8s.ResponseContext> {
  if (response.httpStatusCode !== 200) return response;
  const list = JSON.parse(await response.body.text()) as { items?: { status?: unknown }[] };
  for (const item of list.items ?? []) delete item.status;
  const text = JSON.stringify(list);
  const body: k8s.ResponseBody = {
    text: () => Promise.resolve(text),
    binary: () => Promise.resolve(Buffer.from(text)),
    stream: () => null,
  };
  return new k8s.ResponseContext(response.httpStatusCode, response.headers, body);
}
