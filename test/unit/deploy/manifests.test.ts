// Static checks of manifests/: the base as written, the example overlay's patch, and the kustomize wiring.
// No cluster and no kustomize binary: the integration test renders the tree and runs the same checks on it.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { runFlags } from '../../../src/cli/flags.js';
import {
  argumentProblems,
  bindingProblems,
  clusterRoleProblems,
  containerProblems,
  controllerContainer,
  findObject,
  flagValues,
  loadFile,
  loadKustomization,
  loadResources,
  manifestsDir,
  metricsBindPort,
  repoRoot,
  roleProblems,
  schedulingProblems,
  securityProblems,
} from './manifests.js';

const baseDir = join(manifestsDir, 'base');
const exampleDir = join(manifestsDir, 'overlays', 'example');
const base = loadResources(baseDir);
const deployment = findObject<k8s.V1Deployment>(base, 'Deployment', 'podcidr-allocator');
const knownFlags = new Set(Object.keys(runFlags));

function exampleArgs(): string[] {
  const [patch] = loadFile(join(exampleDir, 'allocator-args.yaml'));
  const patched = patch as k8s.V1Deployment;
  const container = patched.spec?.template.spec?.containers.find((c) => c.name === 'podcidr-allocator');
  return container?.args ?? [];
}

describe('the base Deployment', () => {
  it('can schedule onto a node that has no pod network yet', () => {
    expect(schedulingProblems(deployment)).toEqual([]);
  });

  it('runs locked down: non-root 65532, read-only root, no capabilities, RuntimeDefault seccomp', () => {
    expect(securityProblems(deployment)).toEqual([]);
  });

  it('probes /healthz and /readyz on the metrics port that the bind address opens', () => {
    expect(containerProblems(deployment)).toEqual([]);
  });

  it('passes only flags that the run command defines', () => {
    expect(argumentProblems(controllerContainer(deployment).args ?? [], knownFlags)).toEqual([]);
  });

  it('binds metrics on the CLI default port, so the port is the same with or without the flag', () => {
    const defaultPort = Number(runFlags['metrics-bind-address'].default.split(':').at(-1));
    expect(metricsBindPort(controllerContainer(deployment).args ?? [])).toBe(defaultPort);
  });

  it('keeps replacing in place, because two host-network pods cannot share a node', () => {
    expect(deployment.spec?.strategy?.rollingUpdate?.maxSurge).toBe(0);
  });

  it('selects its pods with the label the Service and the budget select on', () => {
    const selector = deployment.spec?.selector.matchLabels ?? {};
    const service = findObject<k8s.V1Service>(base, 'Service', 'podcidr-allocator');
    const budget = findObject<k8s.V1PodDisruptionBudget>(base, 'PodDisruptionBudget', 'podcidr-allocator');
    expect(Object.keys(selector).length).toBeGreaterThan(0);
    expect(deployment.spec?.template.metadata?.labels).toMatchObject(selector);
    expect(service.spec?.selector).toEqual(selector);
    expect(budget.spec?.selector?.matchLabels).toEqual(selector);
    expect(budget.spec?.minAvailable).toBe(1);
  });

  it('exposes the metrics port through a ClusterIP Service by the same name', () => {
    const service = findObject<k8s.V1Service>(base, 'Service', 'podcidr-allocator');
    const containerPort = controllerContainer(deployment).ports?.find((p) => p.name === 'metrics')?.containerPort;
    expect(service.spec?.type).toBe('ClusterIP');
    expect(service.spec?.ports).toEqual([
      expect.objectContaining({ name: 'metrics', port: containerPort, targetPort: 'metrics' }),
    ]);
  });
});

describe('the base RBAC', () => {
  it('grants cluster-wide only node get/list/watch/patch and event create/patch', () => {
    expect(clusterRoleProblems(findObject<k8s.V1ClusterRole>(base, 'ClusterRole', 'podcidr-allocator'))).toEqual([]);
  });

  it('pins the Lease and ConfigMaps by name for every verb except create', () => {
    expect(roleProblems(findObject<k8s.V1Role>(base, 'Role', 'podcidr-allocator'))).toEqual([]);
  });

  it('binds both roles to the podcidr-allocator ServiceAccount in kube-system', () => {
    const crb = findObject<k8s.V1ClusterRoleBinding>(base, 'ClusterRoleBinding', 'podcidr-allocator');
    const rb = findObject<k8s.V1RoleBinding>(base, 'RoleBinding', 'podcidr-allocator');
    expect([...bindingProblems(crb, 'ClusterRole'), ...bindingProblems(rb, 'Role')]).toEqual([]);
    expect(findObject(base, 'ServiceAccount', 'podcidr-allocator')).toBeDefined();
  });
});

describe('the check functions', () => {
  it('flag unknown flags, the bare form and a missing subcommand', () => {
    expect(argumentProblems(['--cluster-cidr=10.0.0.0/8', '--frobnicate=1', '--leader-elect'], knownFlags)).toEqual([
      'first argument is --cluster-cidr=10.0.0.0/8, want run',
      '--frobnicate is not a flag of `run`',
      'argument --leader-elect is not in --flag=value form',
      // The first argument is taken as the subcommand, so its flag is not seen.
      '--cluster-cidr is missing',
    ]);
  });

  it('flag a cluster-wide grant beyond the controller needs', () => {
    const role: k8s.V1ClusterRole = {
      rules: [
        { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch', 'patch', 'delete'] },
        { apiGroups: [''], resources: ['nodes/status'], verbs: ['patch'] },
        { apiGroups: ['events.k8s.io', ''], resources: ['events'], verbs: ['create', 'patch'] },
      ],
    };
    expect(clusterRoleProblems(role)).toEqual(['grants /nodes/delete', 'grants /nodes/status/patch']);
  });

  it('flag a Role that leaves update on every Lease', () => {
    const role: k8s.V1Role = {
      rules: [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create', 'get', 'update'] }],
    };
    expect(roleProblems(role)).toContain('grants get,update on every leases');
  });

  it('flag a pod that would be evicted from a NotReady node after five minutes', () => {
    const evictable = structuredClone(deployment);
    const pod = evictable.spec?.template.spec;
    if (pod === undefined) throw new Error('no pod spec');
    pod.tolerations = (pod.tolerations ?? []).map((t) =>
      t.key === 'node.kubernetes.io/not-ready' ? { ...t, effect: 'NoExecute', tolerationSeconds: 300 } : t,
    );
    expect(schedulingProblems(evictable)).toEqual([
      'does not tolerate node.kubernetes.io/not-ready:NoSchedule indefinitely',
      'does not tolerate node.kubernetes.io/not-ready:NoExecute indefinitely',
    ]);
  });
});

describe('the example overlay', () => {
  const kustomization = loadKustomization(exampleDir);

  it('sets the Quick start cluster ranges', () => {
    const values = flagValues(exampleArgs());
    expect(values.get('cluster-cidr')).toBe('10.233.64.0/18');
    expect(values.get('node-cidr-mask-size')).toBe('24');
    expect(values.get('service-cluster-ip-range')).toBe('10.233.0.0/18');
  });

  it('passes only flags that the run command defines', () => {
    expect(argumentProblems(exampleArgs(), knownFlags)).toEqual([]);
  });

  it('keeps every base flag except the ranges, since its patch replaces the whole list', () => {
    const overlay = flagValues(exampleArgs());
    const ranges = new Set(['cluster-cidr', 'node-cidr-mask-size', 'service-cluster-ip-range']);
    for (const [name, value] of flagValues(controllerContainer(deployment).args ?? [])) {
      if (!ranges.has(name)) expect(overlay.get(name), `--${name}`).toBe(value);
    }
  });

  it('pins the image to the package version, under a registry name that cannot resolve by accident', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(kustomization.images).toEqual([
      { name: 'podcidr-allocator', newName: 'registry.example.com/podcidr-allocator', newTag: pkg.version },
    ]);
    expect(controllerContainer(deployment).image).toBe('podcidr-allocator');
  });

  it('installs into kube-system', () => {
    expect(kustomization.namespace).toBe('kube-system');
    expect(loadKustomization(baseDir).namespace).toBe('kube-system');
  });
});

describe('the kustomize tree', () => {
  const trees = ['base', 'overlays/example', 'components/monitoring', 'components/apiserver-on-host'];

  it.each(trees)('manifests/%s refers only to files and directories that exist', (tree) => {
    const dir = join(manifestsDir, tree);
    const k = loadKustomization(dir);
    const paths = [
      ...(k.resources ?? []),
      ...(k.components ?? []),
      ...(k.patches ?? []).flatMap((p) => (p.path === undefined ? [] : [p.path])),
      ...(k.configMapGenerator ?? []).flatMap((g) => (g.files ?? []).map((f) => f.split('=').at(-1) ?? f)),
    ];
    expect(paths.filter((p) => !existsSync(join(dir, p)))).toEqual([]);
  });

  it('marks the optional parts as Components, so overlays opt in', () => {
    expect(loadKustomization(join(manifestsDir, 'components/monitoring')).kind).toBe('Component');
    expect(loadKustomization(join(manifestsDir, 'components/apiserver-on-host')).kind).toBe('Component');
  });

  it('points the API server override at the node address, and then requires a control-plane node', () => {
    const [patch] = loadFile(join(manifestsDir, 'components/apiserver-on-host/deployment.yaml'));
    const pod = (patch as k8s.V1Deployment).spec?.template.spec;
    const env = pod?.containers.find((c) => c.name === 'podcidr-allocator')?.env ?? [];
    expect(env.find((e) => e.name === 'KUBERNETES_SERVICE_HOST')?.valueFrom?.fieldRef?.fieldPath).toBe('status.hostIP');
    expect(env.find((e) => e.name === 'KUBERNETES_SERVICE_PORT')?.value).toMatch(/^\d+$/);
    const terms = pod?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
    expect(terms.flatMap((t) => t.matchExpressions ?? []).map((e) => e.key)).toContain('node-role.kubernetes.io/control-plane');
  });
});
