// Nodes that join while the controller is disrupted (a rollout, a deleted leader, a drain), and how long
// each waits for its podCIDR. They are Node objects without a kubelet: tainted and unschedulable, so no pod
// (not even ours, which tolerates unready nodes) is ever placed on them. A watch times each wait in ms.
import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';

const TAINT = 'e2e.podcidr-allocator.io/no-kubelet';

export interface Wait {
  readonly name: string;
  readonly ms: number;
}

/** Every Node's podCIDR as the watch last saw it, and when each node was first seen holding one. */
export class NodeWatch {
  readonly podCIDRs = new Map<string, string>();
  readonly firstSeen = new Map<string, number>();
  private abort: AbortController | undefined;

  readonly core: k8s.CoreV1Api;

  private constructor(private readonly kc: k8s.KubeConfig) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  static async start(kubeconfigPath: string): Promise<NodeWatch> {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const watch = new NodeWatch(kc);
    await watch.connect();
    return watch;
  }

  /** Every podCIDR held by more than one Node, with the holders. */
  duplicates(): string[] {
    const holders = new Map<string, string[]>();
    for (const [node, cidr] of this.podCIDRs) holders.set(cidr, [...(holders.get(cidr) ?? []), node]);
    return [...holders].filter(([, nodes]) => nodes.length > 1).map(([cidr, nodes]) => `${cidr} held by ${nodes.join(' and ')}`);
  }

  stop(): void {
    this.abort?.abort();
  }

  private async connect(): Promise<void> {
    const list = await this.core.listNode();
    // A relist is the whole present: Nodes deleted while the watch was down must not look like holders.
    this.podCIDRs.clear();
    for (const node of list.items) this.record('ADDED', node);
    this.abort = await new k8s.Watch(this.kc).watch(
      '/api/v1/nodes',
      { resourceVersion: list.metadata?.resourceVersion ?? '0', allowWatchBookmarks: true },
      (type: string, node: k8s.V1Node) => this.record(type, node),
      (err: unknown) => {
        // A watch the server closes is reopened; one we aborted stays closed.
        if (this.abort?.signal.aborted === true) return;
        if (err !== null && err !== undefined) console.error(`node watch: ${String(err)}`);
        void sleep(500).then(() => this.connect()).catch(() => undefined);
      },
    );
  }

  private record(type: string, node: k8s.V1Node): void {
    const name = node.metadata?.name;
    if (name === undefined || type === 'BOOKMARK') return;
    if (type === 'DELETED') {
      this.podCIDRs.delete(name);
      return;
    }
    const cidr = node.spec?.podCIDR;
    if (cidr === undefined || cidr === '') return;
    this.podCIDRs.set(name, cidr);
    if (!this.firstSeen.has(name)) this.firstSeen.set(name, Date.now());
  }
}

/** Creates kubelet-less Nodes and reads how long each waited for its podCIDR. */
export class Joiners {
  private readonly created = new Map<string, number>();
  private next = 1;

  constructor(private readonly watch: NodeWatch, private readonly prefix: string) {}

  async add(): Promise<void> {
    const name = `${this.prefix}-${this.next++}`;
    const at = Date.now();
    await this.watch.core.createNode({
      body: {
        metadata: { name, labels: { 'e2e.podcidr-allocator.io/joiner': 'true' } },
        spec: { unschedulable: true, taints: [{ key: TAINT, value: 'true', effect: 'NoSchedule' }] },
      },
    });
    this.created.set(name, at);
  }

  /** Adds a Node every intervalMs until done settles, and at least min of them. */
  async addWhile(done: Promise<unknown>, intervalMs: number, min: number): Promise<void> {
    let settled = false;
    void done.finally(() => (settled = true)).catch(() => undefined);
    for (let i = 0; !settled || i < min; i++) {
      await this.add();
      await sleep(intervalMs);
    }
  }

  /** Waits until every joiner holds a podCIDR; the waits, longest first. */
  async waits(timeoutMs: number): Promise<Wait[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const missing = [...this.created.keys()].filter((n) => !this.watch.firstSeen.has(n));
      if (missing.length === 0) break;
      if (Date.now() > deadline) throw new Error(`no podCIDR within ${timeoutMs / 1000} s for ${missing.join(', ')}`);
      await sleep(100);
    }
    return [...this.created]
      .map(([name, at]) => ({ name, ms: (this.watch.firstSeen.get(name) ?? at) - at }))
      .sort((a, b) => b.ms - a.ms);
  }

  get count(): number {
    return this.created.size;
  }

  async removeAll(): Promise<void> {
    for (const name of this.created.keys()) await this.watch.core.deleteNode({ name }).catch(() => undefined);
    this.created.clear();
  }
}

/** "12 Nodes, longest wait 3.2 s (x-3), median 0.4 s" */
export function describeWaits(waits: readonly Wait[]): string {
  const sorted = [...waits].sort((a, b) => a.ms - b.ms);
  const median = sorted[Math.floor(sorted.length / 2)]?.ms ?? 0;
  const longest = waits[0];
  return `${waits.length} Nodes joined, longest wait ${((longest?.ms ?? 0) / 1000).toFixed(1)} s (${longest?.name ?? '-'}), median ${(median / 1000).toFixed(1)} s`;
}
