// The controller as a process on a real API server, facing podCIDRs it did not write: adopted ones,
// bad ones (what the API lets through), duplicates, reserved ranges, dual-stack, and lingering nodes.
import { expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import {
  FIELD_MANAGER,
  createNode,
  deleteNode,
  isInside,
  managers,
  metricValue,
  nodeEvents,
  nodeName,
  readNode,
  scopeCIDRs,
  startController,
  waitForEvent,
  waitForNodeLog,
  waitForPodCIDRs,
  useControllerTestSetup,
} from './controller-harness.js';
import { describeWithControlPlane, expectApiError } from './harness.js';

describeWithControlPlane('the controller with podCIDRs already on nodes', () => {
  const setup = useControllerTestSetup({ namespacePrefix: 'controller-state', scopePrefix: 'controller', expectCleanExit: true });

  it('adopts pre-set podCIDRs, leaves those nodes untouched and allocates around them', async () => {
    setup.newScope('adopt');
    // Four /24s; two are taken before the controller starts, one more while it runs.
    const range = '10.234.0.0/22';
    const before = nodeName(await createNode(setup.clients, setup.scope, 'preset', { podCIDRs: ['10.234.2.0/24'] }));
    const proc = await startController(setup.namespace, ['--cluster-cidr', range, '--node-cidr-mask-size', '24']);
    await proc.waitForLog((l) => l.msg === 'rebuilt podCIDR allocations from nodes');
    const during = nodeName(await createNode(setup.clients, setup.scope, 'preset', { podCIDRs: ['10.234.0.0/24'] }));
    await waitForNodeLog(proc, during, 'occupied existing podCIDR');

    const fresh = await Promise.all([createNode(setup.clients, setup.scope, 'new'), createNode(setup.clients, setup.scope, 'new')]);
    const cidrs = await waitForPodCIDRs(setup.clients, setup.scope, fresh.map(nodeName));

    expect(fresh.map((n) => cidrs.get(nodeName(n))?.[0]).sort()).toEqual(['10.234.1.0/24', '10.234.3.0/24']);
    for (const [name, want] of [[before, '10.234.2.0/24'], [during, '10.234.0.0/24']] as const) {
      const node = await readNode(setup.clients, name);
      expect(node.spec?.podCIDRs, name).toEqual([want]);
      expect(node.spec?.podCIDR, name).toBe(want);
      expect(managers(node), name).not.toContain(FIELD_MANAGER);
    }
  });

  it('cannot be handed a podCIDR that is not a CIDR: the API server refuses it on create', async () => {
    setup.newScope('api-refuses');

    for (const text of ['not-a-cidr', '10.235.0.0', '10.235.0.0/33', '']) {
      const err = await expectApiError(() => createNode(setup.clients, setup.scope, 'bad', { podCIDRs: [text] }));
      expect(err.code, text).toBe(422);
      expect(err.message, text).toContain('must be a valid CIDR value');
    }
  });

  it('reports a podCIDR with host bits set or leading zeros as malformed and never hands out the network it names', async () => {
    setup.newScope('malformed');
    // The API server accepts these (its parser is lenient); kubelet reads 10.235.1.0/24 and 10.235.2.0/24.
    const hostBits = nodeName(await createNode(setup.clients, setup.scope, 'hostbits', { podCIDRs: ['10.235.1.7/24'] }));
    const zeros = nodeName(await createNode(setup.clients, setup.scope, 'zeros', { podCIDRs: ['010.235.002.000/24'] }));
    const proc = await startController(setup.namespace, ['--cluster-cidr', '10.235.0.0/22', '--node-cidr-mask-size', '24']);
    const fresh = (await Promise.all([createNode(setup.clients, setup.scope, 'new'), createNode(setup.clients, setup.scope, 'new')])).map(nodeName);

    const cidrs = await waitForPodCIDRs(setup.clients, setup.scope, fresh);
    const events = await Promise.all([hostBits, zeros].map((n) => waitForEvent(setup.clients, n, 'PodCIDRMalformed')));

    expect(fresh.map((n) => cidrs.get(n)?.[0]).sort()).toEqual(['10.235.0.0/24', '10.235.3.0/24']);
    expect(events.map((e) => e.type)).toEqual(['Warning', 'Warning']);
    expect(proc.logs.find((l) => l.node === hostBits && l.level === 'warn')).toMatchObject({ problem: 'malformed', cidr: '10.235.1.7/24' });
    expect(cidrs.get(hostBits)).toEqual(['10.235.1.7/24']);
  });

  it('reports an out-of-range podCIDR with a log line and an Event while other nodes still get theirs', async () => {
    setup.newScope('out-of-range');
    const stray = nodeName(await createNode(setup.clients, setup.scope, 'stray', { podCIDRs: ['192.168.7.0/24'] }));
    const proc = await startController(setup.namespace, ['--cluster-cidr', '10.235.0.0/24', '--node-cidr-mask-size', '26']);
    const other = nodeName(await createNode(setup.clients, setup.scope, 'ok'));

    const line = await waitForNodeLog(proc, stray, 'podCIDR is outside every cluster CIDR; leaving the node as it is');
    const event = await waitForEvent(setup.clients, stray, 'PodCIDROutOfRange');
    const cidrs = await waitForPodCIDRs(setup.clients, setup.scope, [other]);

    // Touching the node (labels, status) reports nothing again. A node created after the touches
    // holding its podCIDR shows the watch delivered them (events arrive in order).
    for (let i = 0; i < 3; i++) await setup.clients.core.patchNode({ name: stray, body: [{ op: 'add', path: `/metadata/labels/touch-${i}`, value: 'x' }] });
    const later = nodeName(await createNode(setup.clients, setup.scope, 'later'));
    await waitForPodCIDRs(setup.clients, setup.scope, [later]);
    expect(await nodeEvents(setup.clients, stray, 'PodCIDROutOfRange')).toHaveLength(1);
    expect(metricValue(await proc.metrics(), 'podcidr_allocator_conflicts_found_total{kind="out-of-range"}')).toBe(1);
    expect(proc.logs.filter((l) => l.node === stray && l.level === 'warn')).toHaveLength(1);
    expect(line).toMatchObject({ level: 'warn', cidr: '192.168.7.0/24', problem: 'out-of-range' });
    expect(event.type).toBe('Warning');
    expect(event.message).toContain('192.168.7.0/24');
    expect(isInside('10.235.0.0/24', cidrs.get(other)?.[0] ?? '')).toBe(true);
    expect(cidrs.get(stray)).toEqual(['192.168.7.0/24']);
  });

  it('reports a podCIDR held by two nodes on the second; the first holder keeps it', async () => {
    setup.newScope('duplicate');
    const first = nodeName(await createNode(setup.clients, setup.scope, 'a-holder', { podCIDRs: ['10.236.0.0/26'] }));
    const second = nodeName(await createNode(setup.clients, setup.scope, 'b-copy', { podCIDRs: ['10.236.0.0/26'] }));
    const proc = await startController(setup.namespace, ['--cluster-cidr', '10.236.0.0/24', '--node-cidr-mask-size', '26']);
    const fresh = nodeName(await createNode(setup.clients, setup.scope, 'new'));

    const event = await waitForEvent(setup.clients, second, 'PodCIDRConflict');
    const line = await waitForNodeLog(proc, second, `podCIDR is already the podCIDR of ${first} (10.236.0.0/26), which keeps it; leaving the node as it is`);
    const cidrs = await waitForPodCIDRs(setup.clients, setup.scope, [fresh]);

    expect(line).toMatchObject({ level: 'warn', problem: 'duplicate' });
    expect(event.message).toContain(first);
    expect(await nodeEvents(setup.clients, first, 'PodCIDRConflict')).toEqual([]);
    expect(cidrs.get(fresh)?.[0]).not.toBe('10.236.0.0/26');
    expect(cidrs.get(first)).toEqual(['10.236.0.0/26']);
    expect(cidrs.get(second)).toEqual(['10.236.0.0/26']);
  });

  it.each([
    ['IPv6 first', 'fd00:237::/112,10.237.0.0/24', 1],
    ['IPv4 first', '10.237.0.0/24,fd00:237::/112', 0],
  ])('gives dual-stack nodes one range per family in the order of --cluster-cidr, podCIDR the first (%s)', async (_, ranges, v4At) => {
    setup.newScope('dual-stack');
    await startController(setup.namespace, ['--cluster-cidr', ranges, '--node-cidr-mask-size-ipv4', '26', '--node-cidr-mask-size-ipv6', '120']);
    const names = (await Promise.all([createNode(setup.clients, setup.scope, 'ds'), createNode(setup.clients, setup.scope, 'ds')])).map(nodeName);
    await waitForPodCIDRs(setup.clients, setup.scope, names);

    for (const name of names) {
      const node = await readNode(setup.clients, name);
      const podCIDRs = node.spec?.podCIDRs ?? [];
      const v4 = podCIDRs[v4At] ?? '';
      const v6 = podCIDRs[1 - v4At] ?? '';
      expect(podCIDRs, name).toHaveLength(2);
      expect(isInside('10.237.0.0/24', v4), `${name} ${v4}`).toBe(true);
      expect(v4, name).toMatch(/\/26$/);
      expect(isInside('fd00:237::/112', v6), `${name} ${v6}`).toBe(true);
      expect(v6, name).toMatch(/\/120$/);
      expect(node.spec?.podCIDR, name).toBe(podCIDRs[0]);
    }
  });

  it('never hands out subnets overlapping the service CIDR or an excluded CIDR', async () => {
    setup.newScope('reserved');
    // Four /26s: the first is the service range, the third is excluded, so two remain.
    const proc = await startController(setup.namespace, [
      '--cluster-cidr',
      '10.238.0.0/24',
      '--node-cidr-mask-size',
      '26',
      '--service-cluster-ip-range',
      '10.238.0.0/26',
      '--exclude-cidr',
      '10.238.0.160/27',
      '--release-quarantine',
      '0',
    ]);
    const names = (await Promise.all([1, 2, 3].map(() => createNode(setup.clients, setup.scope, 'r')))).map(nodeName);

    const exhausted = await proc.waitForLog((l) => l.msg === 'cluster CIDR exhausted; nodes wait for a release');
    // The two allocations before the exhaustion may still be on their way to the API server.
    const given = await eventually(async () => {
      const cidrs = await scopeCIDRs(setup.clients, setup.scope);
      const all = names.flatMap((n) => cidrs.get(n) ?? []).sort();
      return all.length >= 2 ? all : undefined;
    });

    expect(given).toEqual(['10.238.0.192/26', '10.238.0.64/26']);
    expect(await waitForEvent(setup.clients, String(exhausted.node), 'CIDRNotAvailable')).toBeDefined();
  });

  it('holds every node subnet a pre-set podCIDR of another size touches', async () => {
    setup.newScope('sizes');
    // /24 node subnets; a /23 covers two of them, a /25 half of one.
    const wide = nodeName(await createNode(setup.clients, setup.scope, 'wide', { podCIDRs: ['10.241.0.0/23'] }));
    const narrow = nodeName(await createNode(setup.clients, setup.scope, 'narrow', { podCIDRs: ['10.241.2.128/25'] }));
    await startController(setup.namespace, ['--cluster-cidr', '10.241.0.0/21', '--node-cidr-mask-size', '24']);
    const fresh = (await Promise.all([1, 2, 3].map(() => createNode(setup.clients, setup.scope, 'new')))).map(nodeName);

    const cidrs = await waitForPodCIDRs(setup.clients, setup.scope, fresh);

    expect(fresh.map((n) => cidrs.get(n)?.[0]).sort()).toEqual(['10.241.3.0/24', '10.241.4.0/24', '10.241.5.0/24']);
    expect([cidrs.get(wide), cidrs.get(narrow)]).toEqual([['10.241.0.0/23'], ['10.241.2.128/25']]);
  });

  it('keeps a reserved subnet reserved after the node that carried it is deleted', async () => {
    setup.newScope('reserved-held');
    // The first /26 is the service range, yet a node was given it before the flag was set.
    const squatter = nodeName(await createNode(setup.clients, setup.scope, 'squatter', { podCIDRs: ['10.242.0.0/26'] }));
    const proc = await startController(setup.namespace, [
      '--cluster-cidr',
      '10.242.0.0/24',
      '--node-cidr-mask-size',
      '26',
      '--service-cluster-ip-range',
      '10.242.0.0/26',
      '--release-quarantine',
      '0',
    ]);
    await proc.waitForLog((l) => l.msg === 'rebuilt podCIDR allocations from nodes');
    await deleteNode(setup.clients, squatter);
    await waitForNodeLog(proc, squatter, 'released podCIDRs of deleted node');

    const names = (await Promise.all([1, 2, 3, 4].map(() => createNode(setup.clients, setup.scope, 'n')))).map(nodeName);
    await proc.waitForLog((l) => l.msg === 'cluster CIDR exhausted; nodes wait for a release');
    const given = await eventually(async () => {
      const cidrs = await scopeCIDRs(setup.clients, setup.scope);
      const all = names.flatMap((n) => cidrs.get(n) ?? []).sort();
      return all.length >= 3 ? all : undefined;
    });

    expect(given).toEqual(['10.242.0.128/26', '10.242.0.192/26', '10.242.0.64/26']);
  });

  it('keeps the range of a node that is being deleted and releases it only once the node is gone', async () => {
    setup.newScope('finalizer');
    const finalizer = 'test.podcidr-allocator.io/hold';
    // Two /26s and no quarantine: what a third node gets shows what was released.
    const proc = await startController(setup.namespace, ['--cluster-cidr', '10.239.0.0/25', '--node-cidr-mask-size', '26', '--release-quarantine', '0']);
    const lingering = nodeName(await createNode(setup.clients, setup.scope, 'lingering', { finalizers: [finalizer] }));
    const held = (await waitForPodCIDRs(setup.clients, setup.scope, [lingering])).get(lingering);

    await deleteNode(setup.clients, lingering);
    await eventually(async () => ((await readNode(setup.clients, lingering)).metadata?.deletionTimestamp ? true : undefined));
    const other = nodeName(await createNode(setup.clients, setup.scope, 'other'));
    const waiting = nodeName(await createNode(setup.clients, setup.scope, 'waiting'));
    const otherCidrs = await waitForPodCIDRs(setup.clients, setup.scope, [other]);
    await waitForEvent(setup.clients, waiting, 'CIDRNotAvailable');

    expect(otherCidrs.get(other)).not.toEqual(held);
    expect((await readNode(setup.clients, lingering)).spec?.podCIDRs).toEqual(held);
    expect(proc.logs.some((l) => l.node === lingering && l.msg === 'released podCIDRs of deleted node')).toBe(false);
    expect((await scopeCIDRs(setup.clients, setup.scope)).get(waiting)).toEqual([]);

    // The generated client sends a JSON patch by default.
    await setup.clients.core.patchNode({ name: lingering, body: [{ op: 'remove', path: '/metadata/finalizers' }] });
    await waitForNodeLog(proc, lingering, 'released podCIDRs of deleted node');
    const after = await waitForPodCIDRs(setup.clients, setup.scope, [waiting]);
    expect(after.get(waiting)).toEqual(held);
  });
});
