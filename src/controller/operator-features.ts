// What runs beside allocation: ranges appended from podcidr-allocator-config, the continuous audit, early
// warnings, second-allocator detection and the durable quarantine. Timers and detection run only while leading.

import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { ClusterAllocator } from '../allocator/cluster-allocator.js';
import type { QuarantineEntry, RangeSpec, RangeUsage } from '../allocator/types.js';
import type { AllocationController } from './allocation-controller.js';
import { ContinuousAudit, problemKinds } from './audit.js';
import type { ConfigMapData, ConfigMapStore, EventSink, NodeInfo, NodeLister, ObjectEventSink } from './ports.js';
import { RangeFillWatch, describeCrossing } from './early-warning.js';
import { QuarantinePersister } from './quarantine-store.js';
import { RANGE_CONFIG_KEY, RANGE_CONFIG_NAME, planRangeChange } from './range-config.js';
import { ForeignWriteDetector } from './second-allocator.js';

/** The parts of a leadership term these features use. */
export interface TermHandle {
  readonly allocator: { usage(): RangeUsage[]; quarantined(): QuarantineEntry[] };
  /** Adds ranges to the running allocator and lets waiting nodes try them. */
  appendRanges(ranges: readonly RangeSpec[]): void;
  /**
   * The node waits its turn in the work queue, is being synced, or was patched and the watch has
   * not shown it yet: its missing podCIDR is work, not a finding.
   */
  inProgress(node: { readonly name: string; readonly uid: string }): boolean;
}

/**
 * A term's handle. Appended ranges go into the running allocator; then the cached nodes' podCIDRs
 * inside them (out of range until now) are occupied before anything there is handed out, without a
 * rebuild: a rebuild from the cache would free a patch that landed before the watch showed it. Then
 * every node is queued, so waiting ones allocate at once. Before the term's own rebuild this is
 * harmless: that rebuild starts from a fresh list anyway.
 */
export function termHandle(controller: AllocationController, lister: NodeLister): TermHandle {
  return {
    allocator: controller.allocator,
    appendRanges(ranges) {
      for (const range of ranges) controller.allocator.appendRange(range);
      const nodes = lister.list();
      controller.reconciler.rangesAppended(nodes);
      for (const node of nodes) controller.queue.add(node.name);
    },
    inProgress: (node) => controller.queue.pending(node.name) || controller.reconciler.assigned(node),
  };
}

export interface OperatorFeaturesOptions {
  readonly configMaps: ConfigMapStore;
  /** Events about the ConfigMap (refused range changes, nearly full ranges). */
  readonly objectEvents: ObjectEventSink;
  readonly nodeEvents: EventSink;
  readonly lister: NodeLister;
  readonly registry: Registry;
  readonly log: Logger;
  /** --cluster-cidr as parsed: always the start of the ranges in force. */
  readonly ranges: readonly RangeSpec[];
  readonly reserved: readonly string[];
  readonly quarantineMs: number;
  /** 0 turns the audit off. */
  readonly auditIntervalMs: number;
  readonly fieldManager: string;
  /** How often usage is checked against the thresholds; default 1 s. */
  readonly usageCheckMs?: number;
  /** How often a changed quarantine is written; default 5 s. */
  readonly quarantineFlushMs?: number;
  /** How long a new term keeps trying to read the stored quarantine before it allocates without it; default 30 s. */
  readonly quarantineLoadTimeoutMs?: number;
}

export class OperatorFeatures {
  readonly #o: OperatorFeaturesOptions;
  readonly #log: Logger;
  #ranges: RangeSpec[];
  /** The config map's uid when known, so Events about it link to it. */
  #configUid: string | undefined;
  #term: TermHandle | undefined;
  /** From prepareTerm to the term's end: only the leader records Events, so replicas do not repeat them. */
  #leading = false;
  /** Why the ConfigMap's current list is refused, for a leader that starts while it stands. */
  #refusal: string | undefined;
  readonly #audit: ContinuousAudit;
  readonly #foreign: ForeignWriteDetector;
  readonly #persister: QuarantinePersister;
  #fill = new RangeFillWatch();
  readonly #foreignWrites: Counter<'manager'>;

  constructor(options: OperatorFeaturesOptions) {
    this.#o = options;
    this.#log = options.log.child({ component: 'operator' });
    this.#ranges = [...options.ranges];
    this.#audit = new ContinuousAudit({ events: options.nodeEvents, log: this.#log, fieldManager: options.fieldManager });
    this.#foreign = new ForeignWriteDetector(options.fieldManager);
    this.#persister = new QuarantinePersister({
      store: options.configMaps,
      quarantined: () => this.#term?.allocator.quarantined() ?? [],
      quarantineMs: options.quarantineMs,
      log: this.#log,
    });
    this.#foreignWrites = this.#registerMetrics(options.registry);
  }

  /** The ranges in force: the flag's, then those appended from the ConfigMap. */
  ranges(): readonly RangeSpec[] {
    return this.#ranges;
  }

  /** Watches podcidr-allocator-config until signal aborts, leader or not, so a new term starts current. */
  watchRanges(signal: AbortSignal): Promise<void> {
    return this.#o.configMaps.watch(RANGE_CONFIG_NAME, (cm) => this.#configChanged(cm), signal);
  }

  /**
   * Before a term's first allocation: reads the range ConfigMap fresh and the stored quarantine.
   * Resolves to the quarantine to seed. Create the term with ranges() right after, with no await between.
   */
  async prepareTerm(signal: AbortSignal): Promise<QuarantineEntry[]> {
    this.#leading = true;
    signal.addEventListener('abort', () => (this.#leading = false), { once: true });
    try {
      // A list still refused is refused again here, now with an Event from the leader.
      this.#configChanged(await this.#o.configMaps.read(RANGE_CONFIG_NAME, signal));
    } catch (err) {
      // Without it this term serves fewer ranges; nothing in an unknown range is handed out, and the watch catches up.
      this.#log.warn({ err }, `could not read ${RANGE_CONFIG_NAME}; starting with the ranges known so far`);
      if (this.#refusal !== undefined) this.#refuse(this.#refusal);
    }
    if (this.#o.quarantineMs === 0) return [];
    return this.#loadQuarantine(signal);
  }

  /** The term is running: start the timers and adopt what nodes carry now. Everything stops with signal. */
  termStarted(term: TermHandle, signal: AbortSignal): void {
    this.#term = term;
    this.#fill = new RangeFillWatch();
    this.#audit.reset();
    this.#foreign.startTerm();
    const timers = [
      setInterval(() => this.checkUsage(), this.#o.usageCheckMs ?? 1000),
      ...(this.#o.quarantineMs > 0 ? [setInterval(() => void this.#persister.flush(), this.#o.quarantineFlushMs ?? 5000)] : []),
      ...(this.#o.auditIntervalMs > 0 ? [setInterval(() => this.auditNow(), this.#o.auditIntervalMs)] : []),
    ];
    for (const timer of timers) timer.unref();
    signal.addEventListener(
      'abort',
      () => {
        for (const timer of timers) clearInterval(timer);
        if (this.#term === term) this.#term = undefined;
        this.#foreign.endTerm();
        this.#audit.reset();
      },
      { once: true },
    );
  }

  /** At the end of a graceful term: writes what was released since the last flush. */
  async flushQuarantine(term: TermHandle): Promise<void> {
    if (this.#o.quarantineMs === 0) return;
    const persister = new QuarantinePersister({
      store: this.#o.configMaps,
      quarantined: () => term.allocator.quarantined(),
      quarantineMs: this.#o.quarantineMs,
      log: this.#log,
    });
    await persister.flush();
  }

  /** An informer add (before undefined) or update. */
  nodeChanged(before: NodeInfo | undefined, node: NodeInfo): void {
    const write = this.#foreign.observe(before, node);
    if (write === undefined) return;
    const { manager } = write;
    const podCIDRs = node.podCIDRs.join(',');
    this.#log.warn({ node: node.name, manager, podCIDRs }, 'podCIDRs set by another allocator');
    this.#foreignWrites.inc({ manager });
    this.#o.nodeEvents.emit(
      node,
      'Warning',
      'PodCIDRSetByOtherAllocator',
      `podCIDRs ${podCIDRs} were set by field manager ${manager}, not by ${this.#o.fieldManager}; two allocators may hand out the same ranges`,
    );
  }

  /** One audit run over the cache (the timer calls it; tests may too). */
  auditNow(): void {
    const term = this.#term;
    if (term === undefined) return;
    try {
      this.#audit.run(this.#o.lister.list(), this.#ranges, this.#o.reserved, (node) => term.inProgress(node));
    } catch (err) {
      this.#log.error({ err }, 'audit failed');
    }
  }

  /** Conflicts found by the last audit, for podcidr_allocator_conflicts. */
  conflicts(): ReturnType<ContinuousAudit['conflicts']> {
    return this.#audit.conflicts();
  }

  async #loadQuarantine(signal: AbortSignal): Promise<QuarantineEntry[]> {
    const deadline = Date.now() + (this.#o.quarantineLoadTimeoutMs ?? 30_000);
    for (;;) {
      try {
        const entries = await this.#persister.load();
        this.#log.info({ entries: entries.length }, 'loaded the stored release quarantine');
        return entries;
      } catch (err) {
        if (signal.aborted || Date.now() >= deadline) {
          this.#log.warn({ err }, 'could not load the stored release quarantine; CIDRs released before this term may be reused early');
          return [];
        }
        this.#log.debug({ err }, 'could not load the stored release quarantine; retrying');
        await new Promise((resolve) => setTimeout(resolve, 1000).unref());
      }
    }
  }

  #configChanged(cm: ConfigMapData | undefined): void {
    if (cm === undefined) return;
    this.#configUid = cm.uid;
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
      this.#term?.appendRanges(change.added);
    } catch (err) {
      return this.#refuse(err instanceof Error ? err.message : String(err));
    }
    this.#ranges = ranges;
    this.#refusal = undefined;
    const added = change.added.map((r) => r.clusterCIDR).join(',');
    this.#log.info({ added, ranges: ranges.map((r) => r.clusterCIDR) }, 'appended cluster ranges');
    this.#configEvent('Normal', 'PodCIDRRangesAppended', `cluster ranges appended: ${added}`);
  }

  #refuse(reason: string): void {
    this.#refusal = reason;
    const inForce = this.#ranges.map((r) => r.clusterCIDR).join(',');
    this.#log.warn({ reason, inForce }, `refused the change to ${RANGE_CONFIG_NAME}; the ranges in force stay`);
    this.#configEvent('Warning', 'PodCIDRRangeChangeRefused', `${reason}; ranges in force stay ${inForce}`);
  }

  /**
   * Events about ranges regard the range ConfigMap: it is where an operator acts on them. It may
   * not exist yet; an Event may name an absent object, and a field selector on its name finds it.
   */
  #configEvent(type: 'Normal' | 'Warning', reason: string, note: string): void {
    if (!this.#leading) return;
    this.#o.objectEvents.emit({ kind: 'ConfigMap', name: RANGE_CONFIG_NAME, uid: this.#configUid }, type, reason, note);
  }

  /** Compares usage with the warning thresholds (the timer calls it; tests may too). */
  checkUsage(): void {
    const term = this.#term;
    if (term === undefined) return;
    for (const crossing of this.#fill.observe(term.allocator.usage())) {
      const note = describeCrossing(crossing);
      this.#log.warn({ clusterCIDR: crossing.clusterCIDR, threshold: crossing.threshold, used: crossing.used }, note);
      this.#configEvent('Warning', 'PodCIDRRangeNearlyFull', note);
    }
  }

  #registerMetrics(registry: Registry): Counter<'manager'> {
    const registers = [registry];
    const audit = this.#audit;
    new Gauge({
      name: 'podcidr_allocator_audit_findings',
      help: 'Problems the last audit of node podCIDRs found, by kind (see the check command); 0 on a standby.',
      labelNames: ['kind'],
      registers,
      collect() {
        const counts = audit.counts();
        for (const kind of problemKinds) this.set({ kind }, counts[kind]);
      },
    });
    const fill = (): RangeFillWatch => this.#fill;
    const term = (): TermHandle | undefined => this.#term;
    new Gauge({
      name: 'podcidr_allocator_range_nearly_full',
      help: 'The highest warning threshold (0.8, 0.95) a cluster range is past, 0 when below; re-armed 5 points below.',
      labelNames: ['clusterCIDR'],
      registers,
      collect() {
        this.reset();
        const levels = fill().levels();
        for (const u of term()?.allocator.usage() ?? []) this.set({ clusterCIDR: u.clusterCIDR }, levels.get(u.clusterCIDR) ?? 0);
      },
    });
    return new Counter({
      name: 'podcidr_allocator_foreign_podcidr_writes_total',
      help: 'Nodes whose podCIDRs another field manager set while this replica led, by manager.',
      labelNames: ['manager'],
      registers,
    });
  }
}
