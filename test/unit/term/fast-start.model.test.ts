// The fast start against the real allocator and reconciler over a simulated API server. Leader A
// hands off at resourceVersion h; leader B allocates after h with a correct allocator of its own and
// dies without a handoff; fast starts from A's stale handoff then watch from h, while the test picks
// what happens next: kubelets, the watch's pace, bookmarks, closes and 410s, answers to requests in
// any order, time, and terms that die and are followed by another fast start from the same handoff.
// No two Nodes may ever hold one subnet; nodes that join get podCIDRs once the watch has caught up.

import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { ClusterAllocator } from '../../../src/allocator/cluster-allocator.js';
import { FastStart } from '../../../src/term/fast-start.js';
import { handoffRanges, takeHandoff, type Handoff } from '../../../src/term/handoff.js';
import {
  type NodeInfo,
  type NodeWatchHandlers,
  type NodeWriter,
  ResourceExpiredError,
} from '../../../src/controller/ports.js';
import { Reconciler, type CarriedAllocation } from '../../../src/controller/reconciler.js';
import { ManualClock } from '../../support/manual-clock.js';
import { RecordingEvents } from '../controller/reconciler-fakes.js';
import { SimServer, SimSource, SimWriter, Wire, sharesAddress, type LoggedEvent } from '../controller/simulated-api-server.js';
import { parseRange } from '../../../src/allocator/range-spec.js';

/** Eight subnets: few enough that two allocators meet on one soon. */
const RANGES = [parseRange('10.0.0.0/27', 30)];
const SUBNETS = Array.from({ length: 8 }, (_, i) => `10.0.0.${i * 4}/30`);
const NAMES = ['n0', 'n1', 'n2', 'n3', 'n4'] as const;
const SILENT = pino({ level: 'silent' });

interface Term {
  readonly id: number;
  readonly by: string;
  readonly fast: FastStart;
  readonly stop: AbortController;
  readonly source: SimSource;
  readonly writer: SimWriter;
  /** Uids of nodes created after this term started: the ones it must serve once caught up. */
  readonly joined: Set<string>;
  /** The server's resourceVersion when the term took the Lease: its node list is at or past it. */
  readonly startedAt: number;
  finishing?: Promise<void>;
  carried?: CarriedAllocation[];
}

/** Lets every promise chain run until it waits on the wire, a watch or a timer. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function describeEvent(e: LoggedEvent): string {
  const cidrs = e.node.podCIDRs.length > 0 ? ` [${e.node.podCIDRs.join(',')}]` : '';
  return `rv ${e.node.resourceVersion} ${e.type} ${e.node.name}${cidrs} by ${e.by}`;
}

class World {
  readonly server = new SimServer();
  readonly wire = new Wire();
  readonly story: string[] = [];
  readonly violations: string[] = [];
  readonly workers: number;
  handoff: Handoff | undefined;
  term: Term | undefined;
  #terms = 0;

  constructor(workers: number) {
    this.workers = workers;
    // No cache is ever at resourceVersion 0 ("any"): a cluster has written something before its first node.
    this.server.bump();
    this.server.onChange = (e) => this.#changed(e);
    this.wire.onSend = (r) => this.tell(`  term ${r.term} sends: ${r.what}`);
  }

  tell(line: string): void {
    this.story.push(line);
  }

  /** Throws, with the whole story, at the first broken promise (two holders of a subnet, a node left waiting). */
  assertNoViolation(): void {
    if (this.violations.length === 0) return;
    throw new Error(`${this.violations.join('\n')}\n--- what happened (workers: ${this.workers}):\n${this.story.join('\n')}`);
  }

  /** A leader with an allocator that knows every node: any subnet no live node holds. */
  freeNow(): string[] {
    const held = [...this.server.nodes.values()].map((n) => n.podCIDRs);
    return SUBNETS.filter((s) => !held.some((cidrs) => sharesAddress(cidrs, [s])));
  }

  handOff(): void {
    const nodes = [...this.server.nodes.values()];
    this.handoff = takeHandoff(new ClusterAllocator({ ranges: RANGES }), nodes, String(this.server.resourceVersion));
    this.tell(`leader A hands off at rv ${this.handoff.resourceVersion}; leader B takes over`);
  }

  startTerm(): void {
    const handoff = this.handoff;
    const ranges = handoff && handoffRanges(handoff, RANGES);
    if (handoff === undefined || ranges === undefined) throw new Error('no usable handoff');
    const id = ++this.#terms;
    const by = `fast start #${id}`;
    const source = new SimSource(this.server, this.wire, id, () => performance.now());
    const writer = new SimWriter(this.server, this.wire, id, by);
    const stop = new AbortController();
    const options = { handoff, ranges, reserved: [], quarantineMs: 0, source, writer, workers: this.workers };
    const fast = new FastStart(
      { ...options, events: new RecordingEvents(), logger: SILENT, fieldManager: 'podcidr-allocator' },
      stop.signal,
    );
    this.term = { id, by, fast, stop, source, writer, joined: new Set(), startedAt: this.server.resourceVersion };
    this.tell(`${by} starts from the handoff at rv ${handoff.resourceVersion} (server at rv ${this.server.resourceVersion})`);
    fast.start();
  }

  /** SIGKILL: its requests get no answer (written(i) says which of its patches land anyway), then the next term starts. */
  async killTerm(written: (i: number) => boolean): Promise<void> {
    const term = this.term;
    if (term === undefined) return;
    this.tell(`${term.by} dies; of what it has on the wire, only patches may still land`);
    this.wire.kill(term.id, written);
    term.stop.abort();
    await settle();
    this.startTerm();
  }

  finish(): void {
    const term = this.term;
    if (term === undefined || term.finishing) return;
    this.tell(`${term.by} finishes`);
    term.finishing = term.fast.finish().then((carried) => {
      term.carried = carried;
      term.writer.closed = true;
    });
  }

  /** Nodes created after the current term began, that it should have given podCIDRs, when it could have. */
  checkJoined(): void {
    const term = this.term;
    if (term === undefined) return;
    const free = this.#freeFor(term);
    if (free.length === 0) return;
    for (const node of this.server.nodes.values()) {
      if (node.podCIDRs.length > 0 || !term.joined.has(node.uid)) continue;
      this.violations.push(`${node.name} joined after ${term.by} began and has no podCIDRs, though ${free.join(',')} looked free to it`);
    }
  }

  /** Subnets the term could not have thought taken: not in the handoff, on no node since, never sent by it. */
  #freeFor(term: Term): string[] {
    const handoff = this.handoff;
    if (handoff === undefined) return [];
    const held = new ClusterAllocator({ ranges: RANGES });
    for (const taken of handoff.ranges) held.markTaken(taken);
    const since = this.server.log.filter((e) => Number(e.node.resourceVersion) > Number(handoff.resourceVersion));
    const seen = [...since.map((e) => e.node.podCIDRs), ...term.writer.sent.map((p) => p.podCIDRs)];
    return SUBNETS.filter((s) => !held.isAllocated(s) && !seen.some((cidrs) => sharesAddress(cidrs, [s])));
  }

  #changed(e: LoggedEvent): void {
    this.tell(`  ${describeEvent(e)}`);
    if (e.type === 'ADDED') this.term?.joined.add(e.node.uid);
    if (e.type === 'DELETED') return;
    for (const other of this.server.nodes.values()) {
      if (other.name === e.node.name || !sharesAddress(other.podCIDRs, e.node.podCIDRs)) continue;
      this.violations.push(
        `two nodes hold one subnet: ${e.node.name} [${e.node.podCIDRs.join(',')}] (written by ${e.by} at rv ${e.node.resourceVersion}) and ${other.name} [${other.podCIDRs.join(',')}]`,
      );
    }
  }
}

/** The term never writes here: only what its rebuild and the informer's events make of the carried. */
const NO_WRITES: NodeWriter = {
  patchPodCIDRs: () => Promise.reject(new Error('the term after the fast start is not asked to write here')),
  getNode: () => Promise.reject(new Error('the term after the fast start is not asked to read here')),
};

/**
 * The term after the last fast start: a list at a resourceVersion from the Lease on, the carried
 * allocations, then the informer's events to the present. Its allocator must hold taken every subnet
 * a live node holds (else it could give one away), and nothing else but the patches it still has out
 * for live nodes (else a subnet leaks).
 */
function checkTermAfter(w: World, term: Term, carried: readonly CarriedAllocation[], fraction: number): void {
  const now = w.server.resourceVersion;
  const listAt = term.startedAt + Math.floor(fraction * (now - term.startedAt));
  const cache = new Map<string, NodeInfo>();
  const apply = (e: LoggedEvent): void => {
    if (e.type === 'DELETED') cache.delete(e.node.name);
    else cache.set(e.node.name, e.node);
  };
  for (const e of w.server.log) if (Number(e.node.resourceVersion) <= listAt) apply(e);
  const allocator = new ClusterAllocator({ ranges: RANGES });
  const lister = { get: (name: string) => cache.get(name), list: () => [...cache.values()] };
  const clock = new ManualClock();
  const options = { allocator, lister, writer: NO_WRITES, events: new RecordingEvents(), logger: SILENT, clock };
  const reconciler = new Reconciler({ ...options, fieldManager: 'podcidr-allocator' });
  reconciler.rebuild(lister.list(), carried, String(listAt));
  w.tell(`the term lists at rv ${listAt} and takes over ${carried.length} carried allocation(s); the informer goes on to rv ${now}`);
  for (const e of w.server.log) {
    if (Number(e.node.resourceVersion) <= listAt) continue;
    const before = cache.get(e.node.name);
    apply(e);
    if (e.type === 'DELETED') reconciler.nodeDeleted(e.node);
    else if (before !== undefined && before.uid !== e.node.uid) reconciler.nodeDeleted(before);
  }
  // Adopting what the cache shows is the workers' first step; nothing here needs a write.
  for (const node of cache.values()) if (node.podCIDRs.length > 0) void reconciler.sync(node.name);
  const pending = reconciler.pendingReservations();
  for (const subnet of SUBNETS) {
    const holder = [...w.server.nodes.values()].find((n) => sharesAddress(n.podCIDRs, [subnet]));
    const reservedFor = [...pending].find(([name, cidrs]) => w.server.nodes.get(name)?.podCIDRs.length === 0 && cidrs.includes(subnet));
    if (holder !== undefined && !allocator.isAllocated(subnet)) {
      w.violations.push(`the term after ${term.by} holds ${subnet} free, but ${holder.name} holds it`);
    }
    if (holder === undefined && reservedFor === undefined && allocator.isAllocated(subnet)) {
      w.violations.push(`the term after ${term.by} holds ${subnet} taken, but no live node holds it or waits for it: a leak`);
    }
  }
}

// ---- commands ---------------------------------------------------------------------------------

type Command = fc.AsyncCommand<World, World>;

/** A command whose check says when it can happen; every step ends with the property checked. */
function step(label: string, check: (w: World) => boolean, act: (w: World) => void | Promise<void>): Command {
  return {
    check,
    run: async (_model, w) => {
      w.tell(label);
      await act(w);
      await settle();
      w.assertNoViolation();
    },
    toString: () => label,
  };
}

const nodeName = fc.constantFrom(...NAMES);

function weighted(arbitrary: fc.Arbitrary<Command> | undefined, weight: number): fc.WeightedArbitrary<Command> {
  if (arbitrary === undefined) throw new Error('missing command');
  return { arbitrary, weight };
}

function kubeletCommands(): fc.Arbitrary<Command>[] {
  return [
    nodeName.map((n) => step(`create ${n}`, (w) => !w.server.nodes.has(n), (w) => void w.server.create(n, 'kubelet'))),
    nodeName.map((n) => step(`delete ${n}`, (w) => w.server.nodes.has(n), (w) => void w.server.remove(n, 'admin'))),
    nodeName.map((n) => step(`touch ${n}`, (w) => w.server.nodes.has(n), (w) => void w.server.touch(n, 'kubelet'))),
    fc.constant(step('another object is written', () => true, (w) => w.server.bump())),
  ];
}

/** Leader A before the handoff, leader B after it: each allocates from what every node holds at its time. */
function leaderCommands(leader: string): fc.Arbitrary<Command>[] {
  const [create, remove, touch, write] = kubeletCommands();
  const allocates = fc.tuple(nodeName, fc.nat(7)).map(([n, pick]) =>
    step(
      `leader ${leader} gives ${n} free subnet ${pick}`,
      (w) => w.server.nodes.get(n)?.podCIDRs.length === 0 && w.freeNow().length > 0,
      (w) => {
        const free = w.freeNow();
        void w.server.patchPodCIDRs(n, [free[pick % free.length] ?? ''], `leader ${leader}`);
      },
    ),
  );
  return [fc.oneof(weighted(create, 4), weighted(remove, 1), weighted(touch, 1), weighted(write, 1), weighted(allocates, 5))];
}

function openWatch(w: World, k: number) {
  const open = w.term?.source.open() ?? [];
  return open[k % Math.max(1, open.length)];
}

function hasOpenWatch(w: World): boolean {
  return (w.term?.source.open().length ?? 0) > 0;
}

function termAlive(w: World): boolean {
  return w.term !== undefined && w.term.finishing === undefined;
}

const TICKS = [5, 50, 1_000, 30_000, 301_000];
const END = ['clean', 'expired', 'broken'] as const;

function watchCommands(): fc.Arbitrary<Command>[] {
  const deliver = fc.tuple(fc.nat(2), fc.integer({ min: 1, max: 3 })).map(([k, count]) =>
    step(
      `open watch ${k} sends ${count} event(s)`,
      (w) => (openWatch(w, k)?.backlog() ?? 0) > 0,
      (w) => {
        for (const e of openWatch(w, k)?.deliver(count) ?? []) w.tell(`  sent ${describeEvent(e)}`);
      },
    ),
  );
  const bookmark = fc.tuple(fc.nat(2), fc.boolean()).map(([k, far]) =>
    step(`open watch ${k} sends a ${far ? 'far' : 'near'} bookmark`, hasOpenWatch, (w) => {
      const at = openWatch(w, k)?.bookmark(far);
      if (at !== undefined) w.tell(`  sent BOOKMARK at rv ${at}`);
    }),
  );
  const end = fc.tuple(fc.nat(2), fc.constantFrom(...END)).map(([k, how]) =>
    step(`the server ends open watch ${k} (${how})`, hasOpenWatch, (w) => {
      const watch = openWatch(w, k);
      if (watch) w.term?.source.end(watch, how);
    }),
  );
  return [deliver, bookmark, end];
}

/** Requests are answered in any order; alt only matters to a watch from too old a resourceVersion. */
function wireCommands(): fc.Arbitrary<Command>[] {
  const serve = fc.tuple(fc.nat(3), fc.boolean()).map(([k, alt]) =>
    step(`answer request ${k}${alt ? ' (alt)' : ''}`, (w) => w.wire.pending.length > 0, (w) => {
      const request = w.wire.pick(k);
      w.tell(`  answering ${request?.what} (term ${request?.term})`);
      request?.serve(alt);
    }),
  );
  const fail = fc.tuple(fc.nat(3), fc.nat(2)).map(([k, how]) =>
    step(`fail request ${k} (${how})`, (w) => w.wire.pending.length > 0, (w) => {
      const request = w.wire.pick(k);
      const failure = request?.fail(how);
      w.tell(`  failing ${request?.what} (term ${request?.term}): ${failure}`);
    }),
  );
  return [serve, fail];
}

function termCommands(): fc.Arbitrary<Command>[] {
  return [
    fc.constantFrom(...TICKS).map((ms) =>
      step(`${ms} ms pass`, () => true, (w) => {
        vi.advanceTimersByTime(ms);
        w.server.expire(performance.now());
      }),
    ),
    fc.integer({ min: 1, max: 4 }).map((quarter) =>
      step(`the server compacts ${quarter}/4 of its history`, () => true, (w) => {
        w.server.compact(Math.floor((w.server.resourceVersion * quarter) / 4));
        w.tell(`  compacted to rv ${w.server.compactedTo}`);
      }),
    ),
    fc.nat(15).map((mask) =>
      step(`the term is SIGKILLed (its patches that land anyway: mask 0b${mask.toString(2)})`, termAlive, (w) =>
        w.killTerm((i) => ((mask >> i) & 1) === 1),
      ),
    ),
    fc.constant(step('the fast start is finished', termAlive, (w) => w.finish())),
  ];
}

/** Weighted: the watch and the wire move most; terms die now and then, and rarely finish early. */
function fastStartCommands(): fc.Arbitrary<Command>[] {
  const [create, remove, touch, write] = kubeletCommands();
  const [deliver, bookmark, end] = watchCommands();
  const [serve, fail] = wireCommands();
  const [tick, compact, die, finish] = termCommands();
  return [
    fc.oneof(
      weighted(create, 6),
      weighted(remove, 3),
      weighted(touch, 2),
      weighted(write, 3),
      weighted(deliver, 20),
      weighted(bookmark, 5),
      weighted(end, 3),
      weighted(serve, 24),
      weighted(fail, 4),
      weighted(tick, 3),
      weighted(compact, 1),
      weighted(die, 3),
      weighted(finish, 1),
    ),
  ];
}

// ---- a run ------------------------------------------------------------------------------------

/** Answers everything, sends every event and a far bookmark, lets timers fire, until nothing moves. */
async function drain(w: World): Promise<void> {
  for (let round = 0; round < 80; round++) {
    for (const request of [...w.wire.pending]) request.serve(false);
    for (const watch of [...w.server.watches]) {
      watch.deliver(Infinity);
      watch.bookmark(true);
    }
    await settle();
    w.assertNoViolation();
    if (w.wire.pending.length > 0 || [...w.server.watches].some((x) => x.backlog() > 0)) continue;
    if (vi.getTimerCount() === 0) return;
    vi.advanceTimersToNextTimer();
    w.server.expire(performance.now());
    await settle();
  }
}

/** Liveness is only asked of a term that is still watching and never heard a failure it could give up on. */
function mayAskLiveness(w: World): boolean {
  const term = w.term;
  if (term === undefined || term.finishing !== undefined || term.source.troubles > 0) return false;
  return term.source.open().length > 0 || w.wire.watching(term.id);
}

async function finishLast(w: World, listAt: number): Promise<void> {
  const term = w.term;
  if (term === undefined) return;
  w.finish();
  await drain(w);
  if (term.carried === undefined) w.violations.push(`finish() of ${term.by} did not return once every request was answered`);
  if (term.writer.lateWrites.length > 0) w.violations.push(`${term.by} patched after finish() returned: ${term.writer.lateWrites.join('; ')}`);
  if (term.carried !== undefined) checkTermAfter(w, term, term.carried, listAt);
}

interface Scenario {
  readonly workers: number;
  readonly beforeHandoff: Iterable<Command>;
  readonly afterHandoff: Iterable<Command>;
  readonly fastStart: Iterable<Command>;
  /** Where between the Lease and the end the term's node list is taken, as a fraction. */
  readonly listAt: number;
}

async function play(s: Scenario): Promise<void> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
  const w = new World(s.workers);
  const setup = (): { model: World; real: World } => ({ model: w, real: w });
  try {
    await fc.asyncModelRun(setup, s.beforeHandoff);
    w.handOff();
    await fc.asyncModelRun(setup, s.afterHandoff);
    w.tell('leader B is SIGKILLed: no handoff');
    w.startTerm();
    await settle();
    await fc.asyncModelRun(setup, s.fastStart);
    w.tell('--- from here on every request is answered, every event sent, every timer run');
    const askLiveness = mayAskLiveness(w);
    await drain(w);
    // A 410 may only come now, to a watch asked for before the history was compacted.
    if (askLiveness && w.term?.source.troubles === 0) w.checkJoined();
    await finishLast(w, s.listAt);
    w.assertNoViolation();
  } finally {
    w.term?.stop.abort();
    vi.useRealTimers();
  }
}

const scenario: fc.Arbitrary<Scenario> = fc.record({
  workers: fc.integer({ min: 1, max: 3 }),
  beforeHandoff: fc.commands(leaderCommands('A'), { maxCommands: 12, size: 'max' }),
  afterHandoff: fc.commands(leaderCommands('B'), { maxCommands: 12, size: 'max' }),
  fastStart: fc.commands(fastStartCommands(), { maxCommands: 60, size: 'max' }),
  listAt: fc.double({ min: 0, max: 1, noNaN: true }),
});

describe('FastStart, modelled', () => {
  it('never lets two nodes hold one subnet, and serves the nodes that join once caught up, whatever the watch, the wire and the terms do', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, (s) => play(s)),
      { numRuns: 15000 },
    );
  });
});

// ---- the simulated server keeps the promises the model relies on ------------------------------

function recorder(): { handlers: NodeWatchHandlers; seen: string[] } {
  const seen: string[] = [];
  const handlers: NodeWatchHandlers = {
    onEvent: (type, node: NodeInfo) => void seen.push(`${type} ${node.name} ${node.resourceVersion}`),
    onBookmark: (rv) => void seen.push(`BOOKMARK ${rv}`),
    onClose: (err) => void seen.push(err === undefined ? 'CLOSED' : `CLOSED ${(err as Error).name}`),
  };
  return { handlers, seen };
}

describe('the simulated API server', () => {
  it('replays a watch in resourceVersion order and bookmarks only what it has sent', () => {
    const server = new SimServer();
    server.create('a', 'test');
    server.bump();
    server.create('b', 'test');
    server.patchPodCIDRs('a', ['10.0.0.0/30'], 'test');
    server.bump();
    const { handlers, seen } = recorder();
    const watch = server.watch('1', handlers, Infinity);
    watch.bookmark(true);
    watch.deliver(1);
    watch.bookmark(true);
    watch.deliver(5);
    watch.bookmark(true);
    expect(seen).toEqual(['BOOKMARK 2', 'ADDED b 3', 'BOOKMARK 3', 'MODIFIED a 4', 'BOOKMARK 5']);
  });

  it('answers a list at the present resourceVersion, page by page from one snapshot', () => {
    const server = new SimServer();
    server.create('a', 'test');
    server.create('b', 'test');
    const first = server.page(1, undefined);
    server.remove('b', 'test');
    const second = server.page(1, first.continueToken);
    expect([first.resourceVersion, first.nodes.map((n) => n.name)]).toEqual(['2', ['a']]);
    expect([second.resourceVersion, second.nodes.map((n) => n.name), second.continueToken]).toEqual(['2', ['b'], undefined]);
    expect(server.page(1, undefined).resourceVersion).toBe('3');
  });

  it('refuses with 410 Gone a watch from before its compaction', () => {
    const server = new SimServer();
    server.create('a', 'test');
    server.create('b', 'test');
    server.compact(2);
    expect(() => server.watch('1', recorder().handlers, Infinity)).toThrow(ResourceExpiredError);
    expect(server.watch('2', recorder().handlers, Infinity).backlog()).toBe(0);
  });

  it('refuses a podCIDRs patch that would change them, and takes the same ones again', () => {
    const server = new SimServer();
    server.create('a', 'test');
    expect(server.patchPodCIDRs('a', ['10.0.0.0/30'], 'test')).toBe('written');
    expect(server.patchPodCIDRs('a', ['10.0.0.0/30'], 'test')).toBe('same');
    expect(server.patchPodCIDRs('a', ['10.0.0.4/30'], 'test')).toBe('conflict');
    expect(server.patchPodCIDRs('gone', ['10.0.0.4/30'], 'test')).toBe('not-found');
  });
});
