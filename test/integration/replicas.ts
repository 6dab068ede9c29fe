// Controller replicas as child processes on the shared control plane, each with its own identity (their
// JSON log lines kept as they arrive, /metrics scraped, only their own pids signalled), and the HA checks.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type * as k8s from '@kubernetes/client-node';
import { expect } from 'vitest';
import { contains, overlaps, parseCidr } from '../../src/cidr/index.js';
import { sleep, systemClock } from '../../src/time.js';
import { eventually } from '../support/eventually.js';
import type { KubeClients, TestScope } from './harness.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const MAIN = join(ROOT, 'src/cli/main.ts');

/** Leader election durations as flag values, e.g. { lease: '4s', renew: '3s', retry: '500ms' }. */
export interface Timings {
  readonly lease: string;
  readonly renew: string;
  readonly retry: string;
}

/** Short durations for tests; a takeover after a crash costs about 4 s. */
export const FAST: Timings = { lease: '4s', renew: '3s', retry: '500ms' };
/** kube-controller-manager's defaults, which are also ours. */
export const PRODUCTION: Timings = { lease: '15s', renew: '10s', retry: '2s' };

export interface ReplicaSetOptions {
  readonly kubeconfig: string;
  readonly clusterCidr: string;
  readonly nodeCidrMaskSize: number;
  readonly lease: { readonly namespace: string; readonly name: string };
  readonly timings: Timings;
  /** Default 'debug': tests count patches from the per-node lines. */
  readonly logLevel?: string;
  readonly extraArgs?: readonly string[];
}

export interface LogLine {
  readonly level: string;
  readonly msg: string;
  /** Date.now() in this process when the line arrived. */
  readonly receivedAt: number;
  readonly fields: Readonly<Record<string, unknown>>;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly at: number;
}

/** One scrape: the value of a metric and when the request left and the answer came back (Date.now()). */
export interface Sample {
  readonly value: number | undefined;
  readonly sentAt: number;
  readonly receivedAt: number;
}

type Waiter = { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void };

export class Replica {
  readonly name: string;
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<Exit>;
  readonly #child: ChildProcess;
  readonly #waiters = new Set<Waiter>();
  #exit: Exit | undefined;
  /** Between SIGSTOP and SIGCONT: it cannot answer, so nobody should wait for its scrapes. */
  #stopped = false;

  constructor(name: string, args: readonly string[], env: NodeJS.ProcessEnv) {
    this.name = name;
    this.#child = spawn(NODE, ['--import', 'tsx', MAIN, 'run', ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: this.#pipe('stdout') }).on('line', (text) => this.#onLine(text));
    createInterface({ input: this.#pipe('stderr') }).on('line', (text) => this.stderr.push(text));
    this.exited = new Promise((done) => {
      this.#child.on('exit', (code, signal) => {
        this.#exit = { code, signal, at: Date.now() };
        done(this.#exit);
      });
    });
  }

  get pid(): number {
    const pid = this.#child.pid;
    if (pid === undefined) throw new Error(`replica ${this.name} has no pid (spawn failed)`);
    return pid;
  }

  get alive(): boolean {
    return this.#exit === undefined;
  }

  get frozen(): boolean {
    return this.#stopped && this.alive;
  }

  /** The lease holder identity this replica announced when it started serving. */
  get identity(): string {
    return stringField(this.#serving(), 'identity');
  }

  /** host:port of /healthz, /readyz and /metrics. */
  get address(): string {
    return stringField(this.#serving(), 'address');
  }

  /** Resolves once both identity and address are known. */
  async ready(timeoutMs = 60_000): Promise<void> {
    await this.waitForLog((l) => l.msg === 'serving health and metrics', timeoutMs);
  }

  /** The first line (already seen or still to come) that matches; rejects after timeoutMs or on exit. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve: (line) => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`replica ${this.name}: no matching log line within ${timeoutMs} ms\n${this.#tail()}`));
      }, timeoutMs);
      this.#waiters.add(waiter);
      void this.exited.then(() => {
        setTimeout(() => {
          if (!this.#waiters.has(waiter)) return;
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          reject(new Error(`replica ${this.name} exited before a matching log line\n${this.#tail()}`));
        }, 100);
      });
    });
  }

  signal(name: NodeJS.Signals): void {
    if (!this.alive) return;
    process.kill(this.pid, name);
    if (name === 'SIGSTOP') this.#stopped = true;
    if (name === 'SIGCONT') this.#stopped = false;
  }

  /** One metric from /metrics, its series summed; undefined when it has none. */
  async metric(name: string): Promise<Sample> {
    const sentAt = Date.now();
    const text = await (await fetch(`http://${this.address}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    return { value: metricValue(text, name), sentAt, receivedAt: Date.now() };
  }

  async healthz(): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://${this.address}/healthz`, { signal: AbortSignal.timeout(5_000) });
    return { status: res.status, body: await res.text() };
  }

  /** Lines with this message, optionally only those that arrived after `since` (Date.now()). */
  logs(msg: string, since = 0): LogLine[] {
    return this.lines.filter((l) => l.msg === msg && l.receivedAt >= since);
  }

  /** Last lines of both streams, for failure messages. */
  #tail(): string {
    const out = this.lines.slice(-15).map((l) => JSON.stringify({ level: l.level, msg: l.msg, ...l.fields }));
    return [...out, ...this.stderr.slice(-10)].join('\n');
  }

  #serving(): LogLine {
    const line = this.lines.find((l) => l.msg === 'serving health and metrics');
    if (!line) throw new Error(`replica ${this.name} is not serving yet; await ready() first`);
    return line;
  }

  #pipe(stream: 'stdout' | 'stderr'): NodeJS.ReadableStream {
    const pipe = this.#child[stream];
    if (pipe === null) throw new Error(`replica ${this.name}: no ${stream} pipe`);
    return pipe;
  }

  #onLine(text: string): void {
    const line = parseLine(text);
    if (!line) {
      this.stderr.push(text);
      return;
    }
    this.lines.push(line);
    for (const waiter of [...this.#waiters]) if (waiter.match(line)) waiter.resolve(line);
  }
}

/**
 * Starts and tracks replicas that share one lease. Each gets POD_NAME `<prefix>-<n>`, so identities
 * read `<prefix>-<n>_<random>`; stopAll() kills (SIGCONT first, then SIGKILL) whatever is still alive.
 */
export class ReplicaSet {
  readonly all: Replica[] = [];
  readonly #o: ReplicaSetOptions;
  readonly #prefix: string;
  readonly #dir: string;

  constructor(prefix: string, options: ReplicaSetOptions) {
    this.#o = options;
    this.#prefix = prefix;
    this.#dir = mkdtempSync(join(tmpdir(), 'podcidr-replicas-'));
    live.add(this);
  }

  get alive(): Replica[] {
    return this.all.filter((r) => r.alive);
  }

  /** Starts n replicas at once and waits until each serves. `server` reroutes them (e.g. through a proxy). */
  async start(n: number, options: { server?: string } = {}): Promise<Replica[]> {
    const started: Replica[] = [];
    for (let i = 0; i < n; i += 1) started.push(this.#spawn(options.server));
    await Promise.all(started.map((r) => r.ready()));
    return started;
  }

  /** The one replica whose podcidr_allocator_leader gauge reads 1, once exactly one does. */
  async leader(timeoutMs = 30_000): Promise<Replica> {
    let leaders: Replica[] = [];
    return eventually(
      async () => {
        const candidates = this.alive.filter((r) => !r.frozen);
        const values = await Promise.all(candidates.map((r) => r.metric('podcidr_allocator_leader').catch(() => undefined)));
        leaders = candidates.filter((_, i) => values[i]?.value === 1);
        const [only] = leaders;
        return only !== undefined && leaders.length === 1 ? only : undefined;
      },
      { timeoutMs, message: () => `no single leader within ${timeoutMs} ms: ${leaders.map((r) => r.name).join(', ') || 'none'}` },
    );
  }

  async stopAll(): Promise<void> {
    for (const r of this.alive) {
      r.signal('SIGCONT');
      r.signal('SIGKILL');
    }
    await Promise.all(this.all.map((r) => r.exited));
    rmSync(this.#dir, { recursive: true, force: true });
    live.delete(this);
  }

  #spawn(server: string | undefined): Replica {
    const o = this.#o;
    const name = `${this.#prefix}-${this.all.length + 1}`;
    const args = [
      '--kubeconfig', server === undefined ? o.kubeconfig : this.#kubeconfigFor(server),
      '--cluster-cidr', o.clusterCidr,
      '--node-cidr-mask-size', String(o.nodeCidrMaskSize),
      '--metrics-bind-address', '127.0.0.1:0',
      '--log-level', o.logLevel ?? 'debug',
      '--leader-elect-resource-namespace', o.lease.namespace,
      '--leader-elect-resource-name', o.lease.name,
      '--leader-elect-lease-duration', o.timings.lease,
      '--leader-elect-renew-deadline', o.timings.renew,
      '--leader-elect-retry-period', o.timings.retry,
      ...(o.extraArgs ?? []),
    ];
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, POD_NAME: name };
    const replica = new Replica(name, args, env);
    this.all.push(replica);
    return replica;
  }

  /** A copy of the kubeconfig whose cluster server is replaced. */
  #kubeconfigFor(server: string): string {
    const text = readFileSync(this.#o.kubeconfig, 'utf8').replace(/server: \S+/g, `server: ${server}`);
    const path = join(this.#dir, `kubeconfig-${this.all.length + 1}`);
    writeFileSync(path, text);
    return path;
  }
}

/** Replica sets not yet stopped: a crashing test run must not leave controllers behind. */
const live = new Set<ReplicaSet>();
process.once('exit', () => {
  for (const set of live) {
    for (const r of set.alive) {
      try {
        process.kill(r.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});

/** The sum of a metric's series (labelled or not) in Prometheus text; undefined when it has none. */
export function metricValue(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match?.[1] !== name || match[3] === undefined) continue;
    sum = (sum ?? 0) + Number(match[3]);
  }
  return sum;
}

function parseLine(text: string): LogLine | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const fields = parsed as Record<string, unknown>;
  const { level, msg } = fields;
  if (typeof level !== 'string' || typeof msg !== 'string') return undefined;
  return { level, msg, receivedAt: Date.now(), fields };
}

function stringField(line: LogLine, key: string): string {
  const value = line.fields[key];
  if (typeof value !== 'string') throw new Error(`log line "${line.msg}" has no string field ${key}`);
  return value;
}

// --- checks over nodes, the Lease and leader samples ---------------------------------------------

export class HaNodes {
  constructor(
    private readonly c: KubeClients,
    private readonly scope: TestScope,
  ) {}

  async create(base = 'node'): Promise<string> {
    const body = this.scope.node(base);
    const name = body.metadata?.name ?? '';
    await this.c.core.createNode({ body });
    return name;
  }

  async delete(name: string): Promise<void> {
    await this.c.core.deleteNode({ name }).catch(() => undefined);
  }

  async list(): Promise<k8s.V1Node[]> {
    return (await this.c.core.listNode({ labelSelector: this.scope.selector })).items;
  }

  async podCIDR(name: string): Promise<string | undefined> {
    return (await this.c.core.readNode({ name })).spec?.podCIDR;
  }

  /** Date.now() at the first poll that saw the node's podCIDR; polls every 20 ms. */
  async waitForPodCIDR(name: string, timeoutMs: number): Promise<number> {
    return eventually(async () => ((await this.podCIDR(name)) !== undefined ? Date.now() : undefined), {
      timeoutMs,
      intervalMs: 20,
      message: `node ${name} got no podCIDR within ${timeoutMs} ms`,
    });
  }

  /** Deletes every node of the scope and waits until the API server no longer lists them. */
  async deleteAll(): Promise<void> {
    await this.c.core.deleteCollectionNode({ labelSelector: this.scope.selector });
    await eventually(async () => ((await this.list()).length === 0 ? true : undefined), {
      timeoutMs: 30_000,
      message: 'scope nodes still listed 30 s after their deletion',
    });
  }
}

/** Every node holds one podCIDR inside clusterCidr, podCIDRs[0] agrees, and no two of them overlap. */
export function expectDisjointInRange(nodes: readonly k8s.V1Node[], clusterCidr: string): void {
  const range = parseCidr(clusterCidr);
  const held: { node: string; cidr: string }[] = [];
  for (const node of nodes) {
    const name = node.metadata?.name ?? '';
    const cidr = node.spec?.podCIDR;
    if (cidr === undefined) continue;
    expect(node.spec?.podCIDRs, `podCIDRs of ${name}`).toEqual([cidr]);
    expect(contains(range, parseCidr(cidr)), `${name}'s ${cidr} inside ${clusterCidr}`).toBe(true);
    held.push({ node: name, cidr });
  }
  for (let i = 0; i < held.length; i += 1) {
    for (let j = i + 1; j < held.length; j += 1) {
      const a = held[i];
      const b = held[j];
      if (a === undefined || b === undefined) continue;
      expect(overlaps(parseCidr(a.cidr), parseCidr(b.cidr)), `${a.node} ${a.cidr} vs ${b.node} ${b.cidr}`).toBe(false);
    }
  }
}

export async function leaseHolder(c: KubeClients, lease: { namespace: string; name: string }): Promise<string | undefined> {
  try {
    return (await c.coordination.readNamespacedLease(lease)).spec?.holderIdentity ?? '';
  } catch {
    return undefined;
  }
}

/** A read of the Lease's holder, timed like a Sample. */
export interface HolderSample {
  readonly holder: string | undefined;
  readonly sentAt: number;
  readonly receivedAt: number;
}

/** podcidr_allocator_leader samples of each replica and the Lease's holder, gathered together every intervalMs. */
export class LeaderSampler {
  readonly samples = new Map<Replica, Sample[]>();
  readonly holders: HolderSample[] = [];
  #stopped = false;
  #loop: Promise<void> | undefined;

  start(replicas: () => readonly Replica[], holder: () => Promise<string | undefined>, intervalMs = 100): void {
    this.#loop = (async () => {
      while (!this.#stopped) {
        const lease = (async () => {
          const sentAt = Date.now();
          const h = await holder();
          this.holders.push({ holder: h, sentAt, receivedAt: Date.now() });
        })();
        await Promise.all([lease, ...replicas().filter((r) => !r.frozen).map((r) => this.#sample(r))]);
        await sleep(systemClock, intervalMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }

  /**
   * A replica leads at most once (a lost or stopped term ends the process), so its gauge reads
   * 0…0 1…1 0…0. Between the answer of its first 1 and the request of its last 1 it surely led;
   * a 1 from another replica wholly inside that window proves two leaders at once, and a Lease
   * read wholly inside it must name this replica.
   */
  overlaps(): string[] {
    const problems: string[] = [];
    const ones = new Map<Replica, Sample[]>();
    for (const [replica, samples] of this.samples) {
      const pattern = samples.map((s) => (s.value === 1 ? '1' : '0')).join('');
      if (/10+1/.test(pattern)) problems.push(`${replica.name} led twice: ${pattern}`);
      ones.set(replica, samples.filter((s) => s.value === 1));
    }
    for (const [a, aOnes] of ones) {
      const first = aOnes[0];
      const last = aOnes.at(-1);
      if (first === undefined || last === undefined) continue;
      const from = first.receivedAt;
      const to = last.sentAt;
      for (const [b, bOnes] of ones) {
        if (a === b) continue;
        const inside = bOnes.find((s) => s.sentAt >= from && s.receivedAt <= to);
        if (inside) problems.push(`${b.name} reported 1 at ${inside.sentAt} while ${a.name} led from ${from} to ${to}`);
      }
      for (const read of this.holders) {
        if (read.sentAt >= from && read.receivedAt <= to && read.holder !== a.identity) {
          problems.push(`the Lease named ${read.holder} at ${read.sentAt} while ${a.name} led from ${from} to ${to}`);
        }
      }
    }
    return problems;
  }

  /** Lease reads that fell inside some replica's sure leading window (0 would make overlaps() vacuous for the Lease). */
  leaseReadsWhileLed(): number {
    let n = 0;
    for (const samples of this.samples.values()) {
      const ones = samples.filter((s) => s.value === 1);
      const from = ones[0]?.receivedAt ?? Infinity;
      const to = ones.at(-1)?.sentAt ?? -Infinity;
      n += this.holders.filter((r) => r.sentAt >= from && r.receivedAt <= to).length;
    }
    return n;
  }

  /** Replicas that reported 1 at least once. */
  leaders(): Replica[] {
    return [...this.samples].filter(([, s]) => s.some((x) => x.value === 1)).map(([r]) => r);
  }

  async #sample(replica: Replica): Promise<void> {
    if (!replica.alive) return;
    const sample = await replica.metric('podcidr_allocator_leader').catch(() => undefined);
    if (sample === undefined) return;
    const list = this.samples.get(replica) ?? [];
    list.push(sample);
    this.samples.set(replica, list);
  }
}
