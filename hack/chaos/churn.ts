// Node create/delete churn against the API server, paced evenly over a duration with bounded concurrency.
// Keeps its own view of which nodes exist; a request that failed (API server down) leaves that view unchanged.
import * as k8s from '@kubernetes/client-node';

export const CHAOS_LABEL = 'chaos.podcidr-allocator.io/run';
const PADDING = 'chaos.podcidr-allocator.io/padding';

export interface ChurnOptions {
  readonly core: k8s.CoreV1Api;
  readonly runId: string;
  readonly random: () => number;
  readonly ops: number;
  readonly durationMs: number;
  /** Live nodes are kept between these bounds. */
  readonly minNodes: number;
  readonly maxNodes: number;
  readonly concurrency: number;
  /** Bytes of padding annotation per node; 0 for none. */
  readonly nodeBytes?: number;
  /** Labels of each new node besides the run's, e.g. which pool serves it; asked once per body. */
  readonly labels?: () => Readonly<Record<string, string>>;
}

export interface ChurnCounts {
  creates: number;
  deletes: number;
  /** Creates that reused the name of a node deleted earlier (a re-created node, new UID). */
  recreates: number;
  failed: number;
  /** Creates made by bursts, on top of the paced operations. */
  burstCreates: number;
}

export class Churn {
  readonly counts: ChurnCounts = { creates: 0, deletes: 0, recreates: 0, failed: 0, burstCreates: 0 };
  readonly #o: ChurnOptions;
  readonly #live = new Set<string>();
  /** Names with a request in flight; resync leaves them alone. */
  readonly #busy = new Set<string>();
  /** When each name's last request ended: a list read before that is stale for it. */
  readonly #settled = new Map<string, number>();
  readonly #deleted: string[] = [];
  #seq = 0;

  constructor(options: ChurnOptions) {
    this.#o = options;
  }

  get live(): number {
    return this.#live.size;
  }

  /**
   * Adopts the API server's list: a create or delete whose answer was lost (the API server going away
   * mid-request) may have happened anyway, and the live bounds must hold for nodes that really exist.
   */
  resync(listed: readonly string[], listedAt: number): void {
    const present = new Set(listed);
    const stale = (name: string): boolean => this.#busy.has(name) || (this.#settled.get(name) ?? 0) >= listedAt;
    for (const name of present) if (!stale(name)) this.#live.add(name);
    for (const name of [...this.#live]) if (!present.has(name) && !stale(name)) this.#live.delete(name);
  }

  body(name: string): k8s.V1Node {
    const bytes = this.#o.nodeBytes ?? 0;
    const annotations = bytes > 0 ? { [PADDING]: 'x'.repeat(bytes) } : undefined;
    const labels = { ...this.#o.labels?.(), [CHAOS_LABEL]: this.#o.runId };
    return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels, annotations } };
  }

  /**
   * Paces one attempt every duration / ops until `ops` operations succeeded: requests refused while
   * the API server is down are counted as failed and do not count towards the total.
   */
  async run(): Promise<void> {
    const start = Date.now();
    const step = this.#o.durationMs / Math.max(1, this.#o.ops);
    const inFlight = new Set<Promise<void>>();
    for (let attempt = 0; this.#succeeded() + inFlight.size < this.#o.ops; attempt++) {
      const wait = start + attempt * step - Date.now();
      if (wait > 0) await sleep(wait);
      while (inFlight.size >= this.#o.concurrency) await Promise.race(inFlight);
      if (this.#succeeded() + inFlight.size >= this.#o.ops) break;
      const op = this.#one().finally(() => inFlight.delete(op));
      inFlight.add(op);
      // Ops that failed leave a gap: wait for the in-flight ones before deciding whether more are needed.
      if (this.#succeeded() + inFlight.size >= this.#o.ops) await Promise.all(inFlight);
    }
    await Promise.all(inFlight);
  }

  /**
   * Creates up to count new nodes spread over ms, besides the paced operations, while fewer than
   * ceiling nodes live: a leader change in the middle of it leaves nodes without podCIDRs behind.
   */
  async burst(count: number, ms: number, ceiling: number): Promise<void> {
    const step = ms / Math.max(1, count);
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; i < count && this.#live.size < ceiling; i++) {
      const op = this.#create(true).finally(() => inFlight.delete(op));
      inFlight.add(op);
      await sleep(step);
    }
    await Promise.all(inFlight);
  }

  #succeeded(): number {
    return this.counts.creates + this.counts.deletes;
  }

  #one(): Promise<void> {
    const size = this.#live.size;
    const create = size < this.#o.minNodes || (size < this.#o.maxNodes && this.#o.random() < 0.5);
    return create ? this.#create() : this.#delete();
  }

  async #create(burst = false): Promise<void> {
    const reuse = !burst && this.#deleted.length > 0 && this.#o.random() < 0.15;
    const name = reuse ? this.#takeDeleted() : `chaos-${this.#o.runId}-${++this.#seq}`;
    this.#live.add(name);
    this.#busy.add(name);
    try {
      await this.#o.core.createNode({ body: this.body(name) });
      if (burst) this.counts.burstCreates++;
      else this.counts.creates++;
      if (reuse) this.counts.recreates++;
    } catch (err) {
      // A create whose answer was lost may still have happened; 409 says it did.
      if (!(err instanceof k8s.ApiException && err.code === 409)) this.#live.delete(name);
      this.counts.failed++;
    } finally {
      this.#busy.delete(name);
      this.#settled.set(name, Date.now());
    }
  }

  async #delete(): Promise<void> {
    const names = [...this.#live];
    const name = names[Math.floor(this.#o.random() * names.length)];
    if (name === undefined) return;
    this.#live.delete(name);
    this.#busy.add(name);
    try {
      await this.#o.core.deleteNode({ name });
      this.counts.deletes++;
      this.#deleted.push(name);
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 404) this.#deleted.push(name);
      else this.#live.add(name);
      this.counts.failed++;
    } finally {
      this.#busy.delete(name);
      this.#settled.set(name, Date.now());
    }
  }

  #takeDeleted(): string {
    const i = Math.floor(this.#o.random() * this.#deleted.length);
    const [name] = this.#deleted.splice(i, 1);
    return name ?? `chaos-${this.#o.runId}-${++this.#seq}`;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
