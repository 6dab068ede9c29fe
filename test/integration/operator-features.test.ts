// The controller as a process on a real API server, for what runs beside allocation: ranges appended
// from podcidr-allocator-config, the continuous audit, early warnings, second-allocator detection, durable quarantine.
import type * as k8s from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import {
  createNode,
  deleteNode,
  deleteScopeNodes,
  metricValue,
  nodeName,
  readNode,
  startController,
  stopController,
  stopControllers,
  waitForEvent,
  waitForPodCIDRs,
} from './controller-harness.js';
import { describeWithControlPlane, kubeClients, TestScope, type KubeClients } from './harness.js';

const CONFIG = 'podcidr-allocator-config';
const STATE = 'podcidr-allocator-state';

describeWithControlPlane('operator features of the running controller', () => {
  let clients: KubeClients;
  let scope: TestScope;
  let namespace: string;

  beforeAll(async () => {
    clients = kubeClients();
    scope = new TestScope('operator-features');
    namespace = scope.id;
    await clients.core.createNamespace({ body: { metadata: { name: namespace, labels: scope.labels } } });
  });

  afterEach(async () => {
    await stopControllers();
    await deleteScopeNodes(clients, scope);
    await clients.core.deleteCollectionNamespacedConfigMap({ namespace });
  });

  afterAll(async () => {
    await scope.cleanup(clients);
    await clients.core.deleteNamespace({ name: namespace });
  });

  function run(args: string[]) {
    return startController(namespace, ['--node-cidr-mask-size', '24', ...args]);
  }

  async function setConfig(clusterCIDRs: string): Promise<void> {
    const body: k8s.V1ConfigMap = { metadata: { name: CONFIG, namespace }, data: { clusterCIDRs } };
    try {
      await clients.core.replaceNamespacedConfigMap({ name: CONFIG, namespace, body });
    } catch {
      await clients.core.createNamespacedConfigMap({ namespace, body });
    }
  }

  /** Events about the range ConfigMap with this reason, as core/v1 shows them. */
  async function configEvents(reason: string): Promise<k8s.CoreV1Event[]> {
    const fieldSelector = `involvedObject.name=${CONFIG},reason=${reason}`;
    return (await clients.core.listNamespacedEvent({ namespace, fieldSelector })).items;
  }

  function waitForConfigEvent(reason: string, count = 1): Promise<k8s.CoreV1Event[]> {
    return eventually(async () => {
      const events = await configEvents(reason);
      return events.length >= count ? events : undefined;
    });
  }

  it('warns before a range is full, then allocates waiting nodes from a range appended at run time', async () => {
    const proc = await run(['--cluster-cidr', '10.241.0.0/23', '--release-quarantine', '0']);
    const first = await Promise.all([createNode(clients, scope, 'a'), createNode(clients, scope, 'b')]);
    await waitForPodCIDRs(clients, scope, first.map(nodeName));
    const notes = (await waitForConfigEvent('PodCIDRRangeNearlyFull', 2)).map((e) => e.message ?? '');
    expect(notes.some((n) => n.includes('10.241.0.0/23 is 100 % used (2 of 2 node subnets), past 80 %'))).toBe(true);
    expect(notes.some((n) => n.includes('past 95 %'))).toBe(true);
    expect(await configEvents('PodCIDRRangeNearlyFull')).toHaveLength(2);
    expect(metricValue(await proc.metrics(), 'podcidr_allocator_range_nearly_full{clusterCIDR="10.241.0.0/23",pool="--cluster-cidr"}')).toBe(0.95);

    const waiting = nodeName(await createNode(clients, scope, 'waiting'));
    await waitForEvent(clients, waiting, 'CIDRNotAvailable');
    await setConfig('10.241.0.0/23, 10.241.8.0/24');
    const got = await waitForPodCIDRs(clients, scope, [waiting]);
    expect(got.get(waiting)).toEqual(['10.241.8.0/24']);
    await proc.waitForLog((l) => l.msg === 'appended cluster ranges');
    expect(await waitForConfigEvent('PodCIDRRangesAppended')).toHaveLength(1);

    // Editing a range in force is refused; the appended range stays.
    await setConfig('10.241.0.0/24,10.241.8.0/24');
    const refused = await waitForConfigEvent('PodCIDRRangeChangeRefused');
    expect(refused[0]?.type).toBe('Warning');
    expect(refused[0]?.message).toContain('entry 1 is 10.241.0.0/24 where 10.241.0.0/23 is in force');
    await proc.waitForLog((l) => l.msg.startsWith('refused the change to podcidr-allocator-config'));
    const metrics = await proc.metrics();
    expect(metricValue(metrics, 'podcidr_allocator_range_capacity_cidrs{clusterCIDR="10.241.0.0/23",family="IPv4",pool="--cluster-cidr"}')).toBe(2);
    expect(metricValue(metrics, 'podcidr_allocator_range_capacity_cidrs{clusterCIDR="10.241.8.0/24",family="IPv4",pool="--cluster-cidr"}')).toBe(1);
    await stopController(proc);

    // A restarted controller reads the appended range before its first allocation.
    await setConfig('10.241.0.0/23,10.241.8.0/24,10.241.9.0/24');
    const again = await run(['--cluster-cidr', '10.241.0.0/23', '--release-quarantine', '0']);
    const appended = await again.waitForLog((l) => l.msg === 'appended cluster ranges');
    const rebuilt = await again.waitForLog((l) => l.msg === 'rebuilt podCIDR allocations from nodes');
    expect(Date.parse(String(appended.time))).toBeLessThanOrEqual(Date.parse(String(rebuilt.time)));
    expect(rebuilt.conflicts).toMatchObject({ 'out-of-range': 0 });
    const late = nodeName(await createNode(clients, scope, 'late'));
    expect((await waitForPodCIDRs(clients, scope, [late])).get(late)).toEqual(['10.241.9.0/24']);
  });

  it('audits the cache on a timer: counts findings by kind and raises an Event per new finding', async () => {
    const dupA = nodeName(await createNode(clients, scope, 'dup', { podCIDRs: ['10.242.1.0/24'] }));
    const dupB = nodeName(await createNode(clients, scope, 'dup', { podCIDRs: ['10.242.1.0/24'] }));
    const reserved = nodeName(await createNode(clients, scope, 'svc', { podCIDRs: ['10.242.3.0/24'] }));
    const proc = await run(['--cluster-cidr', '10.242.0.0/22', '--exclude-cidr', '10.242.3.0/24', '--audit-interval', '1s']);
    // Two node subnets are left for three nodes: one of them stays without a podCIDR.
    const fresh = await Promise.all([1, 2, 3].map(() => createNode(clients, scope, 'n')));
    await eventually(async () => {
      const m = await proc.metrics();
      const ok =
        metricValue(m, 'podcidr_allocator_audit_findings{kind="duplicate"}') === 1 &&
        metricValue(m, 'podcidr_allocator_audit_findings{kind="reserved"}') === 1 &&
        metricValue(m, 'podcidr_allocator_audit_findings{kind="missing"}') === 1 &&
        metricValue(m, 'podcidr_allocator_audit_findings{kind="overlap"}') === 0 &&
        // The conflicts gauge reads the same audit.
        metricValue(m, 'podcidr_allocator_conflicts{kind="duplicate"}') === 1;
      return ok ? true : undefined;
    });
    const second = [dupA, dupB].sort()[1] ?? '';
    await waitForEvent(clients, second, 'PodCIDRConflict');
    const inReserved = await waitForEvent(clients, reserved, 'PodCIDRInReservedRange');
    expect(inReserved.message).toBe('podCIDR 10.242.3.0/24 shares addresses with the reserved range 10.242.3.0/24');
    const without = fresh.map(nodeName);
    const missing = await eventually(async () => {
      for (const name of without) {
        const node = await readNode(clients, name);
        if ((node.spec?.podCIDRs ?? []).length === 0) return name;
      }
      return undefined;
    });
    await waitForEvent(clients, missing, 'PodCIDRMissing');

    // A finding that goes away leaves the gauge.
    await deleteNode(clients, reserved);
    await eventually(async () => (metricValue(await proc.metrics(), 'podcidr_allocator_audit_findings{kind="reserved"}') === 0 ? true : undefined));
  });

  it('reports podCIDRs another field manager sets while it leads, but not those it found at startup', async () => {
    const before = scope.node('before');
    before.spec = { podCIDR: '10.243.0.0/24', podCIDRs: ['10.243.0.0/24'] };
    await clients.core.createNode({ body: before, fieldManager: 'kube-controller-manager' });
    const proc = await run(['--cluster-cidr', '10.243.0.0/20', '--release-quarantine', '0']);
    await proc.waitForLog((l) => l.msg === 'rebuilt podCIDR allocations from nodes');

    const after = scope.node('after');
    after.spec = { podCIDR: '10.243.5.0/24', podCIDRs: ['10.243.5.0/24'] };
    await clients.core.createNode({ body: after, fieldManager: 'kube-controller-manager' });
    const name = after.metadata?.name ?? '';
    const event = await waitForEvent(clients, name, 'PodCIDRSetByOtherAllocator');
    expect(event.type).toBe('Warning');
    expect(event.message).toContain('set by field manager kube-controller-manager');
    const log = await proc.waitForLog((l) => l.msg === 'podCIDRs set by another allocator');
    expect(log).toMatchObject({ node: name, manager: 'kube-controller-manager' });
    const metrics = await proc.metrics();
    expect(metricValue(metrics, 'podcidr_allocator_foreign_podcidr_writes_total{manager="kube-controller-manager"}')).toBe(1);

    // Our own allocations are not foreign.
    const ours = nodeName(await createNode(clients, scope, 'ours'));
    await waitForPodCIDRs(clients, scope, [ours]);
    const beforeName = before.metadata?.name ?? '';
    expect(await waitForEventsOf(beforeName)).toEqual([]);
    expect(await waitForEventsOf(ours)).toEqual([]);
  });

  it('reports podCIDRs another field manager patches onto a node it saw without them', async () => {
    // A node being deleted gets no podCIDR from us, so the other writer is the only one. It is deleted
    // before the controller starts: started first, the controller may allocate between create and delete.
    const finalizer = 'test.podcidr-allocator.io/hold';
    const held = nodeName(await createNode(clients, scope, 'held', { finalizers: [finalizer] }));
    await clients.core.deleteNode({ name: held });
    const proc = await run(['--cluster-cidr', '10.245.0.0/20', '--release-quarantine', '0']);
    await proc.waitForLog((l) => l.node === held && l.msg === 'node is being deleted; not allocating');
    await clients.core.patchNode(
      { name: held, body: [{ op: 'add', path: '/spec/podCIDRs', value: ['10.245.7.0/24'] }], fieldManager: 'cilium-operator' },
    );
    const event = await waitForEvent(clients, held, 'PodCIDRSetByOtherAllocator');
    expect(event.message).toContain('podCIDRs 10.245.7.0/24 were set by field manager cilium-operator');
    expect(metricValue(await proc.metrics(), 'podcidr_allocator_foreign_podcidr_writes_total{manager="cilium-operator"}')).toBe(1);
    await clients.core.patchNode({ name: held, body: [{ op: 'remove', path: '/metadata/finalizers' }] });
  });

  async function waitForEventsOf(node: string): Promise<string[]> {
    const fieldSelector = `involvedObject.name=${node},reason=PodCIDRSetByOtherAllocator`;
    return (await clients.core.listNamespacedEvent({ namespace: 'default', fieldSelector })).items.map((e) => e.message ?? '');
  }

  it('keeps a released CIDR in quarantine across a restart through podcidr-allocator-state', async () => {
    const args = ['--cluster-cidr', '10.244.0.0/23', '--release-quarantine', '5m'];
    const proc = await run(args);
    const [a, b] = await Promise.all([createNode(clients, scope, 'q'), createNode(clients, scope, 'q')]);
    const cidrs = await waitForPodCIDRs(clients, scope, [nodeName(a), nodeName(b)]);
    const released = cidrs.get(nodeName(a))?.[0] ?? '';
    await deleteNode(clients, nodeName(a));
    await proc.waitForLog((l) => l.node === nodeName(a) && l.msg === 'released podCIDRs of deleted node');
    const stored = await eventually(async () => {
      const cm = await clients.core.readNamespacedConfigMap({ name: STATE, namespace });
      const text = cm.data?.['quarantine.json'] ?? '';
      return text.includes(released) ? text : undefined;
    });
    expect(JSON.parse(stored)).toMatchObject({ version: 1, entries: [[released, expect.any(Number)]] });
    await stopController(proc);

    const again = await run(args);
    const loaded = await again.waitForLog((l) => l.msg === 'loaded the stored release quarantine');
    expect(loaded.entries).toBe(1);
    const c = nodeName(await createNode(clients, scope, 'q'));
    await waitForEvent(clients, c, 'CIDRNotAvailable');
    expect((await readNode(clients, c)).spec?.podCIDRs ?? []).toEqual([]);
    const m = await again.metrics();
    expect(metricValue(m, 'podcidr_allocator_range_quarantined_cidrs{clusterCIDR="10.244.0.0/23",family="IPv4",pool="--cluster-cidr"}')).toBe(1);
  });
});
