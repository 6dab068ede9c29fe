// A handoff refreshed by a running leader, on the real API server with the real CLI: leader A serves a
// burst of new Nodes at 10 patches a second, refreshing its handoff every 300 ms, and is SIGKILLed
// halfway, patches in flight; more Nodes join. B reads the cluster at a big cluster's pace (its list
// answers 10 s late), so it serves those from A's last refresh long before its list is in, while its
// watch replays A's patches since. Every Node must end with a subnet of its own, and B must have
// started from that refresh (docs/decisions/0005).
import { expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import {
  nodeName,
  overlappingPairs,
  pool,
  startController,
  useControllerTestSetup,
  waitForPodCIDRs,
  type ControllerProcess,
  type LogLine,
} from './controller-harness.js';
import { describeWithControlPlane } from './harness.js';
import { createFatNode, names, nodesWithPodCIDRs, sigkill, useBigClusterProxy } from './handoff-cases.js';
import { HANDOFF_KEY, HANDOFF_NAME, HANDOFF_REFRESHED, decodeHandoff } from '../../src/term/handoff.js';
import type * as k8s from '@kubernetes/client-node';

const RANGE = '10.203.0.0/16';
const FLAGS = ['--cluster-cidr', RANGE, '--node-cidr-mask-size', '24'];
/** A serves the burst slowly, so it is half done when killed, and refreshes often, so a refresh comes mid-burst. */
const LEADER_A = ['--kube-api-qps', '10', '--kube-api-burst', '10', '--handoff-interval', '300ms', '--log-level', 'debug'];
const BEFORE = 20;
const BURST = 60;
const AFTER = 20;
const FAST_START = 'allocating from the handoff while the node list comes in';

describeWithControlPlane('a fast start from a handoff refreshed before a SIGKILL', () => {
  const setup = useControllerTestSetup({ namespacePrefix: 'refreshed-handoff', scopePrefix: 'refresh', expectCleanExit: true });
  const slowKubeconfig = useBigClusterProxy(setup, 'refreshed-handoff');
  const fatNode = (base: string): Promise<k8s.V1Node> => createFatNode(setup, base);

  function refreshes(proc: ControllerProcess): LogLine[] {
    return proc.logs.filter((l) => l.msg === HANDOFF_REFRESHED);
  }

  async function storedHandoffVersion(): Promise<string | undefined> {
    const cm = await setup.clients.core.readNamespacedConfigMap({ name: HANDOFF_NAME, namespace: setup.namespace });
    return decodeHandoff(cm.data?.[HANDOFF_KEY])?.resourceVersion;
  }

  it.each([1, 2])('gives no subnet to two Nodes after the leader is killed mid-burst (round %i)', async (round) => {
    setup.newScope(`r${round}`);
    const a = await startController(setup.namespace, [...FLAGS, ...LEADER_A]);
    const before = await pool(names('before', BEFORE), 10, fatNode);
    await waitForPodCIDRs(setup.clients, setup.scope, before.map(nodeName), 60_000);

    const burst = pool(names('burst', BURST), 4, fatNode);
    await eventually(async () => ((await nodesWithPodCIDRs(setup)) >= BEFORE + BURST / 3 ? true : undefined), { timeoutMs: 60_000, intervalMs: 20 });
    // A refresh written from here on holds part of the burst, and A has more of it on the wire.
    const seen = refreshes(a).length;
    await eventually(async () => (refreshes(a).length > seen ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
    await sigkill(a);
    const created = await burst;
    // What B will read; A's log may lack its last line, lost with the process.
    const stored = await storedHandoffVersion();
    const waiting = BEFORE + BURST - (await nodesWithPodCIDRs(setup));
    expect(waiting, 'Nodes without podCIDRs when B starts').toBeGreaterThan(0);
    // Joined after the refresh, so B's watch from it shows them: the fast start serves these (the
    // burst's Nodes were cached at the refresh and wait for B's list).
    const after = await pool(names('after', AFTER), 10, fatNode);

    const b = await startController(setup.namespace, FLAGS, { kubeconfig: slowKubeconfig() });
    const all = await waitForPodCIDRs(setup.clients, setup.scope, [...before, ...created, ...after].map(nodeName), 60_000);
    expect(overlappingPairs(all)).toEqual([]);
    const fast = await b.waitForLog((l) => l.msg === FAST_START);
    expect(fast.resourceVersion, 'B starts from A\'s last refresh').toBe(stored);
    const handedOver = await b.waitForLog((l) => l.msg === 'node list is in; handing over to the term');
    // The fast start did serve Nodes: the proof is not that the list came first.
    expect(handedOver.allocated as number).toBeGreaterThan(0);
    const rebuilt = await b.waitForLog((l) => l.msg === 'rebuilt podCIDR allocations from nodes');
    expect(rebuilt.conflicts).toEqual(expect.objectContaining({ duplicate: 0, overlap: 0 }));
  });
});
