// A handoff that a whole term has overtaken, on the real API server with the real CLI: leader A stops
// gracefully and writes its handoff; leader B gives podCIDRs to a burst of new Nodes and is SIGKILLed
// halfway (no newer handoff); leader C starts from A's handoff while part of the burst still waits.
// B serves the burst in another order than C's replay shows it, so what C would give first from the
// replayed past is what B gave away.
// C reads the cluster at a big cluster's pace (its list answers late, its watch replays B's whole term
// slowly), so it serves Nodes from the handoff long before its list is in. It must not allocate from
// the replayed past: every Node ends with a subnet of its own.
import { expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import {
  nodeName,
  overlappingPairs,
  pool,
  startController,
  stopController,
  useControllerTestSetup,
  waitForPodCIDRs,
} from './controller-harness.js';
import { describeWithControlPlane } from './harness.js';
import { createFatNode, names, nodesWithPodCIDRs, sigkill, useBigClusterProxy } from './handoff-cases.js';
import { HANDOFF_NAME, HANDOFF_WRITTEN } from '../../src/term/handoff.js';
import type * as k8s from '@kubernetes/client-node';

const RANGE = '10.202.0.0/16';
const FLAGS = ['--cluster-cidr', RANGE, '--node-cidr-mask-size', '24'];
/**
 * B patches at most this fast, so the burst is still half done when it is killed: the 40 patches left
 * take 4 s, long past the poll and the kill even on a loaded machine (at 40 qps and a burst of 40 they
 * took 1 s, and a slow poll sometimes saw every Node served before the kill).
 */
const SLOW_PATCHES = ['--kube-api-qps', '10', '--kube-api-burst', '10'];
/** B must leave no handoff of its own: the one C starts from is A's, a whole term old. */
const NO_REFRESH = ['--handoff-interval', '0'];
const BEFORE = 20;
const BURST = 80;

describeWithControlPlane('a fast start from a handoff older than the last term', () => {
  const setup = useControllerTestSetup({ namespacePrefix: 'stale-handoff', scopePrefix: 'stale', expectCleanExit: true });
  const slowKubeconfig = useBigClusterProxy(setup, 'stale-handoff');
  const fatNode = (base: string): Promise<k8s.V1Node> => createFatNode(setup, base);

  async function takeHandoffAway(): Promise<k8s.V1ConfigMap> {
    const cm = await setup.clients.core.readNamespacedConfigMap({ name: HANDOFF_NAME, namespace: setup.namespace });
    await setup.clients.core.deleteNamespacedConfigMap({ name: HANDOFF_NAME, namespace: setup.namespace });
    return cm;
  }

  async function putHandoffBack(cm: k8s.V1ConfigMap): Promise<void> {
    const body = { metadata: { name: HANDOFF_NAME, namespace: setup.namespace }, data: cm.data ?? {} };
    await setup.clients.core.createNamespacedConfigMap({ namespace: setup.namespace, body });
  }

  it.each([1, 2])('gives no subnet to two Nodes (round %i)', async (round) => {
    setup.newScope(`r${round}`);
    const a = await startController(setup.namespace, FLAGS);
    const before = await pool(names('before', BEFORE), 10, fatNode);
    await waitForPodCIDRs(setup.clients, setup.scope, before.map(nodeName));
    await stopController(a);
    expect(a.logs.some((l) => l.msg === HANDOFF_WRITTEN)).toBe(true);

    // The burst joins while no controller runs, the last name first; B lists them and so serves them
    // in name order, C's watch shows them in the order they joined: the two orders differ.
    const burst = await pool(names('burst', BURST).reverse(), 1, fatNode);
    // B starts by listing (as when its handoff cannot be read); A's handoff stays for C.
    const handoff = await takeHandoffAway();
    const b = await startController(setup.namespace, [...FLAGS, ...SLOW_PATCHES, ...NO_REFRESH]);
    await eventually(async () => ((await nodesWithPodCIDRs(setup)) >= BEFORE + BURST / 2 ? true : undefined), { timeoutMs: 60_000, intervalMs: 20 });
    await sigkill(b);
    await putHandoffBack(handoff);
    const waiting = BEFORE + BURST - (await nodesWithPodCIDRs(setup));
    expect(waiting, 'Nodes without podCIDRs when C starts').toBeGreaterThan(0);

    const c = await startController(setup.namespace, FLAGS, { kubeconfig: slowKubeconfig() });
    const all = await waitForPodCIDRs(setup.clients, setup.scope, [...before, ...burst].map(nodeName));
    expect(overlappingPairs(all)).toEqual([]);
    const handedOver = await c.waitForLog((l) => l.msg === 'node list is in; handing over to the term');
    // The fast start did serve Nodes: the proof is not that the list came first.
    expect(handedOver.allocated).toEqual(expect.any(Number));
    expect(handedOver.allocated as number).toBeGreaterThan(0);
    const rebuilt = await c.waitForLog((l) => l.msg === 'rebuilt podCIDR allocations from nodes');
    expect(rebuilt.conflicts).toEqual(expect.objectContaining({ duplicate: 0, overlap: 0 }));
  });
});
