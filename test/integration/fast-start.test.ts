// The handoff on a real API server: a graceful stop leaves one that covers every podCIDR, a restart
// allocates from it while its list comes in and hands over without a conflict, and one that does not
// fit the ranges or cannot be read is passed over for a start that lists first.
import { expect, it } from 'vitest';
import { decodeHandoff, HANDOFF_KEY, HANDOFF_NAME } from '../../src/term/handoff.js';
import {
  createNode,
  nodeEvents,
  nodeName,
  overlappingPairs,
  startController,
  stopController,
  useControllerTestSetup,
  waitForPodCIDRs,
} from './controller-harness.js';
import { describeWithControlPlane } from './harness.js';

const RANGE = '10.190.0.0/21';
const FLAGS = ['--cluster-cidr', RANGE, '--node-cidr-mask-size', '24'];

describeWithControlPlane('the handoff between two terms', () => {
  const setup = useControllerTestSetup({ namespacePrefix: 'fast-start', scopePrefix: 'fast', expectCleanExit: true });

  async function storedHandoff(): Promise<ReturnType<typeof decodeHandoff>> {
    const cm = await setup.clients.core.readNamespacedConfigMap({ name: HANDOFF_NAME, namespace: setup.namespace });
    return decodeHandoff(cm.data?.[HANDOFF_KEY]);
  }

  async function putHandoff(text: string): Promise<void> {
    const body = { metadata: { name: HANDOFF_NAME, namespace: setup.namespace }, data: { [HANDOFF_KEY]: text } };
    try {
      await setup.clients.core.replaceNamespacedConfigMap({ name: HANDOFF_NAME, namespace: setup.namespace, body });
    } catch {
      await setup.clients.core.createNamespacedConfigMap({ namespace: setup.namespace, body });
    }
  }

  it('leaves a handoff that covers every podCIDR, and restarts from it without a conflict', async () => {
    setup.newScope('restart');
    const first = await startController(setup.namespace, FLAGS);
    const before = await Promise.all([createNode(setup.clients, setup.scope, 'a'), createNode(setup.clients, setup.scope, 'b')]);
    const held = await waitForPodCIDRs(setup.clients, setup.scope, before.map(nodeName));
    await stopController(first);
    expect(first.logs.some((l) => l.msg === `wrote the handoff to ${HANDOFF_NAME}`)).toBe(true);

    const handoff = await storedHandoff();
    expect(handoff?.resourceVersion).toMatch(/^\d+$/);
    const range = handoff?.ranges[0];
    expect(range).toMatchObject({ clusterCIDR: RANGE, nodeMask: 24 });
    const taken = new Set<number>();
    for (let k = 0; k < (range?.runs.length ?? 0); k += 2) {
      for (let i = range?.runs[k] ?? 0; i <= (range?.runs[k + 1] ?? -1); i++) taken.add(i);
    }
    for (const [, cidrs] of held) expect(taken.has(Number(cidrs[0]?.split('.')[2]))).toBe(true);

    // Joined while no controller ran; the restart's watch from the handoff shows them first.
    const joined = await Promise.all([createNode(setup.clients, setup.scope, 'c'), createNode(setup.clients, setup.scope, 'd')]);
    const second = await startController(setup.namespace, FLAGS);
    await second.waitForLog((l) => l.msg === 'allocating from the handoff while the node list comes in');
    const late = await createNode(setup.clients, setup.scope, 'e');
    const names = [...before, ...joined, late].map(nodeName);
    const all = await waitForPodCIDRs(setup.clients, setup.scope, names);
    await second.waitForLog((l) => l.msg === 'node list is in; handing over to the term');
    await second.waitForLog((l) => l.msg === 'rebuilt podCIDR allocations from nodes');

    expect(overlappingPairs(all)).toEqual([]);
    expect([...all.values()].every((cidrs) => cidrs.length === 1)).toBe(true);
    for (const name of names) expect(await nodeEvents(setup.clients, name)).toEqual([]);
    // What the first term held, the nodes still hold.
    for (const [name, cidrs] of held) expect(all.get(name)).toEqual(cidrs);
  });

  it.each([
    ['describes other ranges', JSON.stringify({ version: 1, resourceVersion: '1', ranges: [{ clusterCIDR: '10.191.0.0/22', nodeMask: 24, runs: [] }] }), 'the handoff describes other cluster ranges; allocating once the node list is in'],
    ['is damaged', '{"version":1}', `${HANDOFF_NAME} is damaged; allocating once the node list is in`],
  ])('starts by listing when the stored handoff %s', async (_, text, logged) => {
    setup.newScope('passed-over');
    await putHandoff(text);
    const proc = await startController(setup.namespace, FLAGS);
    await proc.waitForLog((l) => l.msg === logged);
    const node = await createNode(setup.clients, setup.scope, 'n');
    await waitForPodCIDRs(setup.clients, setup.scope, [nodeName(node)]);
    expect(proc.logs.some((l) => l.msg === 'allocating from the handoff while the node list comes in')).toBe(false);
  });
});
