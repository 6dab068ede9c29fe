import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatCidr, overlaps, tryParseCidr, type Cidr } from '../../../src/cidr/index.js';
import { readLeniently } from '../../../src/controller/claim.js';
import type { NodeInfo } from '../../../src/controller/ports.js';
import { harness, type Harness, type PatchScript } from './reconciler-fakes.js';
import { parseRange } from '../../../src/allocator/range-spec.js';

// Random add / delete / patch-outcome sequences over tiny ranges (two or four subnets per family), with
// someone else writing podCIDRs now and then. Two properties:
// - every podCIDRs patch of ours that lands shares no address with another live node's podCIDRs
//   that existed before we reserved the range (someone writing over our reservation is not us);
// - once settled, the allocator marks exactly the subnets live nodes and pending patches hold,
//   and after every node is deleted it marks none: nothing leaks, nothing is double-freed.

const NAMES = ['n0', 'n1', 'n2', 'n3', 'n4'] as const;
const V4 = [parseRange('10.0.0.0/28', 30)];
/** Two subnets: the allocator's cursor wraps at once, so a wrongly freed range is soon reissued. */
const TINY = [parseRange('10.0.0.0/29', 30)];
const DUAL = [...V4, parseRange('fd00::/125', 127)];
/** What someone else may write: node subnets, a /29 over two of them, a /31 inside one, and junk. */
const FOREIGN = [
  '10.0.0.0/30',
  '10.0.0.4/30',
  '10.0.0.8/30',
  '10.0.0.0/29',
  '10.0.0.12/31',
  '192.168.0.0/30',
  '10.0.0.1/30',
  'not-a-cidr',
  'fd00::/127',
  'fd00::4/126',
];

type Outcome =
  | 'ok'
  | 'failed'
  | 'not-found'
  | 'timeout-landed'
  | 'timeout-lost'
  | 'timeout-late'
  | 'concurrent'
  | 'reread-fails'
  | 'foreign-write'
  | 'deleted-meanwhile';

type Command =
  | { op: 'add'; name: string; preset: string | undefined }
  | { op: 'recreate'; name: string }
  | { op: 'delete'; name: string; tombstone: boolean }
  | { op: 'mark-deleting'; name: string }
  | { op: 'sync'; name: string; outcome: Outcome; foreign: string; other: string }
  | { op: 'rebuild' };

const name = fc.constantFrom(...NAMES);
const command: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('add' as const), name, preset: fc.option(fc.constantFrom(...FOREIGN), { nil: undefined, freq: 3 }) }), weight: 4 },
  { arbitrary: fc.record({ op: fc.constant('recreate' as const), name }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('delete' as const), name, tombstone: fc.boolean() }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('mark-deleting' as const), name }), weight: 1 },
  {
    arbitrary: fc.record({
      op: fc.constant('sync' as const),
      name,
      outcome: fc.constantFrom<Outcome>(
        'ok',
        'ok',
        'ok',
        'failed',
        'not-found',
        'timeout-landed',
        'timeout-lost',
        'timeout-late',
        'reread-fails',
        'foreign-write',
        'deleted-meanwhile',
        'concurrent',
      ),
      foreign: fc.constantFrom(...FOREIGN),
      other: name,
    }),
    weight: 8,
  },
  { arbitrary: fc.constant({ op: 'rebuild' as const }), weight: 1 },
);

/** As kubelet reads a podCIDR: '10.0.0.1/30' puts the node's pods in 10.0.0.0/30. */
function parsed(texts: readonly string[]): Cidr[] {
  return texts.flatMap((t) => readLeniently(t) ?? []);
}

function sharesAddress(a: readonly string[], b: readonly string[]): boolean {
  return parsed(a).some((x) => parsed(b).some((y) => overlaps(x, y)));
}

/** Tracks who wrote each node's podCIDRs and when, and flags patches of ours that land on others. */
class Referee {
  step = 0;
  readonly violations: string[] = [];
  readonly #writtenAt = new Map<string, { by: 'patch' | 'other'; step: number }>();
  readonly #firstPatchAt = new Map<string, number>();

  constructor(readonly h: Harness) {
    const patch = h.cluster.patchPodCIDRs.bind(h.cluster);
    h.cluster.patchPodCIDRs = (node, podCIDRs) => {
      const node0 = h.cluster.get(node);
      const key = `${node0?.uid ?? node}|${podCIDRs.join()}`;
      if (!this.#firstPatchAt.has(key)) this.#firstPatchAt.set(key, this.step);
      return patch(node, podCIDRs);
    };
    h.cluster.onWrite = (node, podCIDRs, by) => this.#written(node, podCIDRs, by);
  }

  #written(node: NodeInfo, podCIDRs: readonly string[], by: 'patch' | 'other'): void {
    if (by === 'patch') {
      const reservedAt = this.#firstPatchAt.get(`${node.uid}|${podCIDRs.join()}`) ?? this.step;
      for (const other of this.h.cluster.list()) {
        if (other.name === node.name || !sharesAddress(other.podCIDRs, podCIDRs)) continue;
        const written = this.#writtenAt.get(other.uid);
        if (written === undefined || written.by === 'patch' || written.step < reservedAt) {
          this.violations.push(`step ${this.step}: ${podCIDRs.join()} patched onto ${node.name} overlaps ${other.name} ${other.podCIDRs.join()}`);
        }
      }
    }
    this.#writtenAt.set(node.uid, { by, step: this.step });
  }
}

function scriptFor(h: Harness, cmd: Extract<Command, { op: 'sync' }>): PatchScript | undefined {
  switch (cmd.outcome) {
    case 'ok':
      return undefined;
    case 'failed':
    case 'not-found':
      return { fail: cmd.outcome };
    case 'timeout-landed':
      return { fail: 'timeout', landed: true };
    case 'timeout-lost':
    case 'reread-fails':
      return { fail: 'timeout', landed: false };
    case 'timeout-late':
      return { fail: 'timeout', late: true };
    case 'concurrent':
      // A second worker syncs another node while this patch is out.
      if (cmd.other === cmd.name) return undefined; // the work queue never runs one key twice at once
      return { during: () => h.reconciler.sync(cmd.other).catch(() => {}) };
    case 'foreign-write':
      return { during: () => h.cluster.setPodCIDRs(cmd.name, [cmd.foreign]) };
    case 'deleted-meanwhile':
      return {
        during: async () => {
          const gone = h.cluster.remove(cmd.name);
          if (gone) h.reconciler.nodeDeleted(gone);
          if (cmd.other !== cmd.name) await h.reconciler.sync(cmd.other).catch(() => {});
        },
      };
  }
}

async function run(h: Harness, cmd: Command): Promise<void> {
  const { cluster, reconciler } = h;
  switch (cmd.op) {
    case 'add':
      if (cluster.get(cmd.name)) return;
      cluster.add(cmd.name, cmd.preset === undefined ? {} : { podCIDRs: [cmd.preset] });
      // The informer's add event: a node someone else gave podCIDRs is seen at once.
      if (cmd.preset !== undefined) await reconciler.sync(cmd.name).catch(() => {});
      return;
    case 'recreate':
      // The delete is missed (watch gap); the name comes back with a new uid.
      cluster.remove(cmd.name);
      cluster.add(cmd.name);
      return;
    case 'delete': {
      const gone = cluster.remove(cmd.name);
      if (gone) reconciler.nodeDeleted(cmd.tombstone ? { ...gone, uid: '' } : gone);
      return;
    }
    case 'mark-deleting':
      cluster.markDeleting(cmd.name);
      return;
    case 'sync': {
      const script = scriptFor(h, cmd);
      if (script) cluster.scripts.push(script);
      cluster.getNodeFails = cmd.outcome === 'reread-fails';
      await reconciler.sync(cmd.name).catch(() => {});
      cluster.scripts.length = 0;
      cluster.getNodeFails = false;
      return;
    }
    case 'rebuild':
      reconciler.rebuild(cluster.list());
      return;
  }
}

async function settle(h: Harness): Promise<void> {
  for (let pass = 0; pass < 3; pass++) {
    for (const node of h.cluster.list()) await h.reconciler.sync(node.name).catch(() => {});
  }
}

/** Every node subnet of the configured ranges. */
function subnets(h: Harness): string[] {
  return h.allocator.usage().flatMap((u) => {
    const cluster = tryParseCidr(u.clusterCIDR);
    if (!cluster) return [];
    const step = 1n << BigInt(cluster.bits - u.nodeMask);
    return Array.from({ length: u.capacity }, (_, i) =>
      formatCidr({ ...cluster, base: cluster.base + BigInt(i) * step, prefix: u.nodeMask }),
    );
  });
}

function expectAccountingMatches(h: Harness): void {
  const held = [...h.cluster.list().map((n) => n.podCIDRs), ...h.reconciler.pendingReservations().values()];
  for (const subnet of subnets(h)) {
    const expected = held.some((cidrs) => sharesAddress(cidrs, [subnet]));
    expect({ subnet, used: h.allocator.isAllocated(subnet) }).toEqual({ subnet, used: expected });
  }
}

function expectEveryNodeServedOrWaiting(h: Harness): void {
  const full = h.allocator.usage().some((u) => u.free === 0);
  for (const node of h.cluster.list()) {
    if (node.podCIDRs.length > 0 || node.deletionTimestamp !== undefined) continue;
    expect({ node: node.name, waiting: h.reconciler.waitingNodes().includes(node.name), full }).toEqual({
      node: node.name,
      waiting: true,
      full: true,
    });
  }
}

describe('reconciler under random histories', () => {
  it.each([
    ['an IPv4', V4],
    ['a two-subnet', TINY],
    ['a dual-stack', DUAL],
  ])('never gives two live nodes overlapping CIDRs and leaks nothing once settled, in %s cluster', async (_label, ranges) => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 40 }), async (commands) => {
        const h = harness({ ranges });
        const referee = new Referee(h);
        h.reconciler.rebuild([]);
        for (const cmd of commands) {
          referee.step++;
          h.cluster.landLate();
          await run(h, cmd);
        }
        referee.step++;
        h.cluster.landLate();
        await settle(h);
        expect(referee.violations).toEqual([]);
        expectAccountingMatches(h);
        expectEveryNodeServedOrWaiting(h);
        for (const node of h.cluster.list()) {
          h.cluster.remove(node.name);
          h.reconciler.nodeDeleted(node);
        }
        expect(h.allocator.usage().map((u) => u.used)).toEqual(ranges.map(() => 0));
      }),
      { numRuns: 1000 },
    );
  });
});
