// EventSink writing events.k8s.io/v1 Events about Nodes, with de-duplication so a full range cannot flood etcd.
// emit() never throws and never waits: creation runs in the background, bounded in flight and in memory.

import type { EventsV1Event } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../time.js';
import type { EventSink, EventType, NodeInfo } from '../controller/ports.js';
import { type RestClient, jsonBody } from './client.js';
import { describeKubeError } from './errors.js';
import { microTime } from './micro-time.js';

/** An events.k8s.io/v1 Event as sent: its MicroTimes are strings (see microTime). */
export type EventBody = Omit<EventsV1Event, 'eventTime' | 'series'> & {
  eventTime: string;
  series?: { count: number; lastObservedTime: string };
};

/** Creates one Event in namespace; throws ApiError when the server refuses it. */
export async function createEvent(api: RestClient, namespace: string, body: EventBody): Promise<void> {
  const path = `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/events`;
  jsonBody(await api.request('POST', path, { body }));
}

export type EventOutcome = 'created' | 'deduplicated' | 'dropped' | 'failed';

export interface KubeEventSinkOptions {
  readonly api: RestClient;
  readonly log: Logger;
  /** reportingInstance: who in particular reports (the leader identity). */
  readonly identity: string;
  /** reportingController; default "podcidr-allocator". */
  readonly controller?: string;
  /** Events about Nodes (cluster-scoped) go to this namespace; default "default" like upstream's recorder. */
  readonly namespace?: string;
  /** action, required by events.k8s.io/v1; default "AllocatePodCIDR". */
  readonly action?: string;
  /** The same (node, type, reason, note) is written at most once per window; default 10 min. */
  readonly windowMs?: number;
  /** Most (node, reason, note) keys remembered; the oldest are forgotten first. Default 10,000. */
  readonly maxKeys?: number;
  /** Most creations in flight; beyond it events are dropped (and counted). Default 100. */
  readonly maxInFlight?: number;
  readonly clock?: Clock;
  readonly onEvent?: (outcome: EventOutcome) => void;
}

interface Window {
  /** When the last Event for this key was created (clock ms). */
  readonly openedAt: number;
  /** Emits suppressed since then. */
  suppressed: number;
}

/** Event notes are limited to 1 kB by API validation. */
const MAX_NOTE_BYTES = 1024;

export class KubeEventSink implements EventSink {
  readonly #api: RestClient;
  readonly #log: Logger;
  readonly #identity: string;
  readonly #controller: string;
  readonly #namespace: string;
  readonly #action: string;
  readonly #windowMs: number;
  readonly #maxKeys: number;
  readonly #maxInFlight: number;
  readonly #clock: Clock;
  readonly #onEvent: ((outcome: EventOutcome) => void) | undefined;
  /** Keys in order of their last creation, oldest first (re-inserted on every creation). */
  readonly #windows = new Map<string, Window>();
  readonly #inFlight = new Set<Promise<void>>();
  #sequence = 0;
  #lastWarnAt = Number.NEGATIVE_INFINITY;

  constructor(options: KubeEventSinkOptions) {
    this.#api = options.api;
    this.#log = options.log;
    this.#identity = options.identity;
    this.#controller = options.controller ?? 'podcidr-allocator';
    this.#namespace = options.namespace ?? 'default';
    this.#action = options.action ?? 'AllocatePodCIDR';
    this.#windowMs = options.windowMs ?? 10 * 60_000;
    this.#maxKeys = options.maxKeys ?? 10_000;
    this.#maxInFlight = options.maxInFlight ?? 100;
    this.#clock = options.clock ?? systemClock;
    this.#onEvent = options.onEvent;
    if (this.#identity === '') throw new RangeError('event reportingInstance (identity) must not be empty');
    if (!(this.#windowMs >= 0)) throw new RangeError(`event window must be >= 0 ms, got ${this.#windowMs}`);
    if (!(this.#maxKeys >= 1) || !(this.#maxInFlight >= 1)) {
      throw new RangeError('maxKeys and maxInFlight must be >= 1');
    }
  }

  /**
   * Records an Event unless the same one was recorded within the window. The first emit after the
   * window creates an Event whose series.count says how often it happened since the last one.
   */
  emit(node: NodeInfo, type: EventType, reason: string, note: string): void {
    try {
      this.#emit(node, type, reason, note);
    } catch (err) {
      this.#fail(node, reason, err);
    }
  }

  /** Waits for every creation in flight (for shutdown and tests). */
  async flush(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Keys currently remembered; for tests and metrics. */
  rememberedKeys(): number {
    return this.#windows.size;
  }

  #emit(node: NodeInfo, type: EventType, reason: string, note: string): void {
    const key = `${node.name}\u0000${node.uid}\u0000${type}\u0000${reason}\u0000${note}`;
    const now = this.#clock.now();
    const open = this.#windows.get(key);
    if (open !== undefined && now - open.openedAt < this.#windowMs) {
      open.suppressed += 1;
      this.#onEvent?.('deduplicated');
      return;
    }
    if (this.#inFlight.size >= this.#maxInFlight) {
      // Not remembered either: the next emit of this key tries again.
      this.#onEvent?.('dropped');
      this.#log.debug({ node: node.name, reason }, 'too many events in flight; event dropped');
      return;
    }
    const count = open === undefined ? 1 : open.suppressed + 1;
    this.#windows.delete(key);
    this.#windows.set(key, { openedAt: now, suppressed: 0 });
    this.#forgetOld(now);
    const creation = this.#create(node, type, reason, note, count);
    this.#inFlight.add(creation);
    void creation.finally(() => this.#inFlight.delete(creation));
  }

  /** Drops expired keys with nothing suppressed, then the oldest keys beyond the bound. */
  #forgetOld(now: number): void {
    for (const [key, window] of this.#windows) {
      if (now - window.openedAt < this.#windowMs || window.suppressed > 0) break;
      this.#windows.delete(key);
    }
    for (const key of this.#windows.keys()) {
      if (this.#windows.size <= this.#maxKeys) break;
      this.#windows.delete(key);
    }
  }

  async #create(node: NodeInfo, type: EventType, reason: string, note: string, count: number): Promise<void> {
    const eventTime = microTime();
    const body: EventBody = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: this.#eventName(node.name), namespace: this.#namespace },
      eventTime,
      reportingController: this.#controller,
      reportingInstance: this.#identity,
      action: this.#action,
      reason,
      type,
      note: truncateBytes(note, MAX_NOTE_BYTES),
      regarding: { kind: 'Node', apiVersion: 'v1', name: node.name, uid: node.uid || undefined },
    };
    // The API requires series.count >= 2: a series only starts once the Event has repeated.
    if (count >= 2) body.series = { count, lastObservedTime: eventTime };
    try {
      await createEvent(this.#api, this.#namespace, body);
      this.#onEvent?.('created');
      this.#log.debug({ node: node.name, reason, count }, 'event recorded');
    } catch (err) {
      this.#fail(node, reason, err);
    }
  }

  /** Like upstream's recorder: "<object>.<unique hex>", kept within the 253-character name limit. */
  #eventName(nodeName: string): string {
    this.#sequence = (this.#sequence + 1) % 1_000_000;
    const unique = (BigInt(Date.now()) * 1_000_000n + BigInt(this.#sequence)).toString(16);
    return `${nodeName.slice(0, 253 - unique.length - 1)}.${unique}`;
  }

  /** Failures are counted; a warning at most once a minute so an unreachable server does not flood the log. */
  #fail(node: NodeInfo, reason: string, err: unknown): void {
    this.#onEvent?.('failed');
    const fields = { node: node.name, reason, error: describeKubeError(err) };
    const now = this.#clock.now();
    if (now - this.#lastWarnAt >= 60_000) {
      this.#lastWarnAt = now;
      this.#log.warn(fields, 'could not record event');
    } else {
      this.#log.debug(fields, 'could not record event');
    }
  }
}

function truncateBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let cut = text.slice(0, maxBytes);
  while (Buffer.byteLength(cut) > maxBytes - 3) cut = cut.slice(0, -1);
  return `${cut}...`;
}
