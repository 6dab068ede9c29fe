// Watch streams in JSON: one watch event per line ({"type":…,"object":…}), opened through KubeClient.stream.
// A refused watch and an ERROR event both become ApiError, so callers classify them in one place.

import type { Query, StreamResponse } from './client.js';
import { ApiError } from './errors.js';

export interface WatchEvent {
  /** ADDED, MODIFIED, DELETED, BOOKMARK or ERROR. */
  readonly type: string;
  readonly object: unknown;
}

/** The streaming call used; KubeClient has it. */
export interface StreamClient {
  stream(
    path: string,
    request: { readonly query: Query; readonly accept: string; readonly signal: AbortSignal },
  ): Promise<StreamResponse>;
}

/**
 * Opens a watch on path; resolves once the server has accepted it (throws ApiError if not), to the
 * events in order. The stream ends when the server closes it or signal aborts.
 */
export async function openJsonWatch(
  client: StreamClient,
  path: string,
  query: Query,
  signal: AbortSignal,
): Promise<AsyncIterable<WatchEvent>> {
  const response = await client.stream(path, { query: { ...query, watch: true }, accept: 'application/json', signal });
  if (response.status !== 200) throw new ApiError(response.status, await readAll(response.body));
  return watchEvents(response.body);
}

async function* watchEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<WatchEvent> {
  const lines = new LineReader();
  for await (const chunk of body) {
    for (const line of lines.push(chunk)) yield parseEvent(line);
  }
  const last = lines.finish();
  if (last !== undefined) yield parseEvent(last);
}

function parseEvent(line: string): WatchEvent {
  const event = JSON.parse(line) as { type?: unknown; object?: unknown };
  return { type: typeof event.type === 'string' ? event.type : '', object: event.object };
}

/** An ERROR event carries a metav1.Status; code 410 means the resourceVersion is too old. */
export function watchEventError(object: unknown): ApiError {
  const code = (object as { code?: unknown } | null)?.code;
  return new ApiError(typeof code === 'number' ? code : 500, JSON.stringify(object ?? {}));
}

/** Splits a byte stream at newlines; a line may span any number of chunks. */
export class LineReader {
  #pending: Buffer[] = [];

  push(chunk: Uint8Array): string[] {
    const lines: string[] = [];
    let rest = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let end = rest.indexOf(10); end !== -1; end = rest.indexOf(10)) {
      this.#pending.push(rest.subarray(0, end));
      const line = Buffer.concat(this.#pending).toString('utf8');
      this.#pending = [];
      if (line.trim() !== '') lines.push(line);
      rest = rest.subarray(end + 1);
    }
    if (rest.length > 0) this.#pending.push(rest);
    return lines;
  }

  /** What is left after the last newline, if anything. */
  finish(): string | undefined {
    const line = Buffer.concat(this.#pending).toString('utf8');
    this.#pending = [];
    return line.trim() === '' ? undefined : line;
  }
}

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}
