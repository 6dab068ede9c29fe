// Node-group pools on a real API server: the controller runs without --cluster-cidr and serves Nodes
// from ClusterCIDR objects alone, sizes out of one shared range never overlapping, a pool added while a
// Node waits serves it at once, our finalizer keeps a pool until no Node holds addresses in it, and
// status reports its use.

import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { overlaps, parseCidr } from '../../src/cidr/index.js';
import { POOL_FINALIZER } from '../../src/controller/cluster-cidr.js';
import { eventually } from '../support/eventually.js';
import { findObject, loadObjects, repoRoot } from '../unit/deploy/manifests.js';
import { deleteNode, nodeEvents, startController, useControllerTestSetup, waitForPodCIDRs } from './controller-harness.js';
import { controlPlane, describeWithControlPlane } from './harness.js';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const crdName = 'clustercidrs.networking.x-k8s.io';
const resource = { group: 'networking.x-k8s.io', version: 'v1', plural: 'clustercidrs' } as const;

interface ClusterCidr {
  metadata: k8s.V1ObjectMeta;
  spec: Record<string, unknown>;
  status?: { ipv4?: { capacity: number; allocated: number; free: number }; conditions?: k8s.V1Condition[] };
}

describeWithControlPlane('ClusterCIDR pools served by the controller', () => {
  const setup = useControllerTestSetup({ namespacePrefix: 'pools', scopePrefix: 'pools', expectCleanExit: true });
  let custom: k8s.CustomObjectsApi;
  let apiext: k8s.ApiextensionsV1Api;
  const created: string[] = [];

  beforeAll(async () => {
    const cp = controlPlane();
    if (!cp.available) throw new Error(cp.reason);
    custom = setup.clients.kc.makeApiClient(k8s.CustomObjectsApi);
    apiext = setup.clients.kc.makeApiClient(k8s.ApiextensionsV1Api);
    const overlay = join(repoRoot, 'test/fixtures/kustomize/clustercidr');
    const { stdout } = await run(join(cp.binDir, 'kubectl'), ['--kubeconfig', cp.kubeconfigPath, 'kustomize', overlay]);
    await apiext.createCustomResourceDefinition({ body: findObject(loadObjects(stdout), 'CustomResourceDefinition', crdName) });
    await eventually(async () => (await custom.listClusterCustomObject({ ...resource })) as unknown, { timeoutMs: 30_000 });
  });

  afterAll(async () => {
    for (const name of created) await patchFinalizers(name, []).catch(() => undefined);
    await apiext.deleteCustomResourceDefinition({ name: crdName });
    await eventually(
      async () => {
        try {
          await apiext.readCustomResourceDefinition({ name: crdName });
          return undefined;
        } catch {
          return true;
        }
      },
      { timeoutMs: 60_000 },
    );
  });

  async function createPool(name: string, spec: Record<string, unknown>): Promise<void> {
    created.push(name);
    const body = { apiVersion: 'networking.x-k8s.io/v1', kind: 'ClusterCIDR', metadata: { name }, spec };
    await custom.createClusterCustomObject({ ...resource, body });
  }

  async function readPool(name: string): Promise<ClusterCidr | undefined> {
    try {
      return (await custom.getClusterCustomObject({ ...resource, name })) as ClusterCidr;
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  async function patchFinalizers(name: string, finalizers: string[]): Promise<void> {
    const body = { metadata: { finalizers } };
    await custom.patchClusterCustomObject({ ...resource, name, body }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  }

  /** The nodes by metadata.name, a term each: Kubernetes allows one value per field requirement. */
  const byName = (...names: string[]) => ({
    nodeSelectorTerms: names.map((name) => ({ matchFields: [{ key: 'metadata.name', operator: 'In', values: [name] }] })),
  });

  it('serves each node its pool size out of one shared range, none overlapping, and reports status', async () => {
    const scope = setup.newScope('sizes');
    const wide = scope.node('wide');
    const narrow = [scope.node('narrow'), scope.node('narrow')];
    const names = [wide, ...narrow].map((n) => n.metadata?.name ?? '');
    await createPool(scope.name('wide'), { perNodeHostBits: 8, ipv4: '10.252.0.0/16', nodeSelector: byName(names[0] ?? '') });
    const everyNode = scope.name('narrow');
    // Fewer requirements than wide's for the first node: it goes to wide, the other two here.
    await createPool(everyNode, { perNodeHostBits: 6, ipv4: '10.252.0.0/16', nodeSelector: byName(...names) });
    await startController(setup.namespace, []);
    for (const body of [wide, ...narrow]) await setup.clients.core.createNode({ body });
    const cidrs = await waitForPodCIDRs(setup.clients, scope, names);
    const all = names.map((n) => cidrs.get(n)?.[0] ?? '');
    expect(all[0]).toMatch(/^10\.252\.\d+\.0\/24$/);
    for (const cidr of all.slice(1)) expect(cidr).toMatch(/^10\.252\.\d+\.\d+\/26$/);
    for (let i = 0; i < all.length; i++) {
      for (let j = i + 1; j < all.length; j++) {
        expect(overlaps(parseCidr(all[i] ?? ''), parseCidr(all[j] ?? '')), `${all[i]} and ${all[j]}`).toBe(false);
      }
    }
    const status = await eventually(async () => (await readPool(everyNode))?.status?.ipv4, { timeoutMs: 30_000 });
    expect(status.capacity).toBe(1024);
    expect(status.allocated).toBeGreaterThanOrEqual(2);
    expect((await readPool(everyNode))?.metadata.finalizers).toContain(POOL_FINALIZER);
  });

  it("allocates node-ipam-controller's different-node-groups example by labels, each group its size", async () => {
    const scope = setup.newScope('groups');
    const file = join(repoRoot, 'test/integration/fixtures/clustercidr/peer-different-node-groups.yaml');
    // The example's label prefix has an underscore, which a Node's labels cannot; the same keys with a hyphen.
    const text = readFileSync(file, 'utf8').replaceAll('platform.node_group/', 'platform.node-group/');
    const objects = loadObjects(text) as unknown as ClusterCidr[];
    const expected = new Map<string, number>();
    for (const object of objects) {
      const name = object.metadata.name ?? '';
      await createPool(name, object.spec);
      const key = JSON.stringify(object.spec).match(/"key":"([^"]+)"/)?.[1] ?? '';
      const body = scope.node('group');
      body.metadata = { ...body.metadata, labels: { ...body.metadata?.labels, [key]: '' } };
      expected.set(body.metadata.name ?? '', 32 - Number(object.spec['perNodeHostBits']));
      await setup.clients.core.createNode({ body });
    }
    await startController(setup.namespace, []);
    const cidrs = await waitForPodCIDRs(setup.clients, scope, [...expected.keys()]);
    const all = [...expected].map(([node, mask]) => {
      const cidr = cidrs.get(node)?.[0] ?? '';
      expect(cidr, node).toMatch(new RegExp(`^10\\.244\\.\\d+\\.\\d+/${mask}$`));
      return parseCidr(cidr);
    });
    for (let i = 0; i < all.length; i++) {
      for (let j = i + 1; j < all.length; j++) {
        const [a, b] = [all[i], all[j]];
        if (a && b) expect(overlaps(a, b), `${String(a)} and ${String(b)}`).toBe(false);
      }
    }
  });

  it('tells a node no pool matches, and serves it as soon as a pool that matches is added', async () => {
    const scope = setup.newScope('added');
    const body = scope.node('late');
    const name = body.metadata?.name ?? '';
    await createPool(scope.name('other'), { perNodeHostBits: 8, ipv4: '10.253.0.0/16', nodeSelector: byName('no-such-node') });
    const proc = await startController(setup.namespace, []);
    await setup.clients.core.createNode({ body });
    const events = await eventually(
      async () => {
        const found = await nodeEvents(setup.clients, name, 'CIDRNotAvailable');
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 30_000, message: `no CIDRNotAvailable Event for ${name}; controller log:\n${proc.tail(40)}` },
    );
    expect(events[0]?.message).toMatch(/no ClusterCIDR matches/);
    await createPool(scope.name('match'), { perNodeHostBits: 8, ipv4: '10.254.0.0/16', nodeSelector: byName(name) });
    const cidrs = await waitForPodCIDRs(setup.clients, scope, [name], 30_000);
    expect(cidrs.get(name)).toEqual(['10.254.0.0/24']);
  });

  it('keeps a deleted pool until no node holds addresses in it', async () => {
    const scope = setup.newScope('finalizer');
    const body = scope.node('holder');
    const name = body.metadata?.name ?? '';
    const poolName = scope.name('kept');
    await createPool(poolName, { perNodeHostBits: 8, ipv4: '10.255.0.0/16', nodeSelector: byName(name) });
    await startController(setup.namespace, []);
    await setup.clients.core.createNode({ body });
    await waitForPodCIDRs(setup.clients, scope, [name]);
    await eventually(async () => ((await readPool(poolName))?.metadata.finalizers?.includes(POOL_FINALIZER) ? true : undefined), {
      timeoutMs: 30_000,
    });
    await custom.deleteClusterCustomObject({ ...resource, name: poolName });
    // Still there a few ticks later: the node holds 10.255.0.0/24.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect((await readPool(poolName))?.metadata.deletionTimestamp).toBeDefined();
    await deleteNode(setup.clients, name);
    await eventually(async () => ((await readPool(poolName)) === undefined ? true : undefined), {
      timeoutMs: 30_000,
      message: `${poolName} still there 30 s after its last node went`,
    });
  });
});
