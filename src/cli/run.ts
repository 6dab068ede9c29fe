// The `run` command's body: wires the clients, the Node cache, the operator features, the term runner
// and the leader elector; serves health and metrics, and handles shutdown.

import { Registry } from 'prom-client';
import { NodeInformer } from '../controller/node-informer.js';
import type { NodeSource } from '../controller/ports.js';
import type { ClusterAccess } from '../kube/access.js';
import { KubeClusterCIDRStore } from '../kube/cluster-cidrs.js';
import { KubeConfigMapStore, KubeObjectEvents } from '../kube/config-maps.js';
import {
  KubeConfigError,
  KubeEventSink,
  KubeNodeSource,
  KubeNodeWriter,
  createKubeClient,
  loadKubeConfig,
  type KubeClient,
  type KubeConfigEnvironment,
} from '../kube/index.js';
import { ProtobufNodeSource } from '../kube/protobuf-node-source.js';
import { LeaderElector, createKubeLeaseClient } from '../leader/index.js';
import type { Logger } from '../log.js';
import { startHttpServer, type HttpServer } from '../metrics/http.js';
import { createMetrics, type Metrics } from '../metrics/metrics.js';
import { createFeatures, type Features } from '../term/features/index.js';
import { TermRunner } from '../term/term-runner.js';
import { systemClock } from '../time.js';
import type { Config } from './config.js';

export const FIELD_MANAGER = 'podcidr-allocator';

export interface RunDeps {
  readonly logger: Logger;
  /** Ends the process at once; used when leadership is lost, so no request can leave afterwards. */
  readonly exit?: (code: number) => never;
  /** Where SIGTERM/SIGINT come from; tests pass their own emitter. */
  readonly signals?: NodeJS.EventEmitter;
  /** Where the in-cluster configuration is read (environment, service-account root); tests point it elsewhere. */
  readonly kubeEnvironment?: KubeConfigEnvironment;
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

/** Resolves to the process exit code. */
export async function runController(config: Config, deps: RunDeps): Promise<number> {
  const log = deps.logger.child({ component: 'run' });
  log.info({ config }, 'configuration');
  if (!config.allocateNodeCIDRs) return serveOnly(config, deps);
  const access = await loadClientConfig(config, log, deps.kubeEnvironment);
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

async function loadClientConfig(
  config: Config,
  log: Logger,
  environment: KubeConfigEnvironment | undefined,
): Promise<ClusterAccess | undefined> {
  try {
    return await loadKubeConfig(config.kube, environment);
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
  /** The caches' list and watch requests (Nodes, the ConfigMaps read beside them). */
  readonly #cacheKube: KubeClient;
  readonly #registry = new Registry();
  readonly #metrics: Metrics;
  readonly #informer: NodeInformer;
  readonly #features: Features;
  readonly #runner: TermRunner;
  readonly #elector: LeaderElector | undefined;

  constructor(config: Config, deps: RunDeps, access: ClusterAccess) {
    this.#config = config;
    this.#deps = deps;
    this.#log = deps.logger.child({ component: 'run' });
    this.#metrics = createMetrics(this.#registry, {
      usage: () => this.#runner.usage(),
      nodesWithoutPodCIDR: () => this.#informer.list().filter((n) => n.podCIDRs.length === 0 && !n.deletionTimestamp).length,
      conflicts: () => this.#features.audit.conflicts(),
      isLeader: () => this.#runner.leading(),
      auditFindings: () => this.#features.audit.counts(),
      rangeLevels: () => this.#features.earlyWarning.levels(),
      invalidPools: () => this.#features.pools.invalid(),
    });
    const { qps, burst } = config.kube;
    this.#kube = createKubeClient(access, {
      qps,
      burst,
      onRequest: this.#metrics.requests,
      // Fencing by our own monotonic clock: no write leaves once our lease may have passed to another.
      mayWrite: () => this.#elector?.holdsLease() ?? true,
    });
    // A token bucket of its own, as kube-controller-manager's shared informers have: a relist never
    // waits behind a burst of patches, and never spends the tokens the patches are waiting for.
    this.#cacheKube = createKubeClient(access, { qps, burst, onRequest: this.#metrics.requests });
    const source = nodeSource(config, this.#cacheKube);
    const log = (component: string): Logger => deps.logger.child({ component });
    this.#informer = new NodeInformer({ ...source, log: log('informer'), clock: systemClock, observer: this.#metrics.informer });
    // One sink for the whole process, so de-duplication spans leadership terms.
    const nodeEvents = new KubeEventSink({ api: this.#kube, log: log('events'), identity: config.leaderElection.identity });
    const namespace = config.leaderElection.resourceNamespace;
    this.#features = createFeatures({
      configMaps: new KubeConfigMapStore({ client: this.#kube, watchClient: this.#cacheKube, namespace, log: log('configmaps') }),
      clusterCIDRs: new KubeClusterCIDRStore({ client: this.#kube, log: log('clustercidrs') }),
      objectEvents: new KubeObjectEvents({ api: this.#kube, namespace, identity: config.leaderElection.identity, log: log('events') }),
      nodeEvents,
      lister: this.#informer,
      log: deps.logger,
      clock: systemClock,
      ranges: config.ranges,
      reserved: config.reserved,
      quarantineMs: config.releaseQuarantineMs,
      auditIntervalMs: config.auditIntervalMs,
      fieldManager: FIELD_MANAGER,
      foreignWrites: this.#metrics.foreignWrites,
    });
    this.#runner = new TermRunner({
      informer: this.#informer,
      source: source.source,
      // On the caches' budget: the patches' tokens are for the nodes a new term is about to serve.
      handoffs: new KubeConfigMapStore({ client: this.#cacheKube, namespace, log: log('configmaps') }),
      features: this.#features,
      flagRanges: config.ranges,
      handoffIntervalMs: config.handoffIntervalMs,
      allocating: {
        reserved: config.reserved,
        quarantineMs: config.releaseQuarantineMs,
        writer: new KubeNodeWriter(this.#kube, { fieldManager: FIELD_MANAGER }),
        events: nodeEvents,
        logger: deps.logger,
        workers: config.concurrentNodeSyncs,
        fieldManager: FIELD_MANAGER,
        reconcilerObserver: this.#metrics.reconciler,
        onSynced: (seconds) => this.#metrics.observeReconcile(seconds),
      },
      allocatorObserver: this.#metrics.allocatorOf,
      queueObserver: this.#metrics.queue,
      clock: systemClock,
      logger: deps.logger,
      exit: (code) => this.#exit(code),
    });
    this.#elector = config.leaderElection.enabled ? makeElector(config, this.#kube, deps.logger, this.#runner) : undefined;
  }

  async run(): Promise<number> {
    const http = await this.#serve();
    if (http === undefined) return 1;
    const stop = new AbortController();
    const signals = onStopSignal(this.#deps, this.#log, () => {
      this.#runner.stopping();
      stop.abort();
    });
    this.#log.info({ address: http.address, identity: this.#config.leaderElection.identity }, 'serving health and metrics');
    try {
      // No informer.start() here: the runner starts it at its first term or first failed attempt.
      void this.#features.ranges.watch(stop.signal);
      void this.#features.pools.watch(stop.signal);
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
    const work = this.#runner.lead(stop);
    await aborted(stop);
    await Promise.race([work, delay(STOP_GRACE_MS)]);
    this.#log.info('stopped');
    return 0;
  }

  #exit(code: number): never {
    return (this.#deps.exit ?? process.exit)(code);
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

function makeElector(config: Config, kube: KubeClient, logger: Logger, runner: TermRunner): LeaderElector {
  const le = config.leaderElection;
  const log = logger.child({ component: 'leader' });
  // Renewals get a client of their own, so a burst of patches can never delay them in the bucket.
  const leaseApi = createKubeClient(kube.access, { qps: config.kube.qps, burst: config.kube.burst });
  return new LeaderElector({
    lock: { namespace: le.resourceNamespace, name: le.resourceName },
    identity: le.identity,
    client: createKubeLeaseClient(leaseApi, { requestTimeoutMs: Math.max(1, le.renewDeadlineMs / 2) }),
    logger: log,
    leaseDurationMs: le.leaseDurationMs,
    renewDeadlineMs: le.renewDeadlineMs,
    retryPeriodMs: le.retryPeriodMs,
    releaseOnCancel: true,
    onFirstAttempt: (acquired) => runner.firstAttemptConcluded(acquired),
    onStartedLeading: (signal) => runner.lead(signal),
    onNewLeader: (leader) => logger.child({ component: 'run' }).info({ leader }, 'new leader observed'),
  });
}

/** Where the informer reads Nodes, in the --kube-api-content-type encoding, and its page size. */
function nodeSource(config: Config, client: KubeClient): { source: NodeSource; pageSize: number } {
  if (config.kube.contentType === 'application/json') {
    return { source: new KubeNodeSource({ client }), pageSize: JSON_LIST_PAGE_SIZE };
  }
  return { source: new ProtobufNodeSource({ client }), pageSize: PROTOBUF_LIST_PAGE_SIZE };
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
