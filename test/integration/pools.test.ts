// Node-group pools on a real API server: the controller runs without --cluster-cidr and serves Nodes
// from ClusterCIDR objects alone, sizes out of one shared range never overlapping, a pool added while a
// Node waits serves it at once, our finalizer keeps a pool until no Node holds addresses in it, and
// status reports its use.

import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { overlaps, parseCidr } from '../../src/cidr/index.js';
import { POOL_FINALIZER } from '../../src/controller/cluster-cidr.js';
import { eventually } from '../support/eventually.js';
import { loadObjects, repoRoot } from '../unit/deploy/manifests.js';
import { CLUSTER_CIDR_RESOURCE, installClusterCidrCrd, removeClusterCidrCrd } from './clustercidr-api.js';
import {
  type ControllerProcess,
  deleteNode,
  metricValue,
  nodeEvents,
  overlappingPairs,
  scopeCIDRs,
  startController,
  stopController,
  useControllerTestSetup,
  waitForPodCIDRs,
} from './controller-harness.js';
import { describeWithControlPlane } from './harness.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const resource = CLUSTER_CIDR_RESOURCE;

interface ClusterCidr {
  metadata: k8s.V1ObjectMeta;
  spec: Record<string, unknown>;
  status?: {
    ipv4?: { capacity: number; allocated: number; free: number };
    ipv6?: { capacity: number; allocated: number; free: number };
    conditions?: k8s.V1Condition[];
  };
}

describeWithControlPlane('ClusterCIDR pools served by the controller', () => {
  const setup = useControllerTestSetup({ namespacePrefix: 'pools', scopePrefix: 'pools', expectCleanExit: true });
  let custom: k8s.CustomObjectsApi;
  const created: string[] = [];

  beforeAll(async () => {
    custom = setup.clients.kc.makeApiClient(k8s.CustomObjectsApi);
    await installClusterCidrCrd(setup.clients.kc);
  });

  afterAll(async () => {
    for (const name of created) await patchFinalizers(name, []).catch(() => undefined);
    await removeClusterCidrCrd(setup.clients.kc);
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

  it('serves a dual-stack pool: an IPv4 and an IPv6 subnet of the same host bits', async () => {
    const scope = setup.newScope('dual');
    const body = scope.node('dual');
    const name = body.metadata?.name ?? '';
    const poolName = scope.name('dual');
    await createPool(poolName, { perNodeHostBits: 8, ipv4: '10.250.0.0/16', ipv6: 'fd00:250::/112', nodeSelector: byName(name) });
    await startController(setup.namespace, []);
    await setup.clients.core.createNode({ body });
    const cidrs = await waitForPodCIDRs(setup.clients, scope, [name]);
    expect(cidrs.get(name)).toEqual(['10.250.0.0/24', 'fd00:250::/120']);
    const status = await eventually(async () => (await readPool(poolName))?.status, { timeoutMs: 30_000 });
    expect(status.ipv4?.capacity).toBe(256);
    expect(status.ipv6?.capacity).toBe(256);
    expect(status.ipv6?.allocated).toBe(1);
  });

  it('reports a ClusterCIDR it cannot serve with an Event and a metric, and serves the others', async () => {
    const scope = setup.newScope('invalid');
    const body = scope.node('served');
    const name = body.metadata?.name ?? '';
    // Valid to the API server, but 2^88 node subnets: more than one range can hold.
    const bad = scope.name('huge');
    await createPool(bad, { perNodeHostBits: 8, ipv6: 'fd00:251::/32' });
    await createPool(scope.name('fine'), { perNodeHostBits: 8, ipv4: '10.251.0.0/16', nodeSelector: byName(name) });
    const proc = await startController(setup.namespace, []);
    await setup.clients.core.createNode({ body });
    expect((await waitForPodCIDRs(setup.clients, scope, [name])).get(name)).toEqual(['10.251.0.0/24']);
    const events = await eventually(
      async () => {
        const found = await nodeEvents(setup.clients, bad, 'ClusterCIDRInvalid');
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 30_000, message: `no ClusterCIDRInvalid Event for ${bad}; controller log:\n${proc.tail(40)}` },
    );
    expect(events[0]?.involvedObject.kind).toBe('ClusterCIDR');
    expect(events[0]?.message).toMatch(/spec\.ipv6: fd00:251::\/32 with perNodeHostBits 8: the node CIDR size is too big/);
    expect(metricValue(await proc.metrics(), 'podcidr_allocator_clustercidrs_invalid')).toBe(1);
  });

  it('restarts after SIGKILL with pools, and takes over ranges once appended by the ConfigMap', async () => {
    const scope = setup.newScope('restart');
    const flags = ['--cluster-cidr', '10.249.0.0/24', '--node-cidr-mask-size', '24'];
    const nodes = Array.from({ length: 6 }, () => scope.node('n'));
    const names = nodes.map((n) => n.metadata?.name ?? '');
    const [small1 = '', small2 = ''] = [names[3], names[5]];
    await setup.clients.core.createNamespacedConfigMap({
      namespace: setup.namespace,
      body: { metadata: { name: 'podcidr-allocator-config' }, data: { clusterCIDRs: '10.249.0.0/24,10.249.16.0/20' } },
    });
    const first = await startController(setup.namespace, flags);
    for (const body of nodes.slice(0, 3)) await setup.clients.core.createNode({ body });
    const appended = await waitForPodCIDRs(setup.clients, scope, names.slice(0, 3));
    // The flags' one /24 to one node, the appended range to the others.
    const inFlags = [...appended.values()].filter((c) => c[0] === '10.249.0.0/24');
    expect(inFlags).toHaveLength(1);
    // The migration: the appended range as a pool of the same size for every node, then the ConfigMap goes.
    await createPool(scope.name('appended'), { perNodeHostBits: 8, ipv4: '10.249.16.0/20' });
    const small = scope.name('small');
    await createPool(small, { perNodeHostBits: 6, ipv4: '10.249.16.0/20', nodeSelector: byName(small1, small2) });
    // A status is written only for a pool the running term serves.
    await eventually(async () => (await readPool(small))?.status, { timeoutMs: 30_000 });
    await setup.clients.core.createNode({ body: nodes[3] ?? {} });
    const before = await waitForPodCIDRs(setup.clients, scope, names.slice(0, 4));
    expect(before.get(small1)?.[0]).toMatch(/\/26$/);
    expect(overlappingPairs(before)).toEqual([]);
    await sigkill(first);
    await setup.clients.core.deleteNamespacedConfigMap({ name: 'podcidr-allocator-config', namespace: setup.namespace });

    await startController(setup.namespace, flags);
    for (const body of nodes.slice(4)) await setup.clients.core.createNode({ body });
    const after = await waitForPodCIDRs(setup.clients, scope, names);
    for (const name of names.slice(0, 4)) expect(after.get(name), name).toEqual(before.get(name));
    expect(after.get(small2)?.[0]).toMatch(/^10\.249\.(1[6-9]|2\d|3[01])\.\d+\/26$/);
    expect(after.get(names[4] ?? '')?.[0]).toMatch(/^10\.249\.(1[6-9]|2\d|3[01])\.0\/24$/);
    expect(overlappingPairs(await scopeCIDRs(setup.clients, scope))).toEqual([]);
    for (const name of names) expect(await nodeEvents(setup.clients, name, 'PodCIDROutOfRange'), name).toEqual([]);
  });

  async function sigkill(proc: ControllerProcess): Promise<void> {
    if (proc.pid !== undefined) process.kill(proc.pid, 'SIGKILL');
    await eventually(async () => (proc.exitCode === undefined ? undefined : true), { timeoutMs: 10_000, intervalMs: 20 });
    // Already dead: this only takes it off the harness's list.
    await stopController(proc).catch(() => undefined);
  }
});
