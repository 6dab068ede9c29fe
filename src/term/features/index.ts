// The operator features a term runs beside allocation, made together from the ports they use.

import type { Logger } from 'pino';
import type { QuarantineEntry, RangeSpec } from '../../allocator/types.js';
import type { ClusterCIDRStore, ConfigMapStore, EventSink, ForeignWriteObserver, NodeLister, ObjectEventSink } from '../../controller/ports.js';
import type { Clock } from '../../time.js';
import { AppendedRanges } from './appended-ranges.js';
import { AuditFeature } from './continuous-audit.js';
import { DurableQuarantine } from './durable-quarantine.js';
import { EarlyWarning } from './early-warning.js';
import type { TermFeature } from './feature.js';
import { Pools } from './pools.js';
import { RangeEvents } from './range-events.js';
import { SecondAllocator } from './second-allocator.js';
import type { Cidr } from '../../cidr/index.js';

export { startAll, termHandle, type TermFeature, type TermHandle } from './feature.js';
export type { RangeLevel } from './early-warning.js';

export interface FeaturesOptions {
  readonly configMaps: ConfigMapStore;
  readonly clusterCIDRs: ClusterCIDRStore;
  /** Events about the range ConfigMap (refused range changes, nearly full ranges). */
  readonly objectEvents: ObjectEventSink;
  readonly nodeEvents: EventSink;
  readonly lister: NodeLister;
  readonly log: Logger;
  readonly clock: Clock;
  /** --cluster-cidr as parsed. */
  readonly ranges: readonly RangeSpec[];
  readonly reserved: readonly Cidr[];
  /** 0 turns the durable quarantine off. */
  readonly quarantineMs: number;
  /** 0 turns the timed audit off. */
  readonly auditIntervalMs: number;
  readonly fieldManager: string;
  readonly foreignWrites?: ForeignWriteObserver;
  /** How often usage is checked against the thresholds; default 1 s. */
  readonly usageCheckMs?: number;
  /** How often a changed quarantine is written; default 5 s. */
  readonly quarantineFlushMs?: number;
  /** How long a new term keeps trying to read the stored quarantine; default 30 s. */
  readonly quarantineLoadTimeoutMs?: number;
}

export interface Features {
  readonly ranges: AppendedRanges;
  readonly pools: Pools;
  readonly audit: AuditFeature;
  readonly earlyWarning: EarlyWarning;
  readonly secondAllocator: SecondAllocator;
  /** Absent with --release-quarantine 0. */
  readonly quarantine: DurableQuarantine | undefined;
  /** Every one of them, to start with each term. */
  readonly all: readonly TermFeature[];
}

export function createFeatures(o: FeaturesOptions): Features {
  const log = o.log.child({ component: 'operator' });
  const events = new RangeEvents(o.objectEvents);
  const ranges = new AppendedRanges({ configMaps: o.configMaps, events, log, ranges: o.ranges, reserved: o.reserved });
  const audit = new AuditFeature({
    lister: o.lister,
    events: o.nodeEvents,
    log,
    fieldManager: o.fieldManager,
    ranges: () => ranges.ranges(),
    reserved: o.reserved,
    intervalMs: o.auditIntervalMs,
    clock: o.clock,
  });
  const earlyWarning = new EarlyWarning({ events, log, clock: o.clock, checkMs: o.usageCheckMs ?? 1000 });
  const secondAllocator = new SecondAllocator({ events: o.nodeEvents, log, fieldManager: o.fieldManager, observer: o.foreignWrites });
  const quarantine =
    o.quarantineMs > 0
      ? new DurableQuarantine({
          store: o.configMaps,
          log,
          quarantineMs: o.quarantineMs,
          flushMs: o.quarantineFlushMs ?? 5000,
          loadTimeoutMs: o.quarantineLoadTimeoutMs ?? 30_000,
          clock: o.clock,
        })
      : undefined;
  const pools = new Pools({ store: o.clusterCIDRs, events: o.objectEvents, log, clock: o.clock });
  const all = [ranges, pools, audit, earlyWarning, secondAllocator, ...(quarantine ? [quarantine] : [])];
  return { ranges, pools, audit, earlyWarning, secondAllocator, quarantine, all };
}

/**
 * Before a term's first allocation: the range ConfigMap read fresh, the first list of pools in, then
 * the stored quarantine to seed.
 */
export async function prepareTerm(features: Features, signal: AbortSignal): Promise<QuarantineEntry[]> {
  await features.ranges.prepare(signal);
  await features.pools.prepare(signal);
  return (await features.quarantine?.load(signal)) ?? [];
}
