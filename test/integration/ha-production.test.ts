// Takeover after SIGKILL with the production leader election defaults (15s/10s/2s): a standby leads
// and allocates a newly created node within lease duration plus 2 s on average, twice in a row.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { sleep, systemClock } from '../../src/time.js';
import { TestScope, controlPlane, describeWithControlPlane, kubeClients, type KubeClients } from './harness.js';
import { HaNodes, PRODUCTION, ReplicaSet, expectDisjointInRange, leaseHolder } from './replicas.js';

const NAMESPACE = 'default';
const CLUSTER_CIDR = '10.201.0.0/16';
const LEASE_MS = 15_000;
const RETRY_MS = 2_000;

describeWithControlPlane('replicas with the production leader election defaults', () => {
  let c: KubeClients;
  let nodes: HaNodes;
  let set: ReplicaSet | undefined;
  const scope = new TestScope('ha-production');
  const lease = { namespace: NAMESPACE, name: scope.name('lease') };

  beforeAll(() => {
    c = kubeClients();
    nodes = new HaNodes(c, scope);
  });
  afterAll(async () => {
    await set?.stopAll();
    await nodes.deleteAll();
    await c.coordination.deleteNamespacedLease(lease).catch(() => undefined);
  });

  it('allocates a new node about 15 s after each SIGKILL of the leader, 17 s at most on average', { timeout: 180_000 }, async () => {
    const cp = controlPlane();
    if (!cp.available) throw new Error(cp.reason);
    set = new ReplicaSet(scope.name('r'), {
      kubeconfig: cp.kubeconfigPath,
      clusterCidr: CLUSTER_CIDR,
      nodeCidrMaskSize: 24,
      lease,
      timings: PRODUCTION,
    });
    await set.start(3);
    const figures: number[] = [];
    for (let round = 1; round <= 2; round += 1) {
      const old = await set.leader(LEASE_MS * 2);
      // A few renewals first, so the standbys have seen the lease move.
      await sleep(systemClock, 5_000);
      const killedAt = Date.now();
      old.signal('SIGKILL');
      const node = await nodes.create('after-kill');
      const allocatedAt = await nodes.waitForPodCIDR(node, LEASE_MS * 3);
      const holder = await leaseHolder(c, lease);
      figures.push(allocatedAt - killedAt);
      console.log(`SIGKILL takeover with 15s/10s/2s, round ${round}: new node allocated ${allocatedAt - killedAt} ms after the kill`);
      expect(holder).not.toBe(old.identity);
      expect((await old.exited).signal).toBe('SIGKILL');
    }
    expectDisjointInRange(await nodes.list(), CLUSTER_CIDR);
    // A standby learns of the last renewal only at its next read (up to 1.2 retry periods late) and
    // then waits a full lease duration by its own clock: that lag is the design's only overshoot.
    for (const ms of figures) expect(ms).toBeLessThanOrEqual(LEASE_MS + 1.2 * RETRY_MS + 1_000);
    expect(figures.reduce((a, b) => a + b, 0) / figures.length).toBeLessThanOrEqual(LEASE_MS + 2_000);
  });
});
