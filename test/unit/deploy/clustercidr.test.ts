// Static checks of components/clustercidr: the ClusterCIDR CRD node-ipam-controller users apply their
// objects to, and the controller's access to it. The integration test renders the component with
// kubectl's kustomize and runs the same checks on the output, then the CRD on a real API server.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  bindingProblems,
  clusterCidrCrdProblems,
  clusterCidrRoleProblems,
  findObject,
  loadKustomization,
  loadResources,
  manifestsDir,
} from './manifests.js';

const componentDir = join(manifestsDir, 'components', 'clustercidr');
const objects = loadResources(componentDir);
const crd = findObject<k8s.V1CustomResourceDefinition>(objects, 'CustomResourceDefinition', 'clustercidrs.networking.x-k8s.io');
const role = findObject<k8s.V1ClusterRole>(objects, 'ClusterRole', 'podcidr-allocator-clustercidrs');

describe('the clustercidr component', () => {
  it('is a Component whose resources all exist, so that overlays opt in', () => {
    const kustomization = loadKustomization(componentDir);
    expect(kustomization.kind).toBe('Component');
    expect((kustomization.resources ?? []).filter((file) => !existsSync(join(componentDir, file)))).toEqual([]);
  });

  it('holds only the CRD and the RBAC for it', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata?.name}`).sort()).toEqual([
      'ClusterRole/podcidr-allocator-clustercidrs',
      'ClusterRoleBinding/podcidr-allocator-clustercidrs',
      'CustomResourceDefinition/clustercidrs.networking.x-k8s.io',
    ]);
  });

  it('defines networking.x-k8s.io/v1 ClusterCIDR, cluster-scoped, immutable, with a status subresource', () => {
    expect(clusterCidrCrdProblems(crd)).toEqual([]);
  });

  it('lets the controller read pools and write only their status and finalizers', () => {
    expect(clusterCidrRoleProblems(role)).toEqual([]);
  });

  it('binds its role to the podcidr-allocator ServiceAccount in kube-system', () => {
    const binding = findObject<k8s.V1ClusterRoleBinding>(objects, 'ClusterRoleBinding', 'podcidr-allocator-clustercidrs');
    expect(bindingProblems(binding, 'ClusterRole', 'podcidr-allocator-clustercidrs')).toEqual([]);
  });

  it('leaves the base ClusterRole alone: no patch, and not one grant in common', () => {
    const grants = (r: k8s.V1ClusterRole): string[] =>
      (r.rules ?? []).flatMap((rule) =>
        (rule.apiGroups ?? []).flatMap((g) => (rule.resources ?? []).flatMap((res) => rule.verbs.map((v) => `${g}/${res}/${v}`))),
      );
    const base = findObject<k8s.V1ClusterRole>(loadResources(join(manifestsDir, 'base')), 'ClusterRole', 'podcidr-allocator');
    expect(loadKustomization(componentDir).patches ?? []).toEqual([]);
    expect(grants(role).filter((g) => grants(base).includes(g))).toEqual([]);
  });
});

describe('the ClusterCIDR check functions', () => {
  it('flag a namespaced CRD with a second version and a mutable range', () => {
    const broken = structuredClone(crd);
    broken.spec.scope = 'Namespaced';
    const [v1] = broken.spec.versions;
    if (v1 === undefined) throw new Error('no version');
    broken.spec.versions.push({ ...structuredClone(v1), name: 'v1alpha1', storage: false });
    const ipv4 = v1.schema?.openAPIV3Schema?.properties?.spec?.properties?.ipv4;
    if (ipv4 === undefined) throw new Error('no ipv4 field');
    ipv4.x_kubernetes_validations = (ipv4.x_kubernetes_validations ?? []).filter((v) => v.rule !== 'self == oldSelf');
    expect(clusterCidrCrdProblems(broken)).toEqual([
      'scope is Namespaced, want Cluster',
      'versions are v1:true:true,v1alpha1:true:false, want v1 served and stored',
      'ipv4 is not immutable',
    ]);
  });

  it('flag a role that may delete pools or update their spec', () => {
    const wide: k8s.V1ClusterRole = {
      rules: [
        { apiGroups: ['networking.x-k8s.io'], resources: ['clustercidrs'], verbs: ['get', 'list', 'watch', 'patch', 'update', 'delete'] },
        { apiGroups: ['networking.x-k8s.io'], resources: ['clustercidrs/status', 'clustercidrs/finalizers'], verbs: ['update'] },
      ],
    };
    expect(clusterCidrRoleProblems(wide)).toEqual([
      'grants networking.x-k8s.io/clustercidrs/update',
      'grants networking.x-k8s.io/clustercidrs/delete',
      'does not grant networking.x-k8s.io/clustercidrs/status/patch',
    ]);
  });
});
