// The informer's NodeSource in the API server's protobuf encoding: paginated lists and a length-framed watch,
// both decoded as their bytes stream in.
// Like kube-controller-manager, it asks for protobuf: the server encodes it several times faster than JSON,
// and a Node's status is skipped by its length instead of being parsed.

import {
  type NodeListOptions,
  type NodePage,
  type NodeSource,
  type NodeWatchHandlers,
  type NodeWatchOptions,
  ResourceExpiredError,
} from '../controller/ports.js';
import type { RawResponse, RawRequest, StreamResponse } from './client.js';
import {
  type DecodedStatus,
  NodeListDecoder,
  PROTOBUF_CONTENT_TYPE,
  WatchEventDecoder,
  decodeStatus,
} from './node-protobuf.js';
import { parseStatus } from './errors.js';

/** The raw calls used; KubeClient has them. */
export interface RawNodeClient {
  getStreamed(path: string, request: RawRequest, consume: (chunk: Uint8Array) => void): Promise<RawResponse>;
  stream(path: string, request: RawRequest & { readonly signal: AbortSignal }): Promise<StreamResponse>;
}

export interface ProtobufNodeSourceOptions {
  readonly client: RawNodeClient;
  readonly labelSelector?: string;
}

const NODES = '/api/v1/nodes';
/** JSON second, so an error from something other than the API server (a proxy) is still readable. */
const ACCEPT = `${PROTOBUF_CONTENT_TYPE}, application/json`;
const ACCEPT_WATCH = `${PROTOBUF_CONTENT_TYPE};stream=watch`;

export class ProtobufNodeSource implements NodeSource {
  readonly #client: RawNodeClient;
  readonly #labelSelector: string | undefined;

  constructor(options: ProtobufNodeSourceOptions) {
    this.#client = options.client;
    this.#labelSelector = options.labelSelector;
  }

  async list(options: NodeListOptions): Promise<NodePage> {
    const query = { limit: options.limit, continue: options.continueToken, labelSelector: this.#labelSelector };
    const decoder = new NodeListDecoder();
    const request = { query, accept: ACCEPT, signal: options.signal };
    const response = await this.#client.getStreamed(NODES, request, (chunk) => decoder.push(chunk));
    if (response.status !== 200) throw failure('list nodes', response.status, statusOf(response));
    const list = decoder.finish();
    return { nodes: list.nodes, resourceVersion: list.resourceVersion, continueToken: list.continueToken };
  }

  async watch(options: NodeWatchOptions, handlers: NodeWatchHandlers): Promise<void> {
    const query = {
      watch: true,
      resourceVersion: options.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: options.timeoutSeconds,
      labelSelector: this.#labelSelector,
    };
    const response = await this.#client.stream(NODES, { query, accept: ACCEPT_WATCH, signal: options.signal });
    if (response.status !== 200) {
      throw failure('watch nodes', response.status, statusOf({ ...response, body: await readAll(response.body) }));
    }
    void this.#pump(response.body, handlers);
  }

  async #pump(body: AsyncIterable<Uint8Array>, handlers: NodeWatchHandlers): Promise<void> {
    const decoder = new WatchEventDecoder();
    try {
      for await (const chunk of body) {
        for (const event of decoder.push(chunk)) {
          if (event.type === 'BOOKMARK') handlers.onBookmark(event.resourceVersion);
          else if (event.type === 'ERROR') return handlers.onClose(failure('watch nodes', event.status.code, event.status));
          else handlers.onEvent(event.type, event.node);
        }
      }
      handlers.onClose();
    } catch (err) {
      handlers.onClose(err);
    }
  }
}

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** The Status of an error reply, from protobuf or JSON; undefined when the body is neither. */
function statusOf(response: RawResponse): DecodedStatus | undefined {
  try {
    if (response.contentType.startsWith(PROTOBUF_CONTENT_TYPE)) return decodeStatus(response.body);
    if (response.contentType.startsWith('application/json')) {
      const { reason = '', message = '' } = parseStatus(response.body.toString('utf8'));
      return { code: response.status, reason, message };
    }
  } catch {
    // an unreadable error body: the HTTP status alone says enough
  }
  return undefined;
}

/** 410 Gone (an expired resourceVersion or continue token) is what the informer relists on. */
function failure(what: string, code: number, status: DecodedStatus | undefined): Error {
  const detail = status === undefined ? '' : ` ${status.reason}: ${status.message}`;
  const message = `${what}: HTTP ${code}${detail}`;
  return code === 410 ? new ResourceExpiredError(message) : new Error(message);
}
