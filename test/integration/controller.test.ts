// The controller as a process on a real API server: allocation at scale, release and reuse, the
// release quarantine, exhaustion and its Events, and a restart that keeps every existing allocation.
import { expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import {
  FIELD_MANAGER,
  createNode,
  deleteNode,
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
  waitForEvent,
  waitForNodeLog,
  waitForPodCIDRs,
  useControllerTestSetup,
} from './controller-harness.js';
import { describeWithControlPlane } from './harness.js';

describeWithControlPlane('the controller', () => {
  const setup = useControllerTestSetup({ namespacePrefix: 'controller-state', scopePrefix: 'controller', expectCleanExit: true });

  it('gives 200 nodes created concurrently disjoint podCIDRs inside the cluster CIDR', async () => {
    setup.newScope('scale');
    const range = '10.232.0.0/16';
    await startController(setup.namespace, ['--cluster-cidr', range, '--node-cidr-mask-size', '24']);

    const created = await pool(Array.from({ length: 200 }, (_, i) => i), 20, () => createNode(setup.clients, setup.scope, 'n'));
    const names = created.map(nodeName);
    const cidrs = await waitForPodCIDRs(setup.clients, setup.scope, names, 120_000);

    expect(cidrs.size).toBe(200);
    for (const name of names) {
      const podCIDRs = cidrs.get(name) ?? [];
      expect(podCIDRs, name).toHaveLength(1);
      expect(podCIDRs[0], name).toMatch(/\/24$/);
      expect(isInside(range, podCIDRs[0] ?? ''), `${name} ${podCIDRs[0]}`).toBe(true);
    }
    expect(overlappingPairs(cidrs)).toEqual([]);
    const sample = await readNode(setup.clients, names[0] ?? '');
    expect(sample.spec?.podCIDR).toBe(sample.spec?.podCIDRs?.[0]);
    expect(managers(sample)).toContain(FIELD_MANAGER);
  });

  /**
   * Two nodes a and b fill a range of two /26 subnets; a is deleted (its release logged), then c is
   * created, so the subnet a held is the only one free for c.
   */
  async function releaseFirstOfTwo(clusterCIDR: string, quarantine: string) {
    const proc = await startController(setup.namespace, ['--cluster-cidr', clusterCIDR, '--node-cidr-mask-size', '26', '--release-quarantine', quarantine]);
    const [a, b] = await Promise.all([createNode(setup.clients, setup.scope, 'a'), createNode(setup.clients, setup.scope, 'b')]).then((n) => n.map(nodeName));
    const before = await waitForPodCIDRs(setup.clients, setup.scope, [a ?? '', b ?? '']);
    const freed = before.get(a ?? '')?.[0];

    await deleteNode(setup.clients, a ?? '');
    const released = await waitForNodeLog(proc, a ?? '', 'released podCIDRs of deleted node');
    const c = nodeName(await createNode(setup.clients, setup.scope, 'c'));
    return { proc, b: b ?? '', before, freed, released, c };
  }

  it('releases the range of a deleted node and gives it to the next node at once without a quarantine', async () => {
    setup.newScope('reuse');
    const { b, before, freed, released, c } = await releaseFirstOfTwo('10.233.0.0/25', '0');
    const after = await waitForPodCIDRs(setup.clients, setup.scope, [c]);

    expect(released.released).toBe(1);
    expect(after.get(c)).toEqual([freed]);
    expect(after.get(b)).toEqual(before.get(b));
  });

  it('does not reissue a released range inside the quarantine, and does after it', async () => {
    setup.newScope('quarantine');
    const { proc, freed, released, c } = await releaseFirstOfTwo('10.233.1.0/25', '5s');
    // The only free subnet is quarantined: c waits and is told why.
    await waitForEvent(setup.clients, c, 'CIDRNotAvailable');
    const after = await waitForPodCIDRs(setup.clients, setup.scope, [c]);
    const assigned = await waitForNodeLog(proc, c, 'assigned podCIDRs');

    expect(after.get(c)).toEqual([freed]);
    // Both times come from the controller's clock; the release is logged after the quarantine starts.
    expect(Date.parse(String(assigned.time)) - Date.parse(String(released.time))).toBeGreaterThanOrEqual(4_900);
  });

  it('reports exhaustion with one de-duplicated Event and allocates right after a delete', async () => {
    setup.newScope('exhaust');
    // A /28 cut into /30s: four node subnets.
    const proc = await startController(setup.namespace, ['--cluster-cidr', '10.233.2.0/28', '--node-cidr-mask-size', '30', '--release-quarantine', '0']);
    const first = (await pool([1, 2, 3, 4], 4, () => createNode(setup.clients, setup.scope, 'full'))).map(nodeName);
    const held = await waitForPodCIDRs(setup.clients, setup.scope, first);
    const late = nodeName(await createNode(setup.clients, setup.scope, 'late'));

    const event = await waitForEvent(setup.clients, late, 'CIDRNotAvailable');
    // Let the work queue retry several times: every retry fails the same way, none writes an Event.
    await proc.waitForLog((l) => l.key === late && typeof l.requeues === 'number' && l.requeues >= 6, 60_000);
    const events = await nodeEvents(setup.clients, late, 'CIDRNotAvailable');
    expect(event.type).toBe('Warning');
    expect(events).toHaveLength(1);
    expect(proc.logs.filter((l) => l.msg === 'cluster CIDR exhausted; nodes wait for a release')).toHaveLength(1);

    const victim = first[2] ?? '';
    await deleteNode(setup.clients, victim);
    const after = await waitForPodCIDRs(setup.clients, setup.scope, [late]);
    expect(after.get(late)).toEqual(held.get(victim));
  });

  it('keeps every allocation across a restart and gives new nodes the remaining ranges', async () => {
    setup.newScope('restart');
    const flags = ['--cluster-cidr', '10.233.3.0/24', '--node-cidr-mask-size', '28'];
    const firstRun = await startController(setup.namespace, flags);
    const old = (await pool(Array.from({ length: 10 }, (_, i) => i), 5, () => createNode(setup.clients, setup.scope, 'old'))).map(nodeName);
    const before = await waitForPodCIDRs(setup.clients, setup.scope, old);
    expect(await stopController(firstRun)).toBe(0);

    const secondRun = await startController(setup.namespace, flags);
    const rebuilt = await secondRun.waitForLog((l) => l.msg === 'rebuilt podCIDR allocations from nodes');
    const fresh = (await pool(Array.from({ length: 5 }, (_, i) => i), 5, () => createNode(setup.clients, setup.scope, 'new'))).map(nodeName);
    const after = await waitForPodCIDRs(setup.clients, setup.scope, fresh);

    for (const name of old) expect(after.get(name), name).toEqual(before.get(name));
    expect(overlappingPairs(after)).toEqual([]);
    expect(rebuilt.occupied).toBeGreaterThanOrEqual(old.length);
    const reassigned = secondRun.logs.filter((l) => l.msg === 'assigned podCIDRs' && old.includes(String(l.node)));
    expect(reassigned).toEqual([]);
  });

  it('after a restart, frees the range of a node deleted while it was down and keeps that of a lingering node', async () => {
    setup.newScope('downtime');
    const finalizer = 'test.podcidr-allocator.io/hold';
    // Three /26s and no quarantine: what new nodes get shows what the restart freed.
    const flags = ['--cluster-cidr', '10.233.4.0/24', '--node-cidr-mask-size', '26', '--release-quarantine', '0', '--service-cluster-ip-range', '10.233.4.192/26'];
    const firstRun = await startController(setup.namespace, flags);
    const gone = nodeName(await createNode(setup.clients, setup.scope, 'gone'));
    const lingering = nodeName(await createNode(setup.clients, setup.scope, 'lingering', { finalizers: [finalizer] }));
    const kept = nodeName(await createNode(setup.clients, setup.scope, 'kept'));
    const before = await waitForPodCIDRs(setup.clients, setup.scope, [gone, lingering, kept]);
    expect(await stopController(firstRun)).toBe(0);

    await deleteNode(setup.clients, gone);
    await deleteNode(setup.clients, lingering);
    const secondRun = await startController(setup.namespace, flags);
    const fresh = (await pool([1, 2], 2, () => createNode(setup.clients, setup.scope, 'new'))).map(nodeName);
    await secondRun.waitForLog((l) => l.msg === 'cluster CIDR exhausted; nodes wait for a release');
    const after = await eventually(async () => {
      const cidrs = await scopeCIDRs(setup.clients, setup.scope);
      return fresh.some((n) => (cidrs.get(n) ?? []).length > 0) ? cidrs : undefined;
    });

    const served = fresh.filter((n) => (after.get(n) ?? []).length > 0);
    expect(served).toHaveLength(1);
    expect(after.get(served[0] ?? '')).toEqual(before.get(gone));
    expect(after.get(lingering)).toEqual(before.get(lingering));
    expect(after.get(kept)).toEqual(before.get(kept));

    await setup.clients.core.patchNode({ name: lingering, body: [{ op: 'remove', path: '/metadata/finalizers' }] });
    const waiting = fresh.find((n) => !served.includes(n)) ?? '';
    const last = await waitForPodCIDRs(setup.clients, setup.scope, [waiting]);
    expect(last.get(waiting)).toEqual(before.get(lingering));
  });

  it('spends --kube-api-burst on patches: the caches list and watch on a budget of their own', async () => {
    setup.newScope('budget');
    // At 0.01 requests a second only the burst is spent within the test. Six tokens cover the term's
    // ConfigMap read and three patches with two to spare, but not also the caches' four lists and watches.
    const flags = ['--cluster-cidr', '10.233.5.0/24', '--node-cidr-mask-size', '26', '--release-quarantine', '0', '--kube-api-qps', '0.01', '--kube-api-burst', '6'];
    await startController(setup.namespace, flags);
    const names = (await pool([1, 2, 3], 3, () => createNode(setup.clients, setup.scope, 'n'))).map(nodeName);
    const cidrs = await waitForPodCIDRs(setup.clients, setup.scope, names, 30_000);

    expect([...cidrs.values()].map((c) => c.length)).toEqual([1, 1, 1]);
    expect(overlappingPairs(cidrs)).toEqual([]);
  });
});
