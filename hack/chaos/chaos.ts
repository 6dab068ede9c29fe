// Chaos run: one control plane, three controller replicas, node churn, the leader SIGKILLed or stopped
// with SIGTERM every few seconds, one stalled leader and one kube-apiserver restart; exits non-zero on
// any broken invariant. Every --handoff-kill-every seconds the leader is stopped gracefully (it writes a
// handoff) and the next one SIGKILLed amid a burst of new nodes, so the third starts from a stale handoff.
//
//
// --runs N runs seeds --seed, --seed + 1, ... (a random first seed without --seed) one after another on
// one control plane: each run has its own lease namespace (lease, handoff, quarantine ConfigMaps) and
// deletes its nodes at the end. A failing run keeps its replicas' logs and prints where they are.
//
//   npm run test:chaos                                   # 1,000 operations over ~60 s
//   npm run test:chaos -- --runs 3 --ops 600 --duration 40   # CI size
//   npm run test:chaos -- --ops 10000 --duration 600 --stack dual --seed 42
//   npm run test:chaos -- --ops 200 --duration 20 --plant-conflict   # must FAIL: proves the checks bite
//   npm run test:chaos -- --stack pools   # two ClusterCIDR pools (/24 and /26) and --cluster-cidr (/25) over one range
import * as k8s from '@kubernetes/client-node';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseCidr } from '../../src/cidr/index.js';
import { CLOCK_SKEW_MARGIN_MS } from '../../src/controller/quarantine-store.js';
import { HACK_DIR, startControlPlane, type ControlPlane } from '../lib/control-plane.js';
import { CHAOS_LABEL, Churn, sleep } from './churn.js';
import { HANDOFF_WRITTEN, readEvents, tallyFastStarts, type FastStartTally } from './handoffs.js';
import { checkNodes, type NodeCidrs } from './invariants.js';
import { POOL_LABEL, Pools, freeBlocks, installCrd, insideOf, labelWithoutRoom, pickPoolLabel, planPools, type PoolPlan } from './pools.js';
import { Replica, levelOf, type LogRecord, type ReplicaExit } from './replicas.js';
import { summaryLine, table, type RunSummary } from './summary.js';

const REPO = resolve(HACK_DIR, '..');
const LEASE_NAME = 'podcidr-allocator';
const LEASE_FLAGS = ['--leader-elect-lease-duration=4s', '--leader-elect-renew-deadline=3s', '--leader-elect-retry-period=500ms'];
const LEASE_MS = 4_000;
/** --handoff-interval of a replica, picked at its start: 0 is a leader whose kill leaves no fresh handoff. */
const HANDOFF_INTERVALS = ['0', '500ms', '2s'];
const REPLICAS = 3;
/**
 * New nodes created from the graceful stop on, over TAKEOVER_BURST_MS: they come early in the watch
 * from the handoff, each added before the next leader patches it, so the third leader's fast start
 * meets them still without podCIDRs there.
 */
const TAKEOVER_BURST_NODES = 16;
const TAKEOVER_BURST_MS = 1_500;
/** New nodes created all at once just before the next leader is killed, so it dies with a backlog. */
const KILL_BURST_NODES = 16;
const KILL_BURST_MS = 200;
/**
 * How long the next leader leads past its list (and the quarantine) before it is killed: long enough
 * to release deleted nodes' subnets and hand them out again, which the first's handoff knows nothing of.
 */
const NEXT_TERM_MS = 2_000;
const STACKS = ['v4', 'dual', 'pools'] as const;
type Stack = (typeof STACKS)[number];
/** What --stack random picks from, one draw per seed. */
const RANDOM_STACKS: readonly Stack[] = STACKS;

interface Settings {
  readonly ops: number;
  readonly durationMs: number;
  readonly seed: number;
  readonly stack: Stack;
  readonly quarantine: string;
  readonly killEveryMs: number;
  readonly handoffKillEveryMs: number;
  readonly maxNodes: number;
  readonly convergeMs: number;
  readonly keepLogs: boolean;
  readonly logLevel: string;
  /** Padding per node, so lists and watch replays take as long as with real nodes' status. */
  readonly nodeBytes: number;
  /** Negative control: create one node holding another node's podCIDR; the run must then fail. */
  readonly plantConflict: boolean;
  /** The run's own: the lease and the controller's ConfigMaps live here. */
  readonly namespace: string;
}

/** The command line; a run's settings are these plus what its seed decides. */
interface Flags extends Omit<Settings, 'seed' | 'stack' | 'quarantine' | 'namespace'> {
  readonly seed: number;
  readonly runs: number;
  readonly stack: string;
  readonly quarantine: string | undefined;
}

interface Cluster {
  readonly cidrs: readonly string[];
  readonly maskFlags: readonly string[];
  /** Node subnets per family: the same in both families, so it is the cluster's node capacity. */
  readonly capacity: number;
  /** In pools mode: the ClusterCIDRs sharing the flags' IPv4 range. */
  readonly pools: PoolPlan | undefined;
}

interface Rebuild {
  readonly replica: string;
  readonly at: number;
  readonly nodes: number;
  readonly occupied: number;
  readonly conflicts: Record<string, number>;
}

function flags(): Flags {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '1' },
      ops: { type: 'string', default: '1000' },
      duration: { type: 'string', default: '60' },
      seed: { type: 'string' },
      stack: { type: 'string', default: 'random' },
      quarantine: { type: 'string' },
      'kill-every': { type: 'string', default: '4' },
      'handoff-kill-every': { type: 'string', default: '15' },
      'max-nodes': { type: 'string', default: '96' },
      converge: { type: 'string', default: '30' },
      'keep-logs': { type: 'boolean', default: false },
      'log-level': { type: 'string', default: 'info' },
      // Real nodes carry status (images, conditions) of this order; it makes a watch replay long
      // enough for a fast start to allocate while the replay is still coming in.
      'node-bytes': { type: 'string', default: '8192' },
      'plant-conflict': { type: 'boolean', default: false },
    },
  });
  if (!isStack(values.stack) && values.stack !== 'random') throw new Error(`--stack must be ${STACKS.join(', ')} or random, got ${values.stack}`);
  return {
    runs: Math.floor(positive('runs', values.runs)),
    ops: positive('ops', values.ops),
    durationMs: positive('duration', values.duration) * 1000,
    seed: values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : nonNegative('seed', values.seed),
    stack: values.stack,
    quarantine: values.quarantine,
    killEveryMs: positive('kill-every', values['kill-every']) * 1000,
    handoffKillEveryMs: positive('handoff-kill-every', values['handoff-kill-every']) * 1000,
    maxNodes: Math.min(120, positive('max-nodes', values['max-nodes'])),
    convergeMs: positive('converge', values.converge) * 1000,
    keepLogs: values['keep-logs'],
    logLevel: values['log-level'],
    nodeBytes: nonNegative('node-bytes', values['node-bytes']),
    plantConflict: values['plant-conflict'],
  };
}

/** The i-th run's seed: consecutive, so each printed seed reruns alone with --seed. */
function seedOf(f: Flags, i: number): number {
  return (f.seed + i) % 2 ** 31;
}

/** What a seed decides when the flags leave it open: the stack and the release quarantine. */
function settingsFor(f: Flags, seed: number): Settings {
  const random = mulberry32(seed);
  const stack = f.stack === 'random' ? pick(random, RANDOM_STACKS) : f.stack;
  if (!isStack(stack)) throw new Error(`--stack must be ${STACKS.join(', ')} or random, got ${stack}`);
  const quarantine = f.quarantine ?? pick(random, ['0', '1s', '2s']);
  return { ...f, seed, stack, quarantine, namespace: `chaos-${seed.toString(36)}` };
}

/** 128 node subnets per family: small enough to fill at the end, big enough for the churn's live nodes. */
function cluster(s: Settings, random: () => number): Cluster {
  const octet = Math.floor(random() * 256);
  const v4 = `10.${octet}.0.0/17`;
  const v6 = `fd00:${(0x1000 + Math.floor(random() * 0xe000)).toString(16)}::/57`;
  if (s.stack === 'v4') return { cidrs: [v4], maskFlags: ['--node-cidr-mask-size-ipv4=24'], capacity: 128, pools: undefined };
  if (s.stack === 'pools') {
    const pools = planPools(s.seed.toString(36), v4);
    return { cidrs: [v4], maskFlags: [`--node-cidr-mask-size-ipv4=${pools.fallbackPrefix}`], capacity: 128, pools };
  }
  return {
    cidrs: [v4, v6],
    maskFlags: ['--node-cidr-mask-size-ipv4=24', '--node-cidr-mask-size-ipv6=64'],
    capacity: 128,
    pools: undefined,
  };
}

function isStack(text: string): text is Stack {
  return (STACKS as readonly string[]).includes(text);
}

class ChaosRun {
  readonly #s: Settings;
  readonly #cp: ControlPlane;
  readonly #cluster: Cluster;
  readonly #logDir: string;
  readonly #core: k8s.CoreV1Api;
  readonly #coordination: k8s.CoordinationV1Api;
  readonly #kc: k8s.KubeConfig;
  readonly #pools: Pools | undefined;
  readonly #random: () => number;
  readonly #lease: { namespace: string; name: string };
  readonly #replicas: Replica[] = [];
  readonly #exits: ReplicaExit[] = [];
  readonly #violations = new Set<string>();
  readonly #rebuilds: Rebuild[] = [];
  readonly #errors = new Map<string, number>();
  readonly #counts = {
    kills: 0,
    terms: 0,
    killSkips: 0,
    stalls: 0,
    started: 0,
    checks: 0,
    checkSkips: 0,
    nodesChecked: 0,
    leaderships: 0,
    handoffKills: 0,
    /** Handoff-then-kills whose killed leader had allocated while other nodes still waited. */
    dangerous: 0,
  };
  /** Replicas that logged writing a handoff. */
  readonly #handedOff = new Set<string>();
  readonly #bursts: Promise<void>[] = [];
  #replicaSeq = 0;
  #shuttingDown = false;
  /** Set when the run broke off: replicas are SIGKILLed then, which is no finding of its own. */
  #aborted = false;
  #churnDone = false;
  /** The API server restart and a handoff-then-kill wait for each other: each needs the API server. */
  #inHandoffKill = false;
  #restarting = false;

  constructor(s: Settings, cp: ControlPlane, clusterConfig: Cluster, logDir: string, random: () => number) {
    this.#s = s;
    this.#cp = cp;
    this.#cluster = clusterConfig;
    this.#logDir = logDir;
    this.#random = random;
    this.#lease = { namespace: s.namespace, name: LEASE_NAME };
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    this.#core = kc.makeApiClient(k8s.CoreV1Api);
    this.#coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    this.#kc = kc;
    this.#pools = clusterConfig.pools === undefined ? undefined : new Pools(kc, clusterConfig.pools);
  }

  /**
   * One run, never throwing: a run that breaks off counts as failed. Afterwards no replica of it is
   * alive and, unless `clean` is false, none of its nodes is left.
   */
  async run(): Promise<{ summary: RunSummary; clean: boolean }> {
    const started = Date.now();
    try {
      await this.#chaos();
    } catch (err) {
      this.#violate(`run: broke off: ${err instanceof Error ? err.message : String(err)}`);
      await this.abort();
    }
    const clean = await this.#deleteNodes();
    // Normally gone already (see #cleanup); after a break-off no controller is left to drop the finalizer.
    await this.#pools?.remove().catch((err: unknown) => say(`pools: could not remove: ${String(err)}`));
    const tally = await this.#tallyLogs();
    // A term serving pools hands off no ranges (src/term/handoff.ts): a fast start would size nodes by --cluster-cidr.
    if (this.#cluster.pools !== undefined && tally.fastStarts > 0) this.#violate(`fast start: ${tally.fastStarts} fast starts while pools were served`);
    this.#reportEnd(tally);
    const summary: RunSummary = {
      seed: this.#s.seed,
      ok: this.#violations.size === 0,
      kills: this.#counts.kills,
      terms: this.#counts.terms,
      handoffKills: this.#counts.handoffKills,
      dangerous: this.#counts.dangerous,
      fastStarts: tally.fastStarts,
      staleFastStarts: tally.stale,
      violations: this.#violations.size,
      seconds: (Date.now() - started) / 1000,
      logDir: undefined,
    };
    return { summary, clean };
  }

  async #chaos(): Promise<void> {
    await this.#createNamespace();
    if (this.#pools !== undefined) {
      // Before the replicas: a first leader must see the pools, or a labelled node gets --cluster-cidr's size.
      await installCrd(this.#kc, REPO);
      await this.#pools.create();
    }
    for (let i = 0; i < REPLICAS; i++) this.#startReplica();
    await this.#waitFor('a first leader', 60_000, async () => (await this.#leader()) !== undefined);
    const t0 = Date.now();
    const runId = this.#s.seed.toString(36);
    const churn = new Churn({
      core: this.#core,
      runId,
      random: this.#random,
      ops: this.#s.ops,
      durationMs: this.#s.durationMs,
      minNodes: Math.floor(this.#s.maxNodes / 3),
      maxNodes: this.#s.maxNodes,
      concurrency: 8,
      nodeBytes: this.#s.nodeBytes,
      labels: this.#cluster.pools === undefined ? undefined : () => ({ [POOL_LABEL]: pickPoolLabel(this.#random) }),
    });
    say(`churn: ${this.#s.ops} operations over ${this.#s.durationMs / 1000}s`);
    const churned = churn.run().finally(() => (this.#churnDone = true));
    const restart = this.#restartApiServerMidway();
    const planted = this.#s.plantConflict ? this.#plantConflict(churn, runId) : Promise.resolve();
    await Promise.all([churned, this.#killLoop(churn), this.#checkLoop(churn), restart, planted]);
    await Promise.all(this.#bursts);
    const churnMs = Date.now() - t0;
    say(`churn done: ${JSON.stringify(churn.counts)}, ${churn.live} nodes live`);

    const converged = await this.#converge();
    const leak = await this.#leakChecks(churn, runId);
    await this.#cleanup();
    this.#report({ churn, churnMs, converged, leak, restartMs: await restart });
  }

  async #createNamespace(): Promise<void> {
    try {
      await this.#core.createNamespace({ body: { metadata: { name: this.#s.namespace } } });
    } catch (err) {
      if (!(err instanceof k8s.ApiException && err.code === 409)) throw err;
    }
  }

  /** Reads the replicas' logs once they are closed (a replica's log ends 200 ms after its exit). */
  async #tallyLogs(): Promise<FastStartTally> {
    await sleep(500);
    return tallyFastStarts(await readEvents(this.#logDir));
  }

  // ---- replicas ------------------------------------------------------------------------------

  #startReplica(): Replica {
    const name = `replica-${++this.#replicaSeq}`;
    const args = [
      'run',
      `--kubeconfig=${this.#cp.kubeconfigPath}`,
      `--cluster-cidr=${this.#cluster.cidrs.join(',')}`,
      ...this.#cluster.maskFlags,
      '--metrics-bind-address=127.0.0.1:0',
      `--leader-elect-resource-namespace=${this.#lease.namespace}`,
      ...LEASE_FLAGS,
      `--release-quarantine=${this.#s.quarantine}`,
      // Some replicas never refresh their handoff, so a kill can still leave the next one a stale one.
      `--handoff-interval=${pick(this.#random, HANDOFF_INTERVALS)}`,
      '--kube-api-qps=200',
      '--kube-api-burst=400',
      `--log-level=${this.#s.logLevel}`,
    ];
    const replica = new Replica({
      name,
      repo: REPO,
      args,
      logDir: this.#logDir,
      onRecord: (r, record) => this.#onRecord(r, record),
      onExit: (exit) => this.#onExit(exit),
    });
    this.#replicas.push(replica);
    this.#counts.started++;
    return replica;
  }

  #onRecord(replica: Replica, record: LogRecord): void {
    if (record.msg === 'became leader') this.#counts.leaderships++;
    if (record.msg === HANDOFF_WRITTEN) this.#handedOff.add(replica.name);
    if (record.msg === 'rebuilt podCIDR allocations from nodes') {
      const conflicts = (record.conflicts ?? {}) as Record<string, number>;
      // Only the controller writes podCIDRs here, so any conflict a rebuild finds is one it made.
      if (Object.values(conflicts).some((n) => n > 0)) this.#violate(`rebuild: ${replica.name} found conflicts ${JSON.stringify(conflicts)}`);
      this.#rebuilds.push({
        replica: replica.name,
        at: Date.now(),
        nodes: Number(record.nodes),
        occupied: Number(record.occupied),
        conflicts,
      });
    }
    if (levelOf(record) >= 50 && typeof record.msg === 'string') {
      this.#errors.set(record.msg, (this.#errors.get(record.msg) ?? 0) + 1);
    }
  }

  #onExit(exit: ReplicaExit): void {
    this.#exits.push(exit);
    if (this.#shuttingDown) {
      if (!this.#aborted && !(exit.code === 0 && exit.expected)) this.#violate(`exit: ${exit.name} did not stop cleanly on SIGTERM (code ${exit.code}, signal ${exit.signal})`);
      return;
    }
    if (!exit.expected && !tolerated(exit)) {
      this.#violate(`exit: ${exit.name} exited on its own (code ${exit.code}, signal ${exit.signal}, last fatal: ${exit.lastFatal ?? 'none'})`);
    }
    this.#startReplica();
  }

  /** The live replica holding the lease, or undefined (lease free, expired holder dead, or API down). */
  async #leader(): Promise<Replica | undefined> {
    try {
      const lease = await this.#coordination.readNamespacedLease(this.#lease);
      const holder = lease.spec?.holderIdentity;
      return this.#replicas.find((r) => r.alive && r.identity !== undefined && r.identity === holder);
    } catch {
      return undefined;
    }
  }

  // ---- chaos ---------------------------------------------------------------------------------

  async #killLoop(churn: Churn): Promise<void> {
    // Before the API server restart at half time, so the stall is judged on its own.
    const stallAt = Date.now() + this.#s.durationMs * 0.3;
    let handoffKillAt = Date.now() + this.#s.durationMs * 0.1;
    let stalled = false;
    while (!this.#churnDone) {
      await sleep(this.#s.killEveryMs * (0.7 + 0.6 * this.#random()));
      if (this.#churnDone) break;
      const leader = await this.#nextLeader();
      if (leader === undefined) continue;
      if (!stalled && Date.now() >= stallAt) {
        // A stalled leader: its lease expires meanwhile, so it must stop (exit 1) when it runs again.
        stalled = true;
        this.#counts.stalls++;
        say(`stalling leader ${leader.name} for ${(LEASE_MS + 2000) / 1000}s (SIGSTOP)`);
        await leader.stall(LEASE_MS + 2000);
        continue;
      }
      if (Date.now() >= handoffKillAt && !this.#restarting && this.#inTerm(leader)) {
        // One that fell short (no handoff, no next leader) is tried again at the next round.
        if (await this.#handoffThenKill(churn, leader)) handoffKillAt = Date.now() + this.#s.handoffKillEveryMs;
        continue;
      }
      // Half the time a graceful stop, so the next leader starts from its handoff in the middle of the churn.
      if (this.#random() < 0.5) {
        void leader.stop();
        this.#counts.terms++;
      } else {
        leader.kill();
        this.#counts.kills++;
      }
    }
  }

  /**
   * The order a fast start must survive: `first` stops gracefully and leaves a handoff; the next
   * leader gives podCIDRs to some of a burst of new nodes and is SIGKILLed, leaving no handoff; the
   * leader after it starts from the first's handoff, now stale, while nodes still wait for podCIDRs.
   */
  async #handoffThenKill(churn: Churn, first: Replica): Promise<boolean> {
    this.#inHandoffKill = true;
    this.#counts.handoffKills++;
    try {
      return await this.#handoffThenKillSteps(churn, first);
    } catch (err) {
      say(`handoff then kill: gave up (${err instanceof Error ? err.message : String(err)})`);
      return false;
    } finally {
      this.#inHandoffKill = false;
    }
  }

  /** True once the next leader was killed. */
  async #handoffThenKillSteps(churn: Churn, first: Replica): Promise<boolean> {
    // Room above the churn's --max-nodes: the churn deletes down to it meanwhile, so subnets are released.
    const ceiling = this.#cluster.capacity - 2;
    this.#counts.terms++;
    const stopped = first.stop();
    this.#bursts.push(churn.burst(TAKEOVER_BURST_NODES, TAKEOVER_BURST_MS, ceiling));
    await Promise.race([stopped, sleep(10_000)]);
    if (!this.#handedOff.has(first.name)) {
      say(`handoff then kill: ${first.name} wrote no handoff`);
      return false;
    }
    const held = await this.#holders();
    const next = await this.#newLeader(first, 10_000);
    if (next === undefined) {
      say(`handoff then kill: no leader followed ${first.name}`);
      return false;
    }
    const termMs = parseQuarantineMs(this.#s.quarantine) + NEXT_TERM_MS;
    await this.#waitFor(`${next.name} to list`, 10_000, () => Promise.resolve(this.#rebuilds.some((r) => r.replica === next.name)));
    await sleep(termMs);
    this.#bursts.push(churn.burst(KILL_BURST_NODES, KILL_BURST_MS, ceiling));
    await sleep(KILL_BURST_MS / 2);
    next.kill();
    this.#counts.kills++;
    const nodes = await this.#nodes();
    const allocated = nodes.filter((n) => n.podCIDRs.length > 0 && !held.has(n.name)).length;
    const waiting = nodes.filter((n) => n.podCIDRs.length === 0).length;
    if (allocated > 0 && waiting > 0) this.#counts.dangerous++;
    // The third leader's first seconds are the test: no kill before it has started from the handoff.
    const third = await this.#newLeader(next, LEASE_MS + 6_000);
    say(
      `handoff then kill: ${first.name} handed off, ${next.name} gave ${allocated} nodes podCIDRs and was SIGKILLed ` +
        `with ${waiting} waiting, ${third?.name ?? 'no leader'} took over`,
    );
    await sleep(2_000);
    return true;
  }

  /** A leader still before its list stops without a handoff: it has no term to hand off. */
  #inTerm(leader: Replica): boolean {
    return this.#rebuilds.some((r) => r.replica === leader.name);
  }

  async #holders(): Promise<Set<string>> {
    return new Set((await this.#nodes()).filter((n) => n.podCIDRs.length > 0).map((n) => n.name));
  }

  /** The first live leader other than previous, polled often: the kill must land early in its term. */
  async #newLeader(previous: Replica, ms: number): Promise<Replica | undefined> {
    let leader: Replica | undefined;
    await this.#waitFor(`a leader after ${previous.name}`, ms, async () => {
      leader = await this.#leader();
      return leader !== undefined && leader !== previous;
    });
    return leader;
  }

  /** Polls for a live leader until the churn ends; each empty poll is counted as a skipped round. */
  async #nextLeader(): Promise<Replica | undefined> {
    while (!this.#churnDone) {
      const leader = await this.#leader();
      if (leader !== undefined) return leader;
      this.#counts.killSkips++;
      await sleep(1_000);
    }
    return undefined;
  }

  async #plantConflict(churn: Churn, runId: string): Promise<void> {
    await sleep(this.#s.durationMs / 4);
    const nodes = await this.#nodes();
    const body = churn.body(`chaos-${runId}-planted`);
    if (this.#cluster.pools !== undefined) {
      // A pool B /26 inside a pool A node's /24: of the right size and a different string, so only the range overlap bites.
      const holder = nodes.find((n) => n.pool === 'a' && n.podCIDRs[0]?.endsWith('/24'));
      const outer = holder?.podCIDRs[0];
      if (holder === undefined || outer === undefined) return;
      const inner = insideOf(parseCidr(outer), 26);
      body.metadata = { ...body.metadata, labels: { ...body.metadata?.labels, [POOL_LABEL]: 'b' } };
      body.spec = { podCIDR: inner, podCIDRs: [inner] };
      await this.#core.createNode({ body });
      say(`planted a pool b node holding ${inner}, inside ${holder.name}'s ${outer}`);
      return;
    }
    const holder = nodes.find((n) => n.podCIDRs.length > 0);
    if (holder === undefined) return;
    body.spec = { podCIDR: holder.podCIDRs[0], podCIDRs: [...holder.podCIDRs] };
    await this.#core.createNode({ body });
    say(`planted a node holding ${holder.name}'s podCIDRs ${holder.podCIDRs.join(',')}`);
  }

  async #restartApiServerMidway(): Promise<number> {
    await sleep(this.#s.durationMs / 2);
    while (this.#inHandoffKill) await sleep(200);
    say('restarting kube-apiserver');
    this.#restarting = true;
    const started = Date.now();
    await this.#cp.restartApiServer().finally(() => (this.#restarting = false));
    const ms = Date.now() - started;
    say(`kube-apiserver back after ${ms}ms`);
    return ms;
  }

  async #checkLoop(churn: Churn): Promise<void> {
    while (!this.#churnDone) {
      await sleep(2_000);
      const listedAt = Date.now();
      const nodes = await this.#check();
      if (nodes !== undefined) churn.resync(nodes.map((n) => n.name), listedAt);
    }
  }

  /** One invariant check of the API server's nodes; undefined when the API server did not answer. */
  async #check(): Promise<NodeCidrs[] | undefined> {
    let nodes: NodeCidrs[];
    try {
      nodes = await this.#nodes();
    } catch {
      this.#counts.checkSkips++;
      return undefined;
    }
    const result = checkNodes(nodes, this.#cluster.cidrs, this.#cluster.pools?.sizes);
    this.#counts.checks++;
    this.#counts.nodesChecked += result.nodes;
    for (const v of result.violations) this.#violate(v);
    return nodes;
  }

  async #nodes(): Promise<NodeCidrs[]> {
    const list = await this.#core.listNode({ labelSelector: CHAOS_LABEL });
    return list.items.map((n) => ({
      name: n.metadata?.name ?? '',
      podCIDR: n.spec?.podCIDR,
      podCIDRs: n.spec?.podCIDRs ?? [],
      pool: n.metadata?.labels?.[POOL_LABEL],
    }));
  }

  // ---- end checks ----------------------------------------------------------------------------

  /** Every surviving node holds one podCIDR per family within the bound; returns how long it took. */
  async #converge(): Promise<number | undefined> {
    const started = Date.now();
    const families = this.#cluster.cidrs.length;
    const done = await this.#waitFor('every node to hold its podCIDRs', this.#s.convergeMs, async () => {
      const nodes = await this.#check();
      return nodes !== undefined && nodes.every((n) => n.podCIDRs.length === families);
    });
    if (!done) {
      const nodes = (await this.#nodes()).filter((n) => n.podCIDRs.length !== families);
      this.#violate(`converge: ${nodes.length} nodes without podCIDRs ${this.#s.convergeMs / 1000}s after churn: ${nodes.slice(0, 5).map((n) => n.name).join(', ')}`);
      return undefined;
    }
    return Date.now() - started;
  }

  /**
   * No leak: the leader that lived through the churn can still hand out every free subnet (fill to
   * capacity, then one more node must wait), and a fresh leader's rebuild finds exactly the CIDRs the
   * nodes hold with no conflicts.
   */
  async #leakChecks(churn: Churn, runId: string): Promise<LeakReport> {
    await sleep(parseQuarantineMs(this.#s.quarantine) + 500);
    const before = await this.#nodes();
    const holders = before.filter((n) => n.podCIDRs.length > 0).length;
    const free = this.#cluster.capacity - holders;
    const leader = await this.#leader();
    // With pools a /26 is marked used in every pool sharing its addresses, so the gauge counts it more than once.
    const gauge = leader !== undefined && this.#cluster.pools === undefined;
    const metrics = gauge ? await this.#usedOnceUnquarantined(leader.address) : undefined;
    const held = before.reduce((sum, n) => sum + n.podCIDRs.length, 0);
    if (metrics !== undefined && metrics !== held) {
      this.#violate(`leak: the leader's podcidr_allocator_range_used_cidrs is ${metrics}, nodes hold ${held}`);
    }
    const fill = await this.#fill(churn, runId, free);
    const failover = await this.#failover();
    return { holders, free, fillMs: fill, metricsUsed: metrics, failover };
  }

  /**
   * The used-CIDR gauge counts quarantined subnets until they expire, and a leader that took over
   * lately loaded the stored quarantine with the clock-skew margin added: wait that out first, so
   * only a subnet that stays used with no node holding it counts as a leak.
   */
  async #usedOnceUnquarantined(address: string | undefined): Promise<number | undefined> {
    const deadline = Date.now() + parseQuarantineMs(this.#s.quarantine) + CLOCK_SKEW_MARGIN_MS + 2_000;
    for (;;) {
      const quarantined = await scrapeGauge(address, 'podcidr_allocator_range_quarantined_cidrs');
      if (quarantined === undefined || quarantined === 0 || Date.now() > deadline) break;
      await sleep(250);
    }
    return scrapeGauge(address, 'podcidr_allocator_range_used_cidrs');
  }

  async #fill(churn: Churn, runId: string, free: number): Promise<number | undefined> {
    const started = Date.now();
    for (let i = 0; i < free; i++) await this.#core.createNode({ body: churn.body(`chaos-${runId}-fill-${i}`) });
    const families = this.#cluster.cidrs.length;
    const full = await this.#waitFor('the cluster CIDRs to fill', this.#s.convergeMs, async () => {
      const nodes = await this.#check();
      return nodes !== undefined && nodes.every((n) => n.podCIDRs.length === families);
    });
    if (!full) {
      const waiting = (await this.#nodes()).filter((n) => n.podCIDRs.length === 0).length;
      this.#violate(`leak: ${waiting} of ${free} fill nodes got no podCIDRs while ${free} subnets should be free`);
      return undefined;
    }
    if (this.#cluster.pools !== undefined && !(await this.#topUp(churn, runId, this.#cluster.pools))) return undefined;
    const fillMs = Date.now() - started;
    const overflow = `chaos-${runId}-overflow`;
    const body = churn.body(overflow);
    if (this.#cluster.pools !== undefined) {
      // Nodes of mixed sizes fill the range unevenly: only a label with no free block of its sizes must wait.
      const label = labelWithoutRoom(this.#cluster.pools, await this.#nodes());
      if (label === undefined) {
        this.#violate('overflow: after the top-up every pool label still has a free block');
        return undefined;
      }
      body.metadata = { ...body.metadata, labels: { ...body.metadata?.labels, [POOL_LABEL]: label } };
    }
    await this.#core.createNode({ body });
    await sleep(3_000);
    const node = await this.#core.readNode({ name: overflow });
    if ((node.spec?.podCIDRs ?? []).length > 0) this.#violate(`overflow: ${overflow} got ${JSON.stringify(node.spec?.podCIDRs)} beyond capacity`);
    await this.#check();
    return fillMs;
  }

  /**
   * Past the fill's lower bound: pool A nodes while a /25 is free anywhere in the range. Each takes
   * one or two /25s (its /24 or the fallback's /25), so half the free /25s, rounded up, all fit.
   */
  async #topUp(churn: Churn, runId: string, plan: PoolPlan): Promise<boolean> {
    let added = 0;
    for (let round = 0; round < 12; round++) {
      const free = freeBlocks(plan, await this.#nodes(), plan.fallbackPrefix);
      if (free === 0) {
        say(`top-up: ${added} more pool a nodes in ${round} rounds; no /${plan.fallbackPrefix} is free now`);
        return true;
      }
      for (let i = 0; i < Math.ceil(free / 2); i++) {
        const body = churn.body(`chaos-${runId}-top-${++added}`);
        body.metadata = { ...body.metadata, labels: { ...body.metadata?.labels, [POOL_LABEL]: 'a' } };
        await this.#core.createNode({ body });
      }
      const served = await this.#waitFor('the top-up nodes to be served', this.#s.convergeMs, async () => {
        const nodes = await this.#check();
        return nodes !== undefined && nodes.every((n) => n.podCIDRs.length === 1);
      });
      if (!served) {
        const waiting = (await this.#nodes()).filter((n) => n.podCIDRs.length === 0).length;
        this.#violate(`leak: ${waiting} pool a nodes got no podCIDRs while ${free} /${plan.fallbackPrefix} blocks were free`);
        return false;
      }
    }
    this.#violate('top-up: the range still had free blocks after 12 rounds');
    return false;
  }

  /** Kills the leader once more and compares the next rebuild with the nodes. */
  async #failover(): Promise<Rebuild | undefined> {
    const leader = await this.#leader();
    if (leader === undefined) {
      this.#violate('failover: no leader to kill at the end');
      return undefined;
    }
    const killedAt = Date.now();
    leader.kill();
    this.#counts.kills++;
    let rebuild: Rebuild | undefined;
    await this.#waitFor('a rebuild after the final failover', 30_000, () => {
      rebuild = this.#rebuilds.find((r) => r.at > killedAt);
      return Promise.resolve(rebuild !== undefined);
    });
    if (rebuild === undefined) {
      this.#violate('failover: no replica rebuilt within 30s of the final leader kill');
      return undefined;
    }
    const nodes = await this.#nodes();
    const cidrs = nodes.reduce((sum, n) => sum + n.podCIDRs.length, 0);
    if (rebuild.occupied !== cidrs || rebuild.nodes !== nodes.length) {
      this.#violate(`failover: rebuild saw ${rebuild.nodes} nodes / ${rebuild.occupied} CIDRs, the API server has ${nodes.length} / ${cidrs}`);
    }
    const conflicts = Object.entries(rebuild.conflicts).filter(([, n]) => n > 0);
    if (conflicts.length > 0) this.#violate(`failover: rebuild found conflicts ${JSON.stringify(rebuild.conflicts)}`);
    return rebuild;
  }

  async #cleanup(): Promise<void> {
    await this.#core.deleteCollectionNode({ labelSelector: CHAOS_LABEL }).catch(() => undefined);
    if (this.#pools !== undefined) {
      // Nodes first: the leader drops a pool's finalizer once no node holds its addresses.
      await this.#deleteNodes();
      const left = await this.#pools.delete(30_000);
      if (left.length > 0) this.#violate(`pools: ${left.join(', ')} still there 30s after their nodes were deleted`);
    }
    this.#shuttingDown = true;
    await Promise.all(this.#replicas.filter((r) => r.alive).map((r) => r.stop()));
  }

  /** For a runner that dies early: no replica may outlive it. */
  killAll(): void {
    this.#shuttingDown = true;
    for (const r of this.#replicas) r.kill();
  }

  /** Ends a run that broke off: every replica SIGKILLed, and gone, before its nodes are deleted. */
  async abort(): Promise<void> {
    this.#aborted = true;
    this.killAll();
    await Promise.all(this.#replicas.map((r) => r.exited));
  }

  /** Deletes every chaos node and waits until none is listed: the next run must start from none. */
  async #deleteNodes(): Promise<boolean> {
    return this.#waitFor('the chaos nodes to be deleted', 30_000, async () => {
      await this.#core.deleteCollectionNode({ labelSelector: CHAOS_LABEL });
      return (await this.#nodes()).length === 0;
    });
  }

  async #waitFor(what: string, ms: number, ok: () => Promise<boolean>): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (await ok().catch(() => false)) return true;
      await sleep(250);
    }
    say(`gave up waiting for ${what} after ${ms / 1000}s`);
    return false;
  }

  #violate(text: string): void {
    if (!this.#violations.has(text)) say(`VIOLATION ${text}`);
    this.#violations.add(text);
  }

  #report(r: {
    churn: Churn;
    churnMs: number;
    converged: number | undefined;
    leak: LeakReport;
    restartMs: number;
  }): void {
    const killed = this.#exits.filter((e) => e.expected && e.signal === 'SIGKILL').length;
    const stoppedThemselves = this.#exits.filter((e) => !e.expected && tolerated(e));
    const unexpected = this.#exits.filter((e) => !e.expected && !tolerated(e));
    const lines = [
      `seed ${this.#s.seed}, ${stackText(this.#s.stack, this.#cluster.pools)} ${this.#cluster.cidrs.join(',')}, release quarantine ${this.#s.quarantine}, capacity ${this.#cluster.capacity} nodes`,
      `operations: ${r.churn.counts.creates} creates (${r.churn.counts.recreates} re-using a deleted name), ${r.churn.counts.deletes} deletes, ${r.churn.counts.burstCreates} creates in bursts, ${r.churn.counts.failed} failed requests, in ${(r.churnMs / 1000).toFixed(1)}s`,
      `chaos: ${this.#counts.kills} leader SIGKILLs and ${this.#counts.terms} SIGTERMs (a SIGTERM leaves a handoff; ${this.#counts.killSkips} polls found no live leader), ${this.#counts.stalls} leader stall (SIGSTOP ${(LEASE_MS + 2000) / 1000}s), 1 kube-apiserver restart (${r.restartMs}ms), ${this.#counts.started} replicas started, ${this.#counts.leaderships} leaderships`,
      `handoff then kill: ${this.#counts.handoffKills} tried, ${this.#counts.dangerous} with the next leader killed after allocating while nodes waited`,
      `exits: ${killed} killed by the runner, ${stoppedThemselves.length} tolerated (exit 1 after losing the lease: ${stoppedThemselves.map((e) => e.name).join(', ') || 'none'}), ${unexpected.length} unexpected; clean SIGTERM stops at the end: ${this.#exits.filter((e) => e.expected && e.signal === null && e.code === 0).length}; by outcome: ${exitTally(this.#exits)}`,
      `rebuilds: ${this.#rebuilds.length}, conflicts found in them: ${this.#rebuilds.filter((r) => Object.values(r.conflicts).some((n) => n > 0)).length}`,
      `invariant checks: ${this.#counts.checks} snapshots (${this.#counts.nodesChecked} node records; ${this.#counts.checkSkips} skipped while the API server was down): overlaps, outside the cluster CIDRs, podCIDR shape${this.#cluster.pools === undefined ? '' : ', pool sizes'}`,
      `converged: ${r.converged === undefined ? 'NO' : `every surviving node held its podCIDRs ${r.converged}ms after churn`}`,
      `leak: ${r.leak.holders} holders, ${r.leak.free} free subnets filled ${r.leak.fillMs === undefined ? 'NOT' : `in ${r.leak.fillMs}ms`}, one more node stayed without podCIDRs; used-CIDR metric ${r.leak.metricsUsed === undefined ? 'not served by run (checked by fill and rebuild)' : r.leak.metricsUsed}`,
      `final failover rebuild: ${r.leak.failover === undefined ? 'NONE' : `${r.leak.failover.replica} saw ${r.leak.failover.nodes} nodes, ${r.leak.failover.occupied} CIDRs occupied, conflicts ${JSON.stringify(r.leak.failover.conflicts)}`}`,
      `replica errors logged: ${[...this.#errors].map(([m, n]) => `${n}× ${m}`).join('; ') || 'none'}`,
    ];
    for (const line of lines) say(line);
  }

  /** Printed even for a run that broke off. */
  #reportEnd(f: FastStartTally): void {
    const details = f.staleDetails.length > 0 ? `: ${f.staleDetails.join('; ')}` : '';
    say(`fast starts: ${f.fastStarts} (${f.handoffs} handoffs written), ${f.stale} from a stale handoff${details}`);
    say(`violations: ${this.#violations.size}`);
    for (const v of [...this.#violations].slice(0, 20)) say(`  ${v}`);
  }
}

interface LeakReport {
  readonly holders: number;
  readonly free: number;
  readonly fillMs: number | undefined;
  readonly metricsUsed: number | undefined;
  readonly failover: Rebuild | undefined;
}

function stackText(stack: Stack, pools: PoolPlan | undefined): string {
  if (stack === 'dual') return 'dual-stack';
  if (pools === undefined) return 'IPv4';
  const sizes = pools.pools.map((p) => `${p.name} /${32 - p.perNodeHostBits}`).join(', ');
  return `pools (${sizes}, --cluster-cidr /${pools.fallbackPrefix}) over`;
}

/** A replica that stopped itself after losing the lease (e.g. once resumed from a stall) did the right thing. */
function tolerated(exit: ReplicaExit): boolean {
  return exit.code === 1 && (exit.lastFatal ?? '').includes('leaderelection lost');
}

function exitTally(exits: readonly ReplicaExit[]): string {
  const tally = new Map<string, number>();
  for (const e of exits) {
    const key = e.signal ?? `exit ${e.code}`;
    tally.set(key, (tally.get(key) ?? 0) + 1);
  }
  return [...tally].map(([k, n]) => `${k} ×${n}`).join(', ');
}

/** The sum of podcidr_allocator_range_used_cidrs over ranges, or undefined when run does not serve it. */
/** The sum over ranges of one per-range gauge of the replica at address. */
async function scrapeGauge(address: string | undefined, name: string): Promise<number | undefined> {
  if (address === undefined) return undefined;
  try {
    const text = await (await fetch(`http://${address}/metrics`)).text();
    const values = text
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      .map((line) => Number(line.split(' ').at(-1)));
    return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0);
  } catch {
    return undefined;
  }
}

function parseQuarantineMs(text: string): number {
  if (text === '0') return 0;
  const m = /^(\d+)(ms|s)$/.exec(text);
  if (m?.[1] === undefined) return 2_000;
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${text}`);
  return n;
}

function nonNegative(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number of 0 or more, got ${text}`);
  return n;
}

function pick<T>(random: () => number, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function say(line: string): void {
  process.stdout.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/** Every run's replicas, for a runner that dies early. */
const running = new Set<ChaosRun>();
process.once('exit', () => {
  for (const run of running) run.killAll();
});

function startCluster(): Promise<ControlPlane> {
  return startControlPlane({ log: (line) => say(line), maxRequestsInflight: 800, maxMutatingRequestsInflight: 400 });
}

/** One seed's run on cp; its logs are removed only when it passed and --keep-logs is off. */
async function runOne(f: Flags, seed: number, cp: ControlPlane): Promise<{ summary: RunSummary; clean: boolean }> {
  const s = settingsFor(f, seed);
  const random = mulberry32(seed ^ 0x5eed);
  const clusterConfig = cluster(s, random);
  say(`seed ${seed}: ${s.stack} ${clusterConfig.cidrs.join(',')}, quarantine ${s.quarantine}, kill every ~${s.killEveryMs / 1000}s, namespace ${s.namespace}`);
  const logDir = await mkdtemp(join(tmpdir(), 'podcidr-chaos-'));
  const chaos = new ChaosRun(s, cp, clusterConfig, logDir, random);
  running.add(chaos);
  const { summary, clean } = await chaos.run().finally(() => running.delete(chaos));
  const keep = !summary.ok || s.keepLogs;
  if (keep) say(`replica logs kept in ${logDir}`);
  else await rm(logDir, { recursive: true, force: true });
  say(`${summary.ok ? 'PASS' : 'FAIL'} seed ${seed}`);
  return { summary: { ...summary, logDir: keep ? logDir : undefined }, clean };
}

async function main(): Promise<number> {
  const f = flags();
  const seeds = Array.from({ length: f.runs }, (_, i) => seedOf(f, i));
  const started = Date.now();
  say(`${seeds.length} run(s), seeds ${seeds.join(', ')}`);
  const results: RunSummary[] = [];
  let cp = await startCluster();
  try {
    for (const [i, seed] of seeds.entries()) {
      if (seeds.length > 1) say(`---- run ${i + 1} of ${seeds.length}: seed ${seed}`);
      const { summary, clean } = await runOne(f, seed, cp);
      results.push(summary);
      if (!clean && i + 1 < seeds.length) {
        say('nodes of that run are left over; the next run gets a new control plane');
        await cp.stop();
        cp = await startCluster();
      }
    }
  } finally {
    await cp.stop();
  }
  for (const line of table(results)) say(line);
  for (const r of results.filter((x) => !x.ok)) say(`FAILED seed ${r.seed}: logs in ${r.logDir ?? '?'}; rerun with --seed ${r.seed}`);
  say(summaryLine(results, (Date.now() - started) / 1000));
  const ok = results.every((r) => r.ok);
  say(ok ? 'PASS' : 'FAIL');
  return ok ? 0 : 1;
}

process.exitCode = await main();
