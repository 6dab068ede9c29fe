// Bad cluster state all at once, on a real API server: what the API lets through, every bad node reported,
// no crash at start or on a restart, the rest allocated; and a node re-created inside the release quarantine.
import { expect, it } from 'vitest';
import { overlaps, parseCidr } from '../../src/cidr/index.js';
import { sleep, systemClock } from '../../src/time.js';
import { eventually } from '../support/eventually.js';
import {
  createNode,
  deleteNode,
  isInside,
  nodeName,
  readNode,
  scopeCIDRs,
  startController,
  stopController,
  waitForPodCIDRs,
  type ControllerProcess,
  useControllerTestSetup,
} from './controller-harness.js';
import { describeWithControlPlane, expectApiError } from './harness.js';

describeWithControlPlane('the controller facing bad cluster state', () => {
  const setup = useControllerTestSetup({ namespacePrefix: 'bad-state-controller', scopePrefix: 'bad-state', expectCleanExit: false });

  it('is refused two podCIDRs of one family by the API server, on create and on a later patch', async () => {
    setup.newScope('family');
    for (const cidrs of [['10.237.0.0/24', '10.237.1.0/24'], ['fd00:237::/64', 'fd00:237:0:1::/64']]) {
      const err = await expectApiError(() => createNode(setup.clients, setup.scope, 'two-of-a-family', { podCIDRs: cidrs }));
      expect(err.code, cidrs.join(',')).toBe(422);
      expect(err.message).toContain('may specify no more than one CIDR for each IP family');
    }
    const plain = nodeName(await createNode(setup.clients, setup.scope, 'plain'));
    const err = await expectApiError(() =>
      setup.clients.core.patchNode({ name: plain, body: [{ op: 'add', path: '/spec/podCIDRs', value: ['10.237.0.0/24', '10.237.1.0/24'] }] }),
    );
    expect(err.code).toBe(422);
    expect(err.message).toContain('may specify no more than one CIDR for each IP family');
  });

  it('reports every bad node at start and after a restart, never crashes, and allocates the rest around them', async () => {
    setup.newScope('mixed');
    // Sixteen /26s in 10.238.0.0/22; the bad nodes sit on some of them.
    const bad = {
      malformed: nodeName(await createNode(setup.clients, setup.scope, 'malformed', { podCIDRs: ['10.238.0.65/26'] })),
      outOfRange: nodeName(await createNode(setup.clients, setup.scope, 'outside', { podCIDRs: ['172.31.9.0/24'] })),
      holder: nodeName(await createNode(setup.clients, setup.scope, 'a-holder', { podCIDRs: ['10.238.1.0/26'] })),
      duplicate: nodeName(await createNode(setup.clients, setup.scope, 'b-duplicate', { podCIDRs: ['10.238.1.0/26'] })),
      overlap: nodeName(await createNode(setup.clients, setup.scope, 'c-overlap', { podCIDRs: ['10.238.1.0/25'] })),
      wrongSize: nodeName(await createNode(setup.clients, setup.scope, 'wrong-size', { podCIDRs: ['10.238.2.0/28'] })),
    };
    const args = ['--cluster-cidr', '10.238.0.0/22', '--node-cidr-mask-size', '26', '--release-quarantine', '0'];

    const first = await startController(setup.namespace, args);
    const rebuilt = await first.waitForLog((l) => l.msg === 'rebuilt podCIDR allocations from nodes');
    const fresh = (await Promise.all(Array.from({ length: 8 }, () => createNode(setup.clients, setup.scope, 'fresh')))).map(nodeName);
    const cidrs = await waitForPodCIDRs(setup.clients, setup.scope, fresh);

    expect(rebuilt.conflicts).toMatchObject({ malformed: 1, 'out-of-range': 1, duplicate: 1, overlap: 1 });
    expectReported(first, [bad.malformed, bad.outOfRange, bad.duplicate, bad.overlap]);
    // Nothing handed out shares an address with anything a bad node holds, nor with each other.
    const handedOut = fresh.map((n) => cidrs.get(n)?.[0] ?? '');
    const taken = ['10.238.0.64/26', '10.238.1.0/25', '10.238.2.0/28'];
    for (const cidr of handedOut) {
      expect(isInside('10.238.0.0/22', cidr)).toBe(true);
      for (const held of taken) expect(overlaps(parseCidr(cidr), parseCidr(held)), `${cidr} vs ${held}`).toBe(false);
    }
    expect(new Set(handedOut).size).toBe(fresh.length);
    // The bad nodes keep what they had: reported, never rewritten.
    for (const [name, want] of [
      [bad.malformed, '10.238.0.65/26'],
      [bad.outOfRange, '172.31.9.0/24'],
      [bad.duplicate, '10.238.1.0/26'],
      [bad.overlap, '10.238.1.0/25'],
      [bad.wrongSize, '10.238.2.0/28'],
    ] as const) {
      expect((await readNode(setup.clients, name)).spec?.podCIDRs, name).toEqual([want]);
    }
    expect(await stopController(first)).toBe(0);

    // A restart rebuilds from the same bad state: the same reports, no crash loop, and new nodes still served.
    const second = await startController(setup.namespace, args);
    const again = await second.waitForLog((l) => l.msg === 'rebuilt podCIDR allocations from nodes');
    expect(again.conflicts).toEqual(rebuilt.conflicts);
    const late = nodeName(await createNode(setup.clients, setup.scope, 'late'));
    const after = await waitForPodCIDRs(setup.clients, setup.scope, [late]);
    const lateCidr = after.get(late)?.[0] ?? '';
    for (const held of [...taken, ...handedOut]) expect(overlaps(parseCidr(lateCidr), parseCidr(held))).toBe(false);
    expect(second.logs.filter((l) => l.level === 'fatal' || l.level === 'error')).toEqual([]);
    expect(await stopController(second)).toBe(0);
  });

  it('gives a node re-created under the same name inside the quarantine a different CIDR and keeps the old one back until it ends', async () => {
    setup.newScope('recreate');
    const quarantineMs = 12_000;
    // Four /24s: once three are held and one is quarantined, a fourth node must wait for the quarantine.
    const proc = await startController(setup.namespace, ['--cluster-cidr', '10.239.0.0/22', '--node-cidr-mask-size', '24', '--release-quarantine', '12s']);
    await proc.waitForLog((l) => l.msg === 'rebuilt podCIDR allocations from nodes');
    const name = nodeName(await createNode(setup.clients, setup.scope, 'phoenix'));
    const old = (await waitForPodCIDRs(setup.clients, setup.scope, [name])).get(name)?.[0] ?? '';

    await deleteNode(setup.clients, name);
    await eventually(async () => ((await setup.clients.core.listNode({ fieldSelector: `metadata.name=${name}` })).items.length === 0 ? true : undefined));
    const releasedAt = Date.now();
    await setup.clients.core.createNode({ body: { ...setup.scope.node(), metadata: { name, labels: { ...setup.scope.labels } } } });
    const reborn = (await waitForPodCIDRs(setup.clients, setup.scope, [name])).get(name)?.[0] ?? '';
    expect(reborn).not.toBe(old);

    const others = (await Promise.all([createNode(setup.clients, setup.scope, 'other'), createNode(setup.clients, setup.scope, 'other')])).map(nodeName);
    await waitForPodCIDRs(setup.clients, setup.scope, others);
    const waiting = nodeName(await createNode(setup.clients, setup.scope, 'waiting'));
    // Until the quarantine ends, the only free range is the old one, and nobody may get it.
    while (Date.now() < releasedAt + quarantineMs - 2_000) {
      expect((await scopeCIDRs(setup.clients, setup.scope)).get(waiting)).toEqual([]);
      await sleep(systemClock, 500);
    }
    const got = (await waitForPodCIDRs(setup.clients, setup.scope, [waiting], 30_000)).get(waiting)?.[0];
    expect(got).toBe(old);
    expect(Date.now()).toBeGreaterThanOrEqual(releasedAt + quarantineMs - 2_000);
  });
});

/** Each node has a warning line naming it, and the process is still up. */
function expectReported(proc: ControllerProcess, nodes: readonly string[]): void {
  for (const node of nodes) {
    expect(proc.logs.some((l) => l.node === node && l.level === 'warn'), node).toBe(true);
  }
  expect(proc.logs.some((l) => l.msg === 'allocation stopped unexpectedly')).toBe(false);
}
