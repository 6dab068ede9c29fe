// A small simulated API server for Nodes, for model tests: one resourceVersion counter, an event log,
// consistent paginated lists, watches from any resourceVersion that the test moves along at its own
// pace, and a wire of requests that the test answers one at a time, in any order, or abandons when
// the process that sent them dies. It answers as kube-apiserver would, so whatever a caller relies
// on here, it may rely on against a real cluster.

import { overlaps, parseCidr } from '../../../src/cidr/index.js';
import {
  type NodeInfo,
  type NodeListOptions,
  type NodePage,
  type NodeSource,
  type NodeWatchEventType,
  type NodeWatchHandlers,
  type NodeWatchOptions,
  type NodeWriter,
  PatchError,
  ResourceExpiredError,
} from '../../../src/controller/ports.js';

export interface LoggedEvent {
  readonly type: NodeWatchEventType;
  /** The object as the event carries it; its resourceVersion is the event's. */
  readonly node: NodeInfo;
  /** Who made the change, for the story a failing test tells. */
  readonly by: string;
}

export type PatchOutcome = 'written' | 'same' | 'conflict' | 'not-found';

interface Snapshot {
  readonly resourceVersion: number;
  readonly nodes: readonly NodeInfo[];
}

export function sharesAddress(a: readonly string[], b: readonly string[]): boolean {
  return a.some((x) => b.some((y) => overlaps(parseCidr(x), parseCidr(y))));
}

export class SimServer {
  readonly nodes = new Map<string, NodeInfo>();
  /** Every Node change, in resourceVersion order. */
  readonly log: LoggedEvent[] = [];
  /** Watches from an older resourceVersion, and continue tokens of older lists, get 410 Gone. */
  compactedTo = 0;
  /** Hears every change once it is stored. */
  onChange?: (event: LoggedEvent) => void;
  readonly watches = new Set<SimWatch>();
  #rv = 0;
  #uids = 0;
  readonly #snapshots: Snapshot[] = [];

  get resourceVersion(): number {
    return this.#rv;
  }

  /** A write to some other kind of object: the resourceVersion moves on without a Node event. */
  bump(): void {
    this.#rv++;
  }

  create(name: string, by: string): boolean {
    if (this.nodes.has(name)) return false;
    this.#store('ADDED', { name, uid: `${name}-uid${++this.#uids}`, resourceVersion: '', podCIDRs: [] }, by);
    return true;
  }

  remove(name: string, by: string): boolean {
    const node = this.nodes.get(name);
    if (node === undefined) return false;
    this.#store('DELETED', node, by);
    return true;
  }

  /** An update that leaves podCIDRs alone (labels, conditions). */
  touch(name: string, by: string): boolean {
    const node = this.nodes.get(name);
    if (node === undefined) return false;
    this.#store('MODIFIED', node, by);
    return true;
  }

  /** As validation has it: podCIDRs only go from none to some; sending the same ones again changes nothing. */
  patchPodCIDRs(name: string, podCIDRs: readonly string[], by: string): PatchOutcome {
    const node = this.nodes.get(name);
    if (node === undefined) return 'not-found';
    if (node.podCIDRs.length > 0) return node.podCIDRs.join() === podCIDRs.join() ? 'same' : 'conflict';
    this.#store('MODIFIED', { ...node, podCIDRs: [...podCIDRs] }, by);
    return 'written';
  }

  /** Forgets history: nothing older than resourceVersion can be watched from or listed on. */
  compact(resourceVersion: number): void {
    this.compactedTo = Math.max(this.compactedTo, Math.min(resourceVersion, this.#rv));
  }

  /** One page of a consistent list: the first page is a snapshot at the current resourceVersion. */
  page(limit: number, continueToken: string | undefined): NodePage {
    const [at, start] = continueToken === undefined ? [this.#snapshot(), 0] : continueToken.split(':').map(Number);
    const snapshot = this.#snapshots[at ?? -1];
    if (snapshot === undefined || start === undefined) throw new Error(`invalid continue token ${continueToken}`);
    if (snapshot.resourceVersion < this.compactedTo) throw new ResourceExpiredError('the continue token is too old');
    const end = limit > 0 ? start + limit : snapshot.nodes.length;
    return {
      nodes: snapshot.nodes.slice(start, end),
      resourceVersion: String(snapshot.resourceVersion),
      continueToken: end < snapshot.nodes.length ? `${at}:${end}` : undefined,
    };
  }

  /** Opens a watch as the API server would, or throws the error it would answer with. */
  watch(resourceVersion: string, handlers: NodeWatchHandlers, deadline: number): SimWatch {
    if (resourceVersion === '' || resourceVersion === '0') {
      // "Any": the current state as ADDED events, then what follows.
      const current = [...this.nodes.values()].sort((a, b) => a.name.localeCompare(b.name));
      return this.#open(this.#rv, handlers, deadline, current);
    }
    if (!/^\d+$/.test(resourceVersion)) throw new Error(`invalid resourceVersion ${JSON.stringify(resourceVersion)}`);
    const from = Number(resourceVersion);
    if (from > this.#rv) throw new Error(`too large resource version: ${from}, current: ${this.#rv}`);
    if (from < this.compactedTo) throw new ResourceExpiredError(`too old resource version: ${from} (${this.compactedTo})`);
    return this.#open(from, handlers, deadline, []);
  }

  /** Closes cleanly the watches whose timeoutSeconds have run out. */
  expire(now: number): void {
    for (const watch of [...this.watches]) if (watch.deadline <= now) watch.close();
  }

  #open(from: number, handlers: NodeWatchHandlers, deadline: number, prelude: NodeInfo[]): SimWatch {
    const watch = new SimWatch(this, from, handlers, deadline, prelude);
    this.watches.add(watch);
    return watch;
  }

  #snapshot(): number {
    const nodes = [...this.nodes.values()].sort((a, b) => a.name.localeCompare(b.name));
    return this.#snapshots.push({ resourceVersion: this.#rv, nodes }) - 1;
  }

  #store(type: NodeWatchEventType, node: NodeInfo, by: string): void {
    const stored: NodeInfo = { ...node, resourceVersion: String(++this.#rv) };
    if (type === 'DELETED') this.nodes.delete(node.name);
    else this.nodes.set(node.name, stored);
    const event: LoggedEvent = { type, node: stored, by };
    this.log.push(event);
    this.onChange?.(event);
  }
}

/**
 * One watch: every event after its resourceVersion, in order, as fast as the test delivers them.
 * A bookmark never names a resourceVersion whose events it has not all sent.
 */
export class SimWatch {
  readonly #server: SimServer;
  readonly #handlers: NodeWatchHandlers;
  readonly deadline: number;
  readonly #prelude: NodeInfo[];
  /** Everything up to here has been sent. */
  #sent: number;
  /** Index in the server's log of the next event to send. */
  #next: number;
  #open = true;

  constructor(server: SimServer, from: number, handlers: NodeWatchHandlers, deadline: number, prelude: NodeInfo[]) {
    this.#server = server;
    this.#handlers = handlers;
    this.deadline = deadline;
    this.#prelude = prelude;
    this.#sent = from;
    const next = server.log.findIndex((e) => Number(e.node.resourceVersion) > from);
    this.#next = next === -1 ? server.log.length : next;
  }

  get open(): boolean {
    return this.#open;
  }

  /** Events this watch still has to send. */
  backlog(): number {
    return this.#open ? this.#prelude.length + this.#server.log.length - this.#next : 0;
  }

  /** Sends up to count events at once, as one chunk of the stream would; returns what it sent. */
  deliver(count: number): LoggedEvent[] {
    const sent: LoggedEvent[] = [];
    while (sent.length < count && this.backlog() > 0) {
      const event = this.#nextEvent();
      if (event === undefined) break;
      sent.push(event);
      this.#call(() => this.#handlers.onEvent(event.type, event.node));
    }
    return sent;
  }

  #nextEvent(): LoggedEvent | undefined {
    const synthetic = this.#prelude.shift();
    if (synthetic !== undefined) return { type: 'ADDED', node: synthetic, by: 'the watch, for resourceVersion 0' };
    const event = this.#server.log[this.#next++];
    if (event !== undefined) this.#sent = Number(event.node.resourceVersion);
    return event;
  }

  /** A bookmark at what was last sent, or (far) as far as the log allows: just before the next unsent event. */
  bookmark(far: boolean): string | undefined {
    if (!this.#open || this.#prelude.length > 0) return undefined;
    const next = this.#server.log[this.#next];
    const ceiling = next === undefined ? this.#server.resourceVersion : Number(next.node.resourceVersion) - 1;
    if (far) this.#sent = Math.max(this.#sent, ceiling);
    const at = String(this.#sent);
    this.#call(() => this.#handlers.onBookmark(at));
    return at;
  }

  /** The server ends the stream: cleanly without err, else with an ERROR event or a broken connection. */
  close(err?: unknown): void {
    if (!this.#end()) return;
    this.#handlers.onClose(err);
  }

  /** The client aborted the request: nothing more is sent, and the stream ends with an AbortError. */
  cut(): void {
    if (!this.#end()) return;
    queueMicrotask(() => this.#handlers.onClose(abortError()));
  }

  #end(): boolean {
    if (!this.#open) return false;
    this.#open = false;
    this.#server.watches.delete(this);
    return true;
  }

  /** Like the real stream reader: a handler that throws ends the watch with its error. */
  #call(handler: () => void): void {
    try {
      handler();
    } catch (err) {
      this.close(err);
    }
  }
}

export type RequestKind = 'list' | 'watch' | 'patch' | 'get';

/** A request on the wire, waiting for the test to answer it. */
export interface Request {
  readonly term: number;
  readonly kind: RequestKind;
  readonly what: string;
  /** Answers as the server would now; alt picks the other of two ways the server may tell the same thing. */
  serve(alt: boolean): void;
  /** Answers with one of this kind's failures, picked by how; returns which. */
  fail(how: number): string;
  /** The sender's process died with this on the wire: no answer comes; a patch may still be written. */
  abandon(written: boolean): void;
}

interface Handling<T> {
  serve(alt: boolean): T;
  /** Each failure does what it does to the server, then gives the error the caller sees. */
  readonly failures: readonly (readonly [string, () => unknown])[];
  abandon?(written: boolean): void;
}

function abortError(): DOMException {
  return new DOMException('This operation was aborted', 'AbortError');
}

/** Requests of every process, in the order sent; the test answers them in any order. */
export class Wire {
  readonly pending: Request[] = [];
  /** Hears every request as it is sent. */
  onSend?: (request: Request) => void;
  readonly #dead = new Set<number>();

  send<T>(term: number, kind: RequestKind, what: string, signal: AbortSignal | undefined, handling: Handling<T>): Promise<T> {
    // A dead process sends nothing, and hears nothing back.
    if (this.#dead.has(term)) return new Promise<T>(() => undefined);
    return new Promise<T>((resolve, reject) => {
      if (signal?.aborted) return reject(abortError());
      const done = (): void => {
        const at = this.pending.indexOf(request);
        if (at !== -1) this.pending.splice(at, 1);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        done();
        reject(abortError());
      };
      const request: Request = {
        term,
        kind,
        what,
        serve: (alt) => {
          done();
          try {
            resolve(handling.serve(alt));
          } catch (err) {
            reject(err);
          }
        },
        fail: (how) => {
          done();
          const failure = handling.failures[how % handling.failures.length];
          if (failure === undefined) throw new Error(`no failures for ${kind}`);
          reject(failure[1]());
          return failure[0];
        },
        abandon: (written) => {
          done();
          handling.abandon?.(written);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.push(request);
      this.onSend?.(request);
    });
  }

  /** The k-th request on the wire, counting round. */
  pick(k: number): Request | undefined {
    return this.pending[k % Math.max(1, this.pending.length)];
  }

  /** A process dies: it sends no more, its requests get no answer, and written(i) says which patches land. */
  kill(term: number, written: (i: number) => boolean): void {
    this.#dead.add(term);
    let patches = 0;
    for (const request of this.pending.filter((r) => r.term === term)) {
      request.abandon(request.kind === 'patch' && written(patches++));
    }
  }

  watching(term: number): boolean {
    return this.pending.some((r) => r.term === term && r.kind === 'watch');
  }
}

/** One process's NodeSource over the simulated server. */
export class SimSource implements NodeSource {
  readonly watches: SimWatch[] = [];
  /** Answers that could make a careful caller give up: failed lists and watches, 410s. */
  troubles = 0;
  readonly #server: SimServer;
  readonly #wire: Wire;
  readonly #term: number;
  readonly #now: () => number;

  constructor(server: SimServer, wire: Wire, term: number, now: () => number) {
    this.#server = server;
    this.#wire = wire;
    this.#term = term;
    this.#now = now;
  }

  list(options: NodeListOptions): Promise<NodePage> {
    const what = `list limit ${options.limit}${options.continueToken === undefined ? '' : ` from ${options.continueToken}`}`;
    return this.#wire.send(this.#term, 'list', what, options.signal, {
      serve: () => this.#page(options),
      failures: [['500', () => this.#trouble(new Error('list nodes: 500 Internal Server Error'))]],
    });
  }

  watch(options: NodeWatchOptions, handlers: NodeWatchHandlers): Promise<void> {
    const what = `watch from rv ${options.resourceVersion} for ${options.timeoutSeconds}s`;
    return this.#wire.send(this.#term, 'watch', what, options.signal, {
      serve: (alt) => this.#open(options, handlers, alt),
      failures: [['connection refused', () => this.#trouble(new Error('watch nodes: connection refused'))]],
    });
  }

  /** Open watches of this process. */
  open(): SimWatch[] {
    return this.watches.filter((w) => w.open);
  }

  /** The server ends an open watch: cleanly, with a 410 ERROR event, or with a broken connection. */
  end(watch: SimWatch, how: 'clean' | 'expired' | 'broken'): void {
    if (how === 'clean') return watch.close();
    this.troubles++;
    watch.close(how === 'expired' ? new ResourceExpiredError('too old resource version') : new Error('connection reset'));
  }

  #page(options: NodeListOptions): NodePage {
    try {
      return this.#server.page(options.limit, options.continueToken);
    } catch (err) {
      throw this.#trouble(err);
    }
  }

  /** alt: a 410 comes as the HTTP answer; otherwise the watch opens and its first event is the 410. */
  #open(options: NodeWatchOptions, handlers: NodeWatchHandlers, alt: boolean): void {
    let watch: SimWatch;
    try {
      watch = this.#server.watch(options.resourceVersion, handlers, this.#now() + options.timeoutSeconds * 1000);
    } catch (err) {
      this.#trouble(err);
      if (alt || !(err instanceof ResourceExpiredError)) throw err;
      queueMicrotask(() => handlers.onClose(err));
      return;
    }
    this.watches.push(watch);
    options.signal.addEventListener('abort', () => watch.cut(), { once: true });
  }

  #trouble(err: unknown): unknown {
    this.troubles++;
    return err;
  }
}

/** One process's NodeWriter over the simulated server. */
export class SimWriter implements NodeWriter {
  /** Every patch this process sent, answered or not. */
  readonly sent: { readonly name: string; readonly podCIDRs: readonly string[] }[] = [];
  /** Set once the process must write no more; a patch after it is recorded here. */
  closed = false;
  readonly lateWrites: string[] = [];
  readonly #server: SimServer;
  readonly #wire: Wire;
  readonly #term: number;
  readonly #by: string;

  constructor(server: SimServer, wire: Wire, term: number, by: string) {
    this.#server = server;
    this.#wire = wire;
    this.#term = term;
    this.#by = by;
  }

  patchPodCIDRs(name: string, podCIDRs: readonly string[]): Promise<void> {
    this.sent.push({ name, podCIDRs });
    if (this.closed) this.lateWrites.push(`${name} ${podCIDRs.join(',')}`);
    const write = (): PatchOutcome => this.#server.patchPodCIDRs(name, podCIDRs, this.#by);
    const timeout = (): PatchError => new PatchError('timeout', `patch node ${name}: 504 Gateway Timeout`);
    return this.#wire.send(this.#term, 'patch', `patch ${name} ${podCIDRs.join(',')}`, undefined, {
      serve: () => answer(name, write()),
      failures: [
        ['timeout, written', () => (write(), timeout())],
        ['timeout, not written', timeout],
        ['500, not written', () => new PatchError('failed', `patch node ${name}: 500 Internal Server Error`)],
      ],
      abandon: (written) => void (written && write()),
    });
  }

  getNode(name: string): Promise<NodeInfo | undefined> {
    return this.#wire.send(this.#term, 'get', `get ${name}`, undefined, {
      serve: () => this.#server.nodes.get(name),
      failures: [['connection refused', () => new Error(`read node ${name}: connection refused`)]],
    });
  }
}

/** As the real writer reports what the API server answered. */
function answer(name: string, outcome: PatchOutcome): void {
  if (outcome === 'not-found') throw new PatchError('not-found', `nodes "${name}" not found`);
  if (outcome === 'conflict') throw new PatchError('conflict', 'node updates may not change podCIDR except from "" to valid');
}
