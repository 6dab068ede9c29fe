// The controller as a process on a real API server: allocation at scale, release and reuse, the
// release quarantine, exhaustion and its Events, and a restart that keeps every existing allocation.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  FIELD_MANAGER,
  createNamespace,
  createNode,
  deleteNamespace,
  deleteNode,
  deleteScopeNodes,
  isInside,
  managers,
  nodeEvents,
  nodeName,
  overlappingPairs,
  pool,
  readNode,
  scopeCIDRs,
  startController,
  stopController,
  stopControllers,
  waitForEvent,
  waitForNodeLog,
  waitForPodCIDRs,
} from './controller-harness.js';
import { describeWithControlPlane, eventually, kubeClients, TestScope, type KubeClients } from './harness.js';

describeWithControlPlane('the controller', () => {
  let clients: KubeClients;
  let scope: TestScope;

  let namespace: string;

  beforeAll(async () => {
    clients = kubeClients();
    namespace = await createNamespace(clients, new TestScope('controller-state'));
  });

  afterEach(async () => {
    const codes = await stopControllers();
    await deleteScopeNodes(clients, scope);
    // The first SIGTERM is a graceful stop.
    expect(codes.every((c) => c === 0), `exit codes ${codes.join(', ')}`).toBe(true);
  });

  afterAll(async () => {
    await scope.cleanup(clients);
    await deleteNamespace(clients, namespace);
  });

  function newScope(name: string): TestScope {
    scope = new TestScope(`controller-${name}`);
    return scope;
  }

  it('gives 200 nodes created concurrently disjoint podCIDRs inside the cluster CIDR', async () => {
    newScope('scale');
    const range = '10.232.0.0/16';
    await startController(namespace, ['--cluster-cidr', range, '--node-cidr-mask-size', '24']);

    const created = await pool(Array.from({ length: 200 }, (_, i) => i), 20, () => createNode(clients, scope, 'n'));
    const names = created.map(nodeName);
    const cidrs = await waitForPodCIDRs(clients, scope, names, 120_000);

    expect(cidrs.size).toBe(200);
    for (const name of names) {
      const podCIDRs = cidrs.get(name) ?? [];
      expect(podCIDRs, name).toHaveLength(1);
      expect(podCIDRs[0], name).toMatch(/\/24$/);
      expect(isInside(range, podCIDRs[0] ?? ''), `${name} ${podCIDRs[0]}`).toBe(true);
    }
    expect(overlappingPairs(cidrs)).toEqual([]);
    const sample = await readNode(clients, names[0] ?? '');
    expect(sample.spec?.podCIDR).toBe(sample.spec?.podCIDRs?.[0]);
    expect(managers(sample)).toContain(FIELD_MANAGER);
  });

  it('releases the range of a deleted node and gives it to the next node at once without a quarantine', async () => {
    newScope('reuse');
    // Two subnets: after the delete, the released one is the only one free.
    const proc = await startController(namespace, ['--cluster-cidr', '10.233.0.0/25', '--node-cidr-mask-size', '26', '--release-quarantine', '0']);
    const [a, b] = await Promise.all([createNode(clients, scope, 'a'), createNode(clients, scope, 'b')]).then((n) => n.map(nodeName));
    const before = await waitForPodCIDRs(clients, scope, [a ?? '', b ?? '']);
    const freed = before.get(a ?? '')?.[0];

    await deleteNode(clients, a ?? '');
    const released = await waitForNodeLog(proc, a ?? '', 'released podCIDRs of deleted node');
    const c = nodeName(await createNode(clients, scope, 'c'));
    const after = await waitForPodCIDRs(clients, scope, [c]);

    expect(released.released).toBe(1);
    expect(after.get(c)).toEqual([freed]);
    expect(after.get(b ?? '')).toEqual(before.get(b ?? ''));
  });

  it('does not reissue a released range inside the quarantine, and does after it', async () => {
    newScope('quarantine');
    const proc = await startController(namespace, ['--cluster-cidr', '10.233.1.0/25', '--node-cidr-mask-size', '26', '--release-quarantine', '5s']);
    const [a, b] = await Promise.all([createNode(clients, scope, 'a'), createNode(clients, scope, 'b')]).then((n) => n.map(nodeName));
    const before = await waitForPodCIDRs(clients, scope, [a ?? '', b ?? '']);
    const freed = before.get(a ?? '')?.[0];

    await deleteNode(clients, a ?? '');
    const released = await waitForNodeLog(proc, a ?? '', 'released podCIDRs of deleted node');
    const c = nodeName(await createNode(clients, scope, 'c'));
    // The only free subnet is quarantined: c waits and is told why.
    await waitForEvent(clients, c, 'CIDRNotAvailable');
    const after = await waitForPodCIDRs(clients, scope, [c]);
    const assigned = await waitForNodeLog(proc, c, 'assigned podCIDRs');

    expect(after.get(c)).toEqual([freed]);
    // Both times come from the controller's clock; the release is logged after the quarantine starts.
    expect(Date.parse(String(assigned.time)) - Date.parse(String(released.time))).toBeGreaterThanOrEqual(4_900);
  });

  it('reports exhaustion with one de-duplicated Event and allocates right after a delete', async () => {
    newScope('exhaust');
    // A /28 cut into /30s: four node subnets.
    const proc = await startController(namespace, ['--cluster-cidr', '10.233.2.0/28', '--node-cidr-mask-size', '30', '--release-quarantine', '0']);
    const first = (await pool([1, 2, 3, 4], 4, () => createNode(clients, scope, 'full'))).map(nodeName);
    const held = await waitForPodCIDRs(clients, scope, first);
    const late = nodeName(await createNode(clients, scope, 'late'));

    const event = await waitForEvent(clients, late, 'CIDRNotAvailable');
    // Let the work queue retry several times: every retry fails the same way, none writes an Event.
    await proc.waitForLog((l) => l.key === late && typeof l.requeues === 'number' && l.requeues >= 6, 60_000);
    const events = await nodeEvents(clients, late, 'CIDRNotAvailable');
    expect(event.type).toBe('Warning');
    expect(events).toHaveLength(1);
    expect(proc.logs.filter((l) => l.msg === 'cluster CIDR exhausted; nodes wait for a release')).toHaveLength(1);

    const victim = first[2] ?? '';
    await deleteNode(clients, victim);
    const after = await waitForPodCIDRs(clients, scope, [late]);
    expect(after.get(late)).toEqual(held.get(victim));
  });

  it('keeps every allocation across a restart and gives new nodes the remaining ranges', async () => {
    newScope('restart');
    const flags = ['--cluster-cidr', '10.233.3.0/24', '--node-cidr-mask-size', '28'];
    const firstRun = await startController(namespace, flags);
    const old = (await pool(Array.from({ length: 10 }, (_, i) => i), 5, () => createNode(clients, scope, 'old'))).map(nodeName);
    const before = await waitForPodCIDRs(clients, scope, old);
    expect(await stopController(firstRun)).toBe(0);

    const secondRun = await startController(namespace, flags);
    const rebuilt = await secondRun.waitForLog((l) => l.msg === 'rebuilt podCIDR allocations from nodes');
    const fresh = (await pool(Array.from({ length: 5 }, (_, i) => i), 5, () => createNode(clients, scope, 'new'))).map(nodeName);
    const after = await waitForPodCIDRs(clients, scope, fresh);

    for (const name of old) expect(after.get(name), name).toEqual(before.get(name));
    expect(overlappingPairs(after)).toEqual([]);
    expect(rebuilt.occupied).toBeGreaterThanOrEqual(old.length);
    const reassigned = secondRun.logs.filter((l) => l.msg === 'assigned podCIDRs' && old.includes(String(l.node)));
    expect(reassigned).toEqual([]);
  });

  it('after a restart, frees the range of a node deleted while it was down and keeps that of a lingering node', async () => {
    newScope('downtime');
    const finalizer = 'test.podcidr-allocator.io/hold';
    // Three /26s and no quarantine: what new nodes get shows what the restart freed.
    const flags = ['--cluster-cidr', '10.233.4.0/24', '--node-cidr-mask-size', '26', '--release-quarantine', '0', '--service-cluster-ip-range', '10.233.4.192/26'];
    const firstRun = await startController(namespace, flags);
    const gone = nodeName(await createNode(clients, scope, 'gone'));
    const lingering = nodeName(await createNode(clients, scope, 'lingering', { finalizers: [finalizer] }));
    const kept = nodeName(await createNode(clients, scope, 'kept'));
    const before = await waitForPodCIDRs(clients, scope, [gone, lingering, kept]);
    expect(await stopController(firstRun)).toBe(0);

    await deleteNode(clients, gone);
    await deleteNode(clients, lingering);
    const secondRun = await startController(namespace, flags);
    const fresh = (await pool([1, 2], 2, () => createNode(clients, scope, 'new'))).map(nodeName);
    await secondRun.waitForLog((l) => l.msg === 'cluster CIDR exhausted; nodes wait for a release');
    const after = await eventually(async () => {
      const cidrs = await scopeCIDRs(clients, scope);
      return fresh.some((n) => (cidrs.get(n) ?? []).length > 0) ? cidrs : undefined;
    });

    const served = fresh.filter((n) => (after.get(n) ?? []).length > 0);
    expect(served).toHaveLength(1);
    expect(after.get(served[0] ?? '')).toEqual(before.get(gone));
    expect(after.get(lingering)).toEqual(before.get(lingering));
    expect(after.get(kept)).toEqual(before.get(kept));

    await clients.core.patchNode({ name: lingering, body: [{ op: 'remove', path: '/metadata/finalizers' }] });
    const waiting = fresh.find((n) => !served.includes(n)) ?? '';
    const last = await waitForPodCIDRs(clients, scope, [waiting]);
    expect(last.get(waiting)).toEqual(before.get(lingering));
  });
});
