// The ClusterCIDR CRD on the shared API server, for tests that need pools: installed from the
// kustomize component as a user would, and removed with every object in it.

import * as k8s from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually } from '../support/eventually.js';
import { findObject, loadObjects, repoRoot } from '../unit/deploy/manifests.js';
import { controlPlane } from './harness.js';

export const CLUSTER_CIDR_CRD = 'clustercidrs.networking.x-k8s.io';
export const CLUSTER_CIDR_RESOURCE = { group: 'networking.x-k8s.io', version: 'v1', plural: 'clustercidrs' } as const;

/** Creates the CRD and waits until its objects can be listed. */
export async function installClusterCidrCrd(kc: k8s.KubeConfig): Promise<void> {
  const cp = controlPlane();
  if (!cp.available) throw new Error(cp.reason);
  const overlay = join(repoRoot, 'test/fixtures/kustomize/clustercidr');
  const { stdout } = await promisify(execFile)(join(cp.binDir, 'kubectl'), ['--kubeconfig', cp.kubeconfigPath, 'kustomize', overlay]);
  const apiext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  await apiext.createCustomResourceDefinition({ body: findObject(loadObjects(stdout), 'CustomResourceDefinition', CLUSTER_CIDR_CRD) });
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  await eventually(async () => (await custom.listClusterCustomObject({ ...CLUSTER_CIDR_RESOURCE })) as unknown, { timeoutMs: 30_000 });
}

/** Deletes the CRD and waits until it is gone, so the next file may install it again. */
export async function removeClusterCidrCrd(kc: k8s.KubeConfig): Promise<void> {
  const apiext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  await apiext.deleteCustomResourceDefinition({ name: CLUSTER_CIDR_CRD });
  await eventually(
    async () => {
      try {
        await apiext.readCustomResourceDefinition({ name: CLUSTER_CIDR_CRD });
        return undefined;
      } catch {
        return true;
      }
    },
    { timeoutMs: 60_000 },
  );
}
