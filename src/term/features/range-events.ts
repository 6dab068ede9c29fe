// Events about the cluster ranges. They regard the range ConfigMap, where an operator acts on them;
// it may not exist yet, and an Event may name an absent object (a field selector on its name finds it).

import type { EventType, ObjectEventSink } from '../../controller/ports.js';
import { RANGE_CONFIG_NAME } from '../../controller/range-config.js';

export class RangeEvents {
  readonly #sink: ObjectEventSink;
  /** The ConfigMap's uid when known, so Events link to it. */
  #uid: string | undefined;
  /** Only the leader records Events, so replicas do not repeat them. */
  #leading = false;

  constructor(sink: ObjectEventSink) {
    this.#sink = sink;
  }

  /** From a term's preparation to its end, Events are recorded. */
  leadUntil(signal: AbortSignal): void {
    this.#leading = true;
    signal.addEventListener('abort', () => (this.#leading = false), { once: true });
  }

  seen(uid: string): void {
    this.#uid = uid;
  }

  emit(type: EventType, reason: string, note: string): void {
    if (!this.#leading) return;
    this.#sink.emit({ kind: 'ConfigMap', name: RANGE_CONFIG_NAME, uid: this.#uid }, type, reason, note);
  }
}
