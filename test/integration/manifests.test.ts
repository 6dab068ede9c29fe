// The manifests against a real kube-apiserver: they render with kubectl's kustomize, the server accepts them,
// and the RBAC they grant lets the controller's ServiceAccount do its work and nothing that could hurt.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runFlags } from '../../src/cli/flags.js';
import {
  argumentProblems,
  bindingProblems,
  clusterRoleProblems,
  containerProblems,
  controllerContainer,
  findObject,
  loadObjects,
  repoRoot,
  roleProblems,
  schedulingProblems,
  securityProblems,
} from '../unit/deploy/manifests.js';
import { TestScope, controlPlane, describeWithControlPlane, expectApiError, kubeClients, type KubeClients } from './harness.js';
import { serviceAccountKubeconfig, type ServiceAccountKubeconfig } from './service-account.js';

const run = promisify(execFile);
const exampleOverlay = join(repoRoot, 'manifests/overlays/example');
const allComponents = join(repoRoot, 'test/fixtures/kustomize/all-components');
const crds = join(repoRoot, 'test/fixtures/crds');
const serviceAccount = 'system:serviceaccount:kube-system:podcidr-allocator';
const rbacKinds = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

/** Runs the control plane's own kubectl against it, feeding `input` on stdin; rejects on a non-zero exit. */
async function kubectl(args: string[], { input, kubeconfig }: { input?: string; kubeconfig?: string } = {}): Promise<string> {
  const cp = controlPlane();
  if (!cp.available) throw new Error(`no control plane: ${cp.reason}`);
  const child = run(join(cp.binDir, 'kubectl'), ['--kubeconfig', kubeconfig ?? cp.kubeconfigPath, ...args], {
    maxBuffer: 16 * 1024 * 1024,
  });
  if (input !== undefined) child.child.stdin?.end(input);
  const { stdout } = await child;
  return stdout;
}

describeWithControlPlane('the kustomize manifests on a real API server', () => {
  let c: KubeClients;
  let rendered: k8s.KubernetesObject[];
  let rbacYaml: string;
  const scope = new TestScope('manifests');

  beforeAll(async () => {
    c = kubeClients();
    await kubectl(['apply', '--server-side', '-f', crds]);
    await kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', crds]);
    rendered = loadObjects(await kubectl(['kustomize', exampleOverlay]));
    rbacYaml = rendered
      .filter((o) => rbacKinds.has(o.kind ?? ''))
      .map((o) => k8s.dumpYaml(o))
      .join('---\n');
  });

  afterAll(async () => {
    if (rbacYaml !== undefined) await kubectl(['delete', '--ignore-not-found', '--wait=false', '-f', '-'], { input: rbacYaml });
    await kubectl(['delete', '--ignore-not-found', '--wait=false', '-f', crds]);
    await scope.cleanup(c, ['default']);
  });

  it('renders the example overlay into kube-system with the Quick start ranges and a pinned image', () => {
    const deployment = findObject<k8s.V1Deployment>(rendered, 'Deployment', 'podcidr-allocator');
    const namespaced = rendered.filter((o) => !['ClusterRole', 'ClusterRoleBinding'].includes(o.kind ?? ''));
    expect(namespaced.map((o) => `${o.kind}/${o.metadata?.namespace}`)).toEqual(
      namespaced.map((o) => `${o.kind}/kube-system`),
    );
    expect(controllerContainer(deployment).args).toEqual(
      expect.arrayContaining(['--cluster-cidr=10.233.64.0/18', '--node-cidr-mask-size=24', '--service-cluster-ip-range=10.233.0.0/18']),
    );
    expect(controllerContainer(deployment).image).toMatch(/^registry\.example\.com\/podcidr-allocator:\d+\.\d+\.\d+$/);
    expect(rendered.map((o) => o.kind).sort()).toEqual([
      'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'PodDisruptionBudget', 'PrometheusRule',
      'Role', 'RoleBinding', 'Service', 'ServiceAccount', 'ServiceMonitor',
    ]);
  });

  it('keeps every static check true after the overlay and components are applied', () => {
    const deployment = findObject<k8s.V1Deployment>(rendered, 'Deployment', 'podcidr-allocator');
    expect([
      ...schedulingProblems(deployment),
      ...securityProblems(deployment),
      ...containerProblems(deployment),
      ...argumentProblems(controllerContainer(deployment).args ?? [], new Set(Object.keys(runFlags))),
      ...clusterRoleProblems(findObject(rendered, 'ClusterRole', 'podcidr-allocator')),
      ...roleProblems(findObject(rendered, 'Role', 'podcidr-allocator')),
      ...bindingProblems(findObject(rendered, 'ClusterRoleBinding', 'podcidr-allocator'), 'ClusterRole'),
      ...bindingProblems(findObject(rendered, 'RoleBinding', 'podcidr-allocator'), 'Role'),
    ]).toEqual([]);
  });

  it('is accepted by the API server in a server-side dry run of kubectl apply -k', async () => {
    const out = await kubectl(['apply', '--dry-run=server', '-k', exampleOverlay, '-o', 'json']);
    const list = JSON.parse(out) as { items: k8s.KubernetesObject[] };
    expect(list.items.map((o) => `${o.kind}/${o.metadata?.name}`).sort()).toEqual(
      rendered.map((o) => `${o.kind}/${o.metadata?.name}`).sort(),
    );
  });

  it('accepts the example overlay with every optional component, too', async () => {
    const out = await kubectl(['apply', '--dry-run=server', '-k', allComponents, '-o', 'json']);
    const list = JSON.parse(out) as { items: k8s.KubernetesObject[] };
    const deployment = findObject<k8s.V1Deployment>(list.items, 'Deployment', 'podcidr-allocator');
    const env = controllerContainer(deployment).env ?? [];
    expect(env.find((e) => e.name === 'KUBERNETES_SERVICE_HOST')?.valueFrom?.fieldRef?.fieldPath).toBe('status.hostIP');
  });

  it('rejects a monitoring rule with a malformed duration, so the dry run is not a rubber stamp', async () => {
    const rule = findObject(rendered, 'PrometheusRule', 'podcidr-allocator');
    const broken = JSON.parse(JSON.stringify(rule).replace('"for":"10m"', '"for":"ten minutes"')) as k8s.KubernetesObject;
    await expect(kubectl(['apply', '--dry-run=server', '-f', '-'], { input: JSON.stringify(broken) })).rejects.toThrow(/for/);
  });

  describeWithControlPlane('the RBAC, applied for real', () => {
    let sa: ServiceAccountKubeconfig;

    beforeAll(async () => {
      await kubectl(['apply', '-f', '-'], { input: rbacYaml });
      sa = await serviceAccountKubeconfig(c, { namespace: 'kube-system', name: 'podcidr-allocator' });
    });

    afterAll(async () => {
      await sa?.remove();
    });

    async function allowed(attrs: k8s.V1ResourceAttributes): Promise<boolean> {
      const authz = c.kc.makeApiClient(k8s.AuthorizationV1Api);
      const review = await authz.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: serviceAccount,
            groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
            resourceAttributes: attrs,
          },
        },
      });
      return review.status?.allowed === true;
    }

    const may: [string, k8s.V1ResourceAttributes][] = [
      ['list nodes', { verb: 'list', resource: 'nodes' }],
      ['watch nodes', { verb: 'watch', resource: 'nodes' }],
      ['patch nodes', { verb: 'patch', resource: 'nodes', name: 'worker-1' }],
      ['create events.k8s.io events in default', { verb: 'create', group: 'events.k8s.io', resource: 'events', namespace: 'default' }],
      ['patch events.k8s.io events in default', { verb: 'patch', group: 'events.k8s.io', resource: 'events', namespace: 'default' }],
      ['create leases in kube-system', { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace: 'kube-system' }],
      ['update lease podcidr-allocator', { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: 'kube-system', name: 'podcidr-allocator' }],
      ['watch configmap podcidr-allocator-config', { verb: 'watch', resource: 'configmaps', namespace: 'kube-system', name: 'podcidr-allocator-config' }],
      ['patch configmap podcidr-allocator-state', { verb: 'patch', resource: 'configmaps', namespace: 'kube-system', name: 'podcidr-allocator-state' }],
      ['update configmap podcidr-allocator-handoff', { verb: 'update', resource: 'configmaps', namespace: 'kube-system', name: 'podcidr-allocator-handoff' }],
    ];
    const mayNot: [string, k8s.V1ResourceAttributes][] = [
      ['get secrets', { verb: 'get', resource: 'secrets', namespace: 'kube-system', name: 'any' }],
      ['list secrets', { verb: 'list', resource: 'secrets', namespace: 'kube-system' }],
      ['delete nodes', { verb: 'delete', resource: 'nodes', name: 'worker-1' }],
      ['update nodes', { verb: 'update', resource: 'nodes', name: 'worker-1' }],
      ['patch nodes/status', { verb: 'patch', resource: 'nodes', subresource: 'status', name: 'worker-1' }],
      ['update lease kube-controller-manager', { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: 'kube-system', name: 'kube-controller-manager' }],
      ['update lease podcidr-allocator in default', { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: 'default', name: 'podcidr-allocator' }],
      ['delete lease podcidr-allocator', { verb: 'delete', group: 'coordination.k8s.io', resource: 'leases', namespace: 'kube-system', name: 'podcidr-allocator' }],
      ['list every configmap in kube-system', { verb: 'list', resource: 'configmaps', namespace: 'kube-system' }],
      ['get configmap kube-proxy', { verb: 'get', resource: 'configmaps', namespace: 'kube-system', name: 'kube-proxy' }],
      ['update configmap podcidr-allocator-config', { verb: 'update', resource: 'configmaps', namespace: 'kube-system', name: 'podcidr-allocator-config' }],
      ['create pods', { verb: 'create', resource: 'pods', namespace: 'kube-system' }],
    ];

    it.each(may)('lets the ServiceAccount %s', async (_what, attrs) => {
      expect(await allowed(attrs)).toBe(true);
    });

    it.each(mayNot)('does not let the ServiceAccount %s', async (_what, attrs) => {
      expect(await allowed(attrs)).toBe(false);
    });

    it('gives each pod its metrics port as a host port, which keeps two replicas off one node', async () => {
      // Deployments keep the template as written; the server fills in hostPort when the pod is created.
      const template = findObject<k8s.V1Deployment>(rendered, 'Deployment', 'podcidr-allocator').spec?.template;
      const pod = await c.core.createNamespacedPod({
        namespace: 'kube-system',
        dryRun: 'All',
        body: { apiVersion: 'v1', kind: 'Pod', metadata: { ...template?.metadata, name: scope.name('pod') }, spec: template?.spec },
      });
      expect(pod.spec?.containers[0]?.ports).toEqual([expect.objectContaining({ containerPort: 10262, hostPort: 10262 })]);
      expect(pod.spec?.priority).toBe(2000000000);
    });

    it('answers kubectl auth can-i the same way for the impersonated ServiceAccount', async () => {
      const canI = (...args: string[]): Promise<string> =>
        kubectl(['auth', 'can-i', '--as', serviceAccount, ...args]).then(
          (out) => out.trim(),
          (err: unknown) => String((err as { stdout?: string }).stdout ?? err).trim(),
        );
      expect(await canI('patch', 'nodes')).toBe('yes');
      expect(await canI('create', 'events.events.k8s.io', '-n', 'default')).toBe('yes');
      expect(await canI('update', 'leases/podcidr-allocator', '-n', 'kube-system')).toBe('yes');
      expect(await canI('get', 'secrets', '-n', 'kube-system')).toBe('no');
      expect(await canI('delete', 'nodes')).toBe('no');
      expect(await canI('update', 'leases/kube-controller-manager', '-n', 'kube-system')).toBe('no');
      expect(await canI('patch', 'nodes', '--subresource=status')).toBe('no');
    });

    it('gives a TokenRequest kubeconfig that authenticates as the ServiceAccount', async () => {
      const who = await kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], { kubeconfig: sa.path });
      expect(who).toBe(serviceAccount);
      expect(sa.username).toBe(serviceAccount);
    });

    it('lets the ServiceAccount patch a node podCIDR but not its status', async () => {
      const node = await c.core.createNode({ body: scope.node() });
      const name = node.metadata?.name ?? '';
      const core = sa.kc.makeApiClient(k8s.CoreV1Api);
      const smp = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);

      const patched = await core.patchNode({ name, body: { spec: { podCIDR: '10.233.70.0/24', podCIDRs: ['10.233.70.0/24'] } } }, smp);
      expect(patched.spec?.podCIDRs).toEqual(['10.233.70.0/24']);

      const status = await expectApiError(() => core.patchNodeStatus({ name, body: { status: { phase: 'Running' } } }, smp));
      expect(status.code).toBe(403);
      expect((await expectApiError(() => core.deleteNode({ name }))).code).toBe(403);
    });

    it('lets the ServiceAccount list its config map only through a metadata.name field selector', async () => {
      const core = sa.kc.makeApiClient(k8s.CoreV1Api);
      const byName = await core.listNamespacedConfigMap({
        namespace: 'kube-system',
        fieldSelector: 'metadata.name=podcidr-allocator-config',
      });
      expect(byName.items).toEqual([]);
      const all = await expectApiError(() => core.listNamespacedConfigMap({ namespace: 'kube-system' }));
      expect(all.code).toBe(403);
    });

    it('lets the ServiceAccount create an event in default through events.k8s.io', async () => {
      const events = sa.kc.makeApiClient(k8s.EventsV1Api);
      const created = await events.createNamespacedEvent({
        namespace: 'default',
        body: {
          metadata: { generateName: `${scope.id}-`, labels: { ...scope.labels } },
          eventTime: new k8s.V1MicroTime(),
          reportingController: 'podcidr-allocator',
          reportingInstance: 'manifests-test',
          action: 'Allocate',
          reason: 'CIDRAssignmentTest',
          type: 'Normal',
          regarding: { kind: 'Node', name: 'manifests-test', apiVersion: 'v1' },
        },
      });
      expect(created.metadata?.namespace).toBe('default');
      expect(created.reportingController).toBe('podcidr-allocator');
    });
  });
});
