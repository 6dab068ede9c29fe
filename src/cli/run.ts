// The `run` command's body: wires the client, the Node cache, the leader elector and one
// AllocationController per leadership term, serves health and metrics, and handles shutdown.

import { Registry } from 'prom-client';
import { AllocationController } from '../controller/allocation-controller.js';
import { NodeInformer } from '../controller/node-informer.js';
import { type ConflictKind, isConflictKind, type NodeInfo, type NodeSource } from '../controller/ports.js';
import { KubeConfigMapStore, KubeObjectEvents } from '../kube/config-maps.js';
import { FastStart } from '../controller/fast-start.js';
import { handoffRanges, readHandoff, takeHandoff, writeHandoff } from '../controller/handoff.js';
import type { CarriedAllocation } from '../controller/reconciler.js';
import { OperatorFeatures, termHandle } from '../controller/operator-features.js';
import { type Clock, systemClock } from '../time.js';
import type { QuarantineEntry } from '../allocator/types.js';
import type { ClusterAccess } from '../kube/access.js';
import {
  KubeConfigError,
  KubeEventSink,
  KubeNodeSource,
  KubeNodeWriter,
  createKubeClient,
  loadKubeConfig,
  type KubeClient,
} from '../kube/index.js';
import { ProtobufNodeSource } from '../kube/protobuf-node-source.js';
import { LeaderElector, createKubeLeaseClient } from '../leader/index.js';
import type { Logger } from '../log.js';
import { startHttpServer, type HttpServer } from '../metrics/http.js';
import { createMetrics, type Metrics } from '../metrics/metrics.js';
import { auditProblems } from '../controller/node-audit.js';
import type { Config } from './config.js';

export const FIELD_MANAGER = 'podcidr-allocator';

export interface RunDeps {
  readonly logger: Logger;
  /** Ends the process at once; used when leadership is lost, so no request can leave afterwards. */
  readonly exit?: (code: number) => never;
  /** Where SIGTERM/SIGINT come from; tests pass their own emitter. */
  readonly signals?: NodeJS.EventEmitter;
}

/**
 * Nodes per list page. Protobuf pages are decoded as they stream in, so a page costs little memory
 * and fewer round trips matter: 50,000 fat Nodes list in 7.1 s in pages of 5,000 against 13.8 s in
 * pages of 500. JSON pages are parsed whole, so they stay small.
 */
const PROTOBUF_LIST_PAGE_SIZE = 5000;
const JSON_LIST_PAGE_SIZE = 500;

/** A graceful stop waits this long at most for in-flight patches without leader election. */
const STOP_GRACE_MS = 10_000;

/** A graceful stop waits this long at most for the handoff to be written. */
const HANDOFF_WRITE_MS = 3_000;

/** The conflicts gauge re-audits the cache at most this often; scrapes come every 15-60 s. */
const AUDIT_MAX_AGE_MS = 15_000;

/** Resolves to the process exit code. */
export async function runController(config: Config, deps: RunDeps): Promise<number> {
  const log = deps.logger.child({ component: 'run' });
  log.info({ config }, 'configuration');
  if (!config.allocateNodeCIDRs) return serveOnly(config, deps);
  const access = await loadClientConfig(config, log);
  if (access === undefined) return 2;
  return new App(config, deps, access).run();
}

/** --allocate-node-cidrs=false: nothing to allocate, so no API server either; health and metrics only. */
async function serveOnly(config: Config, deps: RunDeps): Promise<number> {
  const log = deps.logger.child({ component: 'run' });
  log.info('allocation is disabled (--allocate-node-cidrs=false); serving health and metrics only');
  const registry = new Registry();
  const ok = () => ({ ok: true });
  const http = await startHttpServer({ address: config.metrics.bindAddress, registry, logger: log, healthz: ok, readyz: ok });
  const stop = new AbortController();
  const signals = onStopSignal(deps, log, () => stop.abort());
  log.info({ address: http.address }, 'serving health and metrics');
  await aborted(stop.signal);
  signals.dispose();
  await http.close();
  log.info('stopped');
  return 0;
}

async function loadClientConfig(config: Config, log: Logger): Promise<ClusterAccess | undefined> {
  try {
    return await loadKubeConfig(config.kube);
  } catch (err) {
    if (!(err instanceof KubeConfigError)) throw err;
    log.error({ err: err.message }, 'cannot load the Kubernetes client configuration');
    process.stderr.write(`podcidr-allocator: ${err.message}\n`);
    return undefined;
  }
}

class App {
  readonly #config: Config;
  readonly #deps: RunDeps;
  readonly #log: Logger;
  readonly #kube: KubeClient;
  /** The caches' list and watch requests (Nodes, the range ConfigMap). */
  readonly #cacheKube: KubeClient;
  readonly #registry = new Registry();
  readonly #metrics: Metrics;
  /** The informer's clock; a term's start is read from it, so it compares with the informer's list times. */
  readonly #clock: Clock = systemClock;
  readonly #informer: NodeInformer;
  readonly #elector: LeaderElector | undefined;
  /** The controller of the current leadership term, if leading. */
  #term: AllocationController | undefined;
  /** Appended ranges, audit, early warning, second-allocator detection, durable quarantine. */
  readonly #features: OperatorFeatures;
  /** The controller's ConfigMaps in its namespace: ranges and quarantine. */
  readonly #configMaps: KubeConfigMapStore;
  /**
   * The handoff, read and written on the caches' budget: the patches' tokens are for the nodes a new
   * term is about to serve. Any handoff is safe to store, even a deposed leader's: it describes its moment.
   */
  readonly #handoffs: KubeConfigMapStore;
  /** Allocating from the last term's handoff while this term's list comes in. */
  #fast: FastStart | undefined;
  /** One sink for the whole process, so de-duplication spans leadership terms. */
  readonly #nodeEvents: KubeEventSink;
  /** Set at the first stop signal: a term ending then may still write its last state. */
  #stopping = false;
  #audit: { at: number; conflicts: Partial<Record<ConflictKind, number>> } | undefined;

  constructor(config: Config, deps: RunDeps, access: ClusterAccess) {
    this.#config = config;
    this.#deps = deps;
    this.#log = deps.logger.child({ component: 'run' });
    this.#metrics = createMetrics(this.#registry, {
      usage: () => this.#term?.allocator.usage() ?? [],
      nodesWithoutPodCIDR: () => this.#informer.list().filter((n) => n.podCIDRs.length === 0 && !n.deletionTimestamp).length,
      conflicts: () => this.#conflicts(),
      isLeader: () => this.#term !== undefined || this.#fast !== undefined,
    });
    this.#kube = createKubeClient(access, {
      qps: config.kube.qps,
      burst: config.kube.burst,
      onRequest: this.#metrics.requests,
      // Fencing by our own monotonic clock: no write leaves once our lease may have passed to another.
      mayWrite: () => this.#elector?.holdsLease() ?? true,
    });
    // A token bucket of its own, as kube-controller-manager's shared informers have: a relist never
    // waits behind a burst of patches, and never spends the tokens the patches are waiting for.
    this.#cacheKube = createKubeClient(access, { qps: config.kube.qps, burst: config.kube.burst, onRequest: this.#metrics.requests });
    this.#informer = new NodeInformer({
      ...this.#nodeSource(),
      log: deps.logger.child({ component: 'informer' }),
      clock: this.#clock,
      observer: this.#metrics.informer,
    });
    this.#informer.addHandlers({
      add: (node) => this.#nodeChanged(undefined, node),
      update: (before, node) => this.#nodeChanged(before, node),
      delete: (node) => this.#term?.nodeDeleted(node),
    });
    this.#nodeEvents = new KubeEventSink({
      api: this.#kube,
      log: deps.logger.child({ component: 'events' }),
      identity: config.leaderElection.identity,
    });
    this.#configMaps = new KubeConfigMapStore({
      client: this.#kube,
      watchClient: this.#cacheKube,
      namespace: config.leaderElection.resourceNamespace,
      log: deps.logger.child({ component: 'configmaps' }),
    });
    this.#handoffs = new KubeConfigMapStore({
      client: this.#cacheKube,
      namespace: config.leaderElection.resourceNamespace,
      log: deps.logger.child({ component: 'configmaps' }),
    });
    this.#features = this.#makeFeatures();
    this.#elector = config.leaderElection.enabled ? this.#makeElector() : undefined;
  }

  /** Current conflicts in the cache, judged like `check` does; only the leader audits. */
  #conflicts(): Partial<Record<ConflictKind, number>> {
    const term = this.#term;
    if (term === undefined) return {};
    // The timed audit already judged the cache (0.2 to 0.3 s for 50,000 nodes): no second pass per scrape.
    if (this.#config.auditIntervalMs > 0) return this.#features.conflicts();
    const now = Date.now();
    if (this.#audit === undefined || now - this.#audit.at > AUDIT_MAX_AGE_MS) {
      const findings = auditProblems(this.#informer.list(), term.allocator.ranges(), this.#config.reserved, {
        fieldManager: FIELD_MANAGER,
      });
      const conflicts: Partial<Record<ConflictKind, number>> = {};
      for (const { kind } of findings.problems) {
        if (isConflictKind(kind)) conflicts[kind] = (conflicts[kind] ?? 0) + 1;
      }
      this.#audit = { at: now, conflicts };
    }
    return this.#audit.conflicts;
  }

  async run(): Promise<number> {
    const http = await this.#serve();
    if (http === undefined) return 1;
    const stop = new AbortController();
    const signals = onStopSignal(this.#deps, this.#log, () => {
      this.#stopping = true;
      stop.abort();
    });
    this.#log.info({ address: http.address, identity: this.#config.leaderElection.identity }, 'serving health and metrics');
    try {
      // No informer.start() here: #lead or #firstAttemptConcluded starts it, whichever comes first.
      void this.#features.watchRanges(stop.signal);
      return await (this.#elector ? this.#runElected(this.#elector, stop.signal) : this.#runAlone(stop.signal));
    } finally {
      signals.dispose();
      await this.#informer.stop();
      await http.close();
    }
  }

  async #runElected(elector: LeaderElector, stop: AbortSignal): Promise<number> {
    void aborted(stop).then(() => elector.stop());
    const outcome = await elector.run();
    if (outcome === 'lost') {
      this.#log.fatal('leaderelection lost; exiting so that no stale work survives');
      this.#exit(1);
    }
    this.#log.info('stopped');
    return 0;
  }

  async #runAlone(stop: AbortSignal): Promise<number> {
    const work = this.#lead(stop);
    await aborted(stop);
    await Promise.race([work, delay(STOP_GRACE_MS)]);
    this.#log.info('stopped');
    return 0;
  }

  #exit(code: number): never {
    return (this.#deps.exit ?? process.exit)(code);
  }

  /**
   * A standby's first attempt found the Lease held (or failed): it lists now, so its cache is warm
   * when it takes over. A replica that acquired at once leaves the first list to #lead instead.
   */
  #firstAttemptConcluded(acquired: boolean): void {
    if (!acquired) this.#informer.start();
  }

  /**
   * One leadership term: wait until the cache rests on a list started after the Lease was acquired,
   * rebuild from it, converge until signal aborts. On a cold start (and without leader election) the
   * informer starts here, after termStart, so its first list serves the term as well: one list, not two.
   * Meanwhile, with a handoff from the last term, nodes that join are served from it.
   */
  async #lead(signal: AbortSignal): Promise<void> {
    this.#log.info('started leading');
    const termStart = this.#clock.now();
    this.#informer.start();
    this.#fast = await this.#startFast(signal);
    const listed = await this.#informer.listedAfter(termStart, signal);
    const carried = await this.#finishFast(listed);
    if (!listed) return;
    const quarantined = await this.#features.prepareTerm(signal);
    if (signal.aborted) return;
    // No await from here to termStarted: a range appended meanwhile reaches the term either way.
    const term = this.#newTerm(signal, quarantined, termStart, carried);
    const handle = termHandle(term, this.#informer);
    this.#features.termStarted(handle, signal);
    this.#term = term;
    try {
      await term.run(signal);
    } catch (err) {
      if (signal.aborted) return;
      // A bug, not a condition to wait out: exit so the pod restarts from the cluster's state.
      this.#log.fatal({ err }, 'allocation stopped unexpectedly');
      this.#exit(1);
    } finally {
      if (this.#term === term) this.#term = undefined;
      // Still holding the Lease until it is released; after a loss the process exits instead.
      if (this.#stopping) {
        await this.#features.flushQuarantine(handle);
        await this.#handOff(term);
      }
    }
  }

  /** Starts allocating from the stored handoff, when there is one that fits the ranges. */
  async #startFast(signal: AbortSignal): Promise<FastStart | undefined> {
    const log = this.#deps.logger.child({ component: 'fast-start' });
    const handoff = await readHandoff(this.#handoffs, log, signal);
    if (handoff === undefined || signal.aborted) return undefined;
    const ranges = handoffRanges(handoff, this.#config.ranges);
    if (ranges === undefined) {
      log.info('the handoff describes other cluster ranges; allocating once the node list is in');
      return undefined;
    }
    try {
      const fast = new FastStart(
        {
          ...this.#allocating(),
          handoff,
          ranges,
          source: this.#nodeSource().source,
        },
        signal,
      );
      fast.start();
      log.info({ resourceVersion: handoff.resourceVersion }, 'allocating from the handoff while the node list comes in');
      return fast;
    } catch (err) {
      log.warn({ err }, 'cannot allocate from the handoff; allocating once the node list is in');
      return undefined;
    }
  }

  async #finishFast(listed: boolean): Promise<CarriedAllocation[]> {
    const fast = this.#fast;
    if (fast === undefined) return [];
    try {
      const carried = await fast.finish();
      const allocated = carried.filter((c) => c.landed).length;
      const summary = { allocated, pending: carried.length - allocated };
      const log = this.#deps.logger.child({ component: 'fast-start' });
      log.info(summary, listed ? 'node list is in; handing over to the term' : 'term ended before the node list was in');
      return carried;
    } finally {
      this.#fast = undefined;
    }
  }

  /**
   * At the end of a graceful term, its workers done: what it held taken and what the cache shows,
   * read together with the cache's resourceVersion, for the next leader to start from.
   */
  async #handOff(term: AllocationController): Promise<void> {
    const resourceVersion = this.#informer.lastSyncResourceVersion();
    if (resourceVersion === '') return;
    const handoff = takeHandoff(term.allocator, this.#informer.list(), resourceVersion);
    const log = this.#deps.logger.child({ component: 'handoff' });
    // Bounded: a spent token bucket must not hold the stop up; the next leader then lists first.
    await writeHandoff(this.#handoffs, handoff, log, AbortSignal.timeout(HANDOFF_WRITE_MS));
  }

  #nodeChanged(before: NodeInfo | undefined, node: NodeInfo): void {
    this.#term?.nodeChanged(node);
    this.#features.nodeChanged(before, node);
  }

  #newTerm(
    signal: AbortSignal,
    quarantined: readonly QuarantineEntry[],
    termStart: number,
    carried: readonly CarriedAllocation[],
  ): AllocationController {
    return new AllocationController(
      {
        ...this.#allocating(),
        ranges: this.#features.ranges(),
        quarantined,
        carried,
        lister: this.#informer,
        termStart,
        allocatorObserver: this.#metrics.allocator,
        queueObserver: this.#metrics.queue,
      },
      signal,
    );
  }

  /** What a term and a fast start allocate with alike: flags, the patch writer, Events, metrics. */
  #allocating() {
    const config = this.#config;
    return {
      reserved: config.reserved,
      quarantineMs: config.releaseQuarantineMs,
      writer: new KubeNodeWriter(this.#kube, { fieldManager: FIELD_MANAGER }),
      events: this.#nodeEvents,
      logger: this.#deps.logger,
      workers: config.concurrentNodeSyncs,
      fieldManager: FIELD_MANAGER,
      reconcilerObserver: this.#metrics.reconciler,
      onSynced: (seconds: number) => this.#metrics.observeReconcile(seconds),
    };
  }

  #makeFeatures(): OperatorFeatures {
    const config = this.#config;
    const namespace = config.leaderElection.resourceNamespace;
    const log = this.#deps.logger;
    return new OperatorFeatures({
      configMaps: this.#configMaps,
      objectEvents: new KubeObjectEvents({
        api: this.#kube,
        namespace,
        identity: config.leaderElection.identity,
        log: log.child({ component: 'events' }),
      }),
      nodeEvents: this.#nodeEvents,
      lister: this.#informer,
      registry: this.#registry,
      log,
      ranges: config.ranges,
      reserved: config.reserved,
      quarantineMs: config.releaseQuarantineMs,
      auditIntervalMs: config.auditIntervalMs,
      fieldManager: FIELD_MANAGER,
    });
  }

  /** Where the informer reads Nodes, in the --kube-api-content-type encoding, and its page size. */
  #nodeSource(): { source: NodeSource; pageSize: number } {
    if (this.#config.kube.contentType === 'application/json') {
      const source = new KubeNodeSource({ client: this.#cacheKube });
      return { source, pageSize: JSON_LIST_PAGE_SIZE };
    }
    return { source: new ProtobufNodeSource({ client: this.#cacheKube }), pageSize: PROTOBUF_LIST_PAGE_SIZE };
  }

  #makeElector(): LeaderElector {
    const le = this.#config.leaderElection;
    // Renewals get a client of their own, so a burst of patches can never delay them in the bucket.
    const leaseApi = createKubeClient(this.#kube.access, { qps: this.#config.kube.qps, burst: this.#config.kube.burst });
    return new LeaderElector({
      lock: { namespace: le.resourceNamespace, name: le.resourceName },
      identity: le.identity,
      client: createKubeLeaseClient(leaseApi, { requestTimeoutMs: Math.max(1, le.renewDeadlineMs / 2) }),
      logger: this.#deps.logger.child({ component: 'leader' }),
      leaseDurationMs: le.leaseDurationMs,
      renewDeadlineMs: le.renewDeadlineMs,
      retryPeriodMs: le.retryPeriodMs,
      releaseOnCancel: true,
      onFirstAttempt: (acquired) => this.#firstAttemptConcluded(acquired),
      onStartedLeading: (signal) => this.#lead(signal),
      onNewLeader: (leader) => this.#log.info({ leader }, 'new leader observed'),
    });
  }

  async #serve(): Promise<HttpServer | undefined> {
    try {
      return await startHttpServer({
        address: this.#config.metrics.bindAddress,
        registry: this.#registry,
        logger: this.#deps.logger.child({ component: 'http' }),
        healthz: () => this.#elector?.check() ?? { ok: true },
        // Standbys are ready too once synced: a disruption budget counts ready pods.
        readyz: () => (this.#informer.hasSynced() ? { ok: true } : { ok: false, reason: 'node cache has not synced yet' }),
      });
    } catch (err) {
      this.#log.error({ err, address: this.#config.metrics.bindAddress }, 'cannot serve health and metrics');
      return undefined;
    }
  }

}

/** Runs onFirst at the first SIGTERM/SIGINT; a second signal exits 1 at once. */
function onStopSignal(deps: RunDeps, log: Logger, onFirst: () => void): { dispose(): void } {
  const signals = deps.signals ?? process;
  let seen = 0;
  const handler = (name: string): void => {
    seen += 1;
    if (seen === 1) {
      log.info({ signal: name }, 'stopping: finishing in-flight work');
      onFirst();
      return;
    }
    log.warn({ signal: name }, 'second signal; exiting now');
    (deps.exit ?? process.exit)(1);
  };
  signals.on('SIGTERM', handler);
  signals.on('SIGINT', handler);
  return {
    dispose: () => {
      signals.off('SIGTERM', handler);
      signals.off('SIGINT', handler);
    },
  };
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
