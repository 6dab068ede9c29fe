// Pins, against the real kube-apiserver, the API behaviour the controller is built on.
// If an upgrade changes one of these facts, this file fails before the controller misbehaves.
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { TestScope, describeWithControlPlane, expectApiError, kubeClients, type KubeClients } from './harness.js';

const smp = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);
const CHANGE_FORBIDDEN = 'node updates may not change podCIDR except from "" to valid';

describeWithControlPlane('API facts the controller relies on', () => {
  let c: KubeClients;
  const scope = new TestScope('api-facts');

  beforeAll(() => {
    c = kubeClients();
  });
  afterAll(async () => {
    await scope.cleanup(c);
  });

  async function createNode(): Promise<string> {
    const node = await c.core.createNode({ body: scope.node() });
    const name = node.metadata?.name;
    if (name === undefined) throw new Error('created node has no name');
    return name;
  }

  function patchCidrs(name: string, cidrs: string[]): Promise<k8s.V1Node> {
    return c.core.patchNode({ name, body: { spec: { podCIDR: cidrs[0], podCIDRs: cidrs } } }, smp);
  }

  describeWithControlPlane('podCIDR patches', () => {
    it('accepts one strategic-merge patch of podCIDR and podCIDRs on a node that has none', async () => {
      const name = await createNode();
      const before = await c.core.readNode({ name });
      expect(before.spec?.podCIDR).toBeUndefined();

      const after = await patchCidrs(name, ['10.244.3.0/24', 'fd00:10:244:3::/64']);

      expect(after.spec?.podCIDR).toBe('10.244.3.0/24');
      expect(after.spec?.podCIDRs).toEqual(['10.244.3.0/24', 'fd00:10:244:3::/64']);
    });

    it('accepts the same patch again, so a retried patch is harmless', async () => {
      const name = await createNode();
      await patchCidrs(name, ['10.244.4.0/24']);

      const again = await patchCidrs(name, ['10.244.4.0/24']);

      expect(again.spec?.podCIDRs).toEqual(['10.244.4.0/24']);
    });

    it('rejects a later patch that changes the podCIDR with 422 Invalid', async () => {
      const name = await createNode();
      await patchCidrs(name, ['10.244.5.0/24']);

      const err = await expectApiError(() => patchCidrs(name, ['10.244.6.0/24']));

      expect(err.code).toBe(422);
      expect(err.reason).toBe('Invalid');
      expect(err.message).toContain(CHANGE_FORBIDDEN);
      // podCIDRs has patchStrategy=merge: the patch appends to the old list instead of replacing it.
      expect(err.message).toContain('["10.244.6.0/24","10.244.5.0/24"]');
      expect((await c.core.readNode({ name })).spec?.podCIDRs).toEqual(['10.244.5.0/24']);
    });

    it('rejects podCIDRs holding two CIDRs of the same family', async () => {
      const name = await createNode();

      const err = await expectApiError(() => patchCidrs(name, ['10.244.7.0/24', '10.244.8.0/24']));

      expect(err.code).toBe(422);
      expect(err.reason).toBe('Invalid');
      expect(err.message).toContain('may specify no more than one CIDR for each IP family');
      expect((await c.core.readNode({ name })).spec?.podCIDRs).toBeUndefined();
    });
  });

  describeWithControlPlane('Lease writes', () => {
    function lease(name: string, time: Date): k8s.V1Lease {
      return {
        metadata: { name, namespace: 'kube-system', labels: { ...scope.labels } },
        spec: { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: time, renewTime: time },
      };
    }

    it('rejects a replace carrying a stale resourceVersion with 409 Conflict', async () => {
      const name = scope.name('lease');
      const created = await c.coordination.createNamespacedLease({
        namespace: 'kube-system',
        body: lease(name, new k8s.V1MicroTime()),
      });
      const stale = created.metadata?.resourceVersion;
      const renewed = lease(name, new k8s.V1MicroTime());
      renewed.metadata = { ...renewed.metadata, resourceVersion: stale };
      await c.coordination.replaceNamespacedLease({ name, namespace: 'kube-system', body: renewed });

      const err = await expectApiError(() =>
        c.coordination.replaceNamespacedLease({ name, namespace: 'kube-system', body: renewed }),
      );

      expect(err.code).toBe(409);
      expect(err.reason).toBe('Conflict');
    });

    it('stores V1MicroTime values with six fractional digits', async () => {
      const name = scope.name('lease');
      await c.coordination.createNamespacedLease({ namespace: 'kube-system', body: lease(name, new k8s.V1MicroTime()) });

      const read = await c.coordination.readNamespacedLease({ name, namespace: 'kube-system' });

      // The client hands MicroTime back as the wire string, not a Date.
      expect(String(read.spec?.renewTime)).toMatch(/\.\d{6}Z$/);
    });

    it('rejects a Lease whose times are plain Dates with three fractional digits', async () => {
      const name = scope.name('lease');

      const err = await expectApiError(() =>
        c.coordination.createNamespacedLease({ namespace: 'kube-system', body: lease(name, new Date()) }),
      );

      expect(err.code).toBe(400);
      expect(err.reason).toBe('BadRequest');
      expect(err.message).toMatch(/cannot parse "\.\d{3}Z" as "\.000000"/);
    });
  });

  describeWithControlPlane('node watch', () => {
    it('sees ADDED, MODIFIED and DELETED for a node', async () => {
      const seen: string[] = [];
      const watchScope = new TestScope('api-facts-watch');
      const controller = await new k8s.Watch(c.kc).watch(
        '/api/v1/nodes',
        { labelSelector: watchScope.selector },
        (phase) => seen.push(phase),
        () => undefined,
      );
      try {
        const node = await c.core.createNode({ body: watchScope.node() });
        const name = node.metadata?.name ?? '';
        await patchCidrs(name, ['10.244.9.0/24']);
        await c.core.deleteNode({ name });

        await eventually(async () => (seen.includes('DELETED') ? true : undefined), { timeoutMs: 20_000 });
        expect(seen).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
      } finally {
        controller.abort();
        await watchScope.cleanup(c);
      }
    });
  });
});
