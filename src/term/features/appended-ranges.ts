// Cluster ranges appended from podcidr-allocator-config: watched leader or not, so a new term starts
// current; read fresh before a term's first allocation; appended to the running term as they come.
// Deprecated for ClusterCIDR objects (docs/decisions/0004), and still served so no upgrade breaks.

import type { Logger } from 'pino';
import { ClusterAllocator } from '../../allocator/cluster-allocator.js';
import type { RangeSpec } from '../../allocator/types.js';
import type { ConfigMapData, ConfigMapStore } from '../../controller/ports.js';
import { RANGE_CONFIG_KEY, RANGE_CONFIG_NAME, planRangeChange } from '../../controller/range-config.js';
import { CurrentTerm, type TermFeature, type TermHandle } from './feature.js';
import type { RangeEvents } from './range-events.js';
import type { Cidr } from '../../cidr/index.js';

const DEPRECATED = 'appending through this ConfigMap is deprecated: create a ClusterCIDR without nodeSelector for each range instead';

export interface AppendedRangesOptions {
  readonly configMaps: ConfigMapStore;
  readonly events: RangeEvents;
  readonly log: Logger;
  /** --cluster-cidr as parsed: always the start of the ranges in force. */
  readonly ranges: readonly RangeSpec[];
  readonly reserved: readonly Cidr[];
}

export class AppendedRanges implements TermFeature {
  readonly #o: AppendedRangesOptions;
  #ranges: RangeSpec[];
  readonly #term = new CurrentTerm();
  /** Why the ConfigMap's current list is refused, for a leader that starts while it stands. */
  #refusal: string | undefined;

  constructor(options: AppendedRangesOptions) {
    this.#o = options;
    this.#ranges = [...options.ranges];
  }

  /** The ranges in force: the flag's, then those appended from the ConfigMap. */
  ranges(): readonly RangeSpec[] {
    return this.#ranges;
  }

  /** Watches podcidr-allocator-config until signal aborts. */
  watch(signal: AbortSignal): Promise<void> {
    return this.#o.configMaps.watch(RANGE_CONFIG_NAME, (cm) => this.#changed(cm), signal);
  }

  /**
   * Before a term's first allocation: reads the ConfigMap fresh. Create the term with ranges() right
   * after, with no await between, and a range appended meanwhile reaches the term either way.
   */
  async prepare(signal: AbortSignal): Promise<void> {
    this.#o.events.leadUntil(signal);
    try {
      // A list still refused is refused again here, now with an Event from the leader.
      this.#changed(await this.#o.configMaps.read(RANGE_CONFIG_NAME, signal));
    } catch (err) {
      // Without it this term serves fewer ranges; nothing in an unknown range is handed out, and the watch catches up.
      this.#o.log.warn({ err }, `could not read ${RANGE_CONFIG_NAME}; starting with the ranges known so far`);
      if (this.#refusal !== undefined) this.#refuse(this.#refusal);
    }
  }

  termStarted(term: TermHandle, signal: AbortSignal): void {
    this.#term.holdUntil(term, signal);
  }

  #changed(cm: ConfigMapData | undefined): void {
    if (cm === undefined) return;
    this.#o.events.seen(cm.uid);
    const change = planRangeChange(this.#ranges, cm.data[RANGE_CONFIG_KEY]);
    if (change.kind === 'unchanged') {
      this.#refusal = undefined;
      return;
    }
    if (change.kind === 'refused') return this.#refuse(change.reason);
    const ranges = [...this.#ranges, ...change.added];
    try {
      // A trial allocator finds overlaps, families and sizes it cannot serve before anything changes.
      new ClusterAllocator({ ranges, reserved: this.#o.reserved });
      this.#term.get()?.appendRanges(change.added);
    } catch (err) {
      return this.#refuse(err instanceof Error ? err.message : String(err));
    }
    this.#ranges = ranges;
    this.#refusal = undefined;
    const added = change.added.map((r) => r.clusterCIDR).join(',');
    this.#o.log.info({ added, ranges: ranges.map((r) => r.clusterCIDR) }, 'appended cluster ranges');
    this.#o.log.warn({ added }, `${RANGE_CONFIG_NAME} is deprecated: add ranges as ClusterCIDR objects (docs/decisions/0004)`);
    this.#o.events.emit('Normal', 'PodCIDRRangesAppended', `cluster ranges appended: ${added}; ${DEPRECATED}`);
  }

  #refuse(reason: string): void {
    this.#refusal = reason;
    const inForce = this.#ranges.map((r) => r.clusterCIDR).join(',');
    this.#o.log.warn({ reason, inForce }, `refused the change to ${RANGE_CONFIG_NAME}; the ranges in force stay`);
    this.#o.events.emit('Warning', 'PodCIDRRangeChangeRefused', `${reason}; ranges in force stay ${inForce}`);
  }
}
