// Acts as a ServiceAccount against the test control plane: the shipped RBAC applied, a TokenRequest token in a
// kubeconfig of its own. The token is bound to the ServiceAccount's lifetime and expires by itself; remove() deletes the file.

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { loadObjects, repoRoot } from '../unit/deploy/manifests.js';
import { controlPlane, type KubeClients } from './harness.js';

const run = promisify(execFile);
const rbacKinds = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

/** Runs the control plane's own kubectl as admin; rejects on a non-zero exit. */
async function kubectl(args: string[], input?: string): Promise<string> {
  const cp = controlPlane();
  if (!cp.available) throw new Error(`no control plane: ${cp.reason}`);
  const child = run(join(cp.binDir, 'kubectl'), ['--kubeconfig', cp.kubeconfigPath, ...args], { maxBuffer: 16 * 1024 * 1024 });
  if (input !== undefined) child.child.stdin?.end(input);
  return (await child).stdout;
}

/**
 * Applies the ServiceAccount, roles and bindings that manifests/base renders, and nothing else of it.
 * Returns their YAML for deleteShippedRbac.
 */
export async function applyShippedRbac(): Promise<string> {
  const rendered = loadObjects(await kubectl(['kustomize', join(repoRoot, 'manifests/base')]));
  const yaml = rendered
    .filter((o) => rbacKinds.has(o.kind ?? ''))
    .map((o) => k8s.dumpYaml(o))
    .join('---\n');
  await kubectl(['apply', '-f', '-'], yaml);
  return yaml;
}

export async function deleteShippedRbac(yaml: string): Promise<void> {
  await kubectl(['delete', '--ignore-not-found', '--wait=false', '-f', '-'], yaml);
}

export interface ServiceAccountKubeconfig {
  /** A kubeconfig file for kubectl (`--kubeconfig`). */
  readonly path: string;
  /** The same configuration, loaded, for API clients. */
  readonly kc: k8s.KubeConfig;
  /** The username the API server sees, e.g. system:serviceaccount:kube-system:podcidr-allocator. */
  readonly username: string;
  remove(): Promise<void>;
}

/**
 * Requests a token for an existing ServiceAccount and writes a kubeconfig that uses it against the
 * admin kubeconfig's server and CA, so tests exercise the RBAC a deployed pod would get.
 */
export async function serviceAccountKubeconfig(
  admin: KubeClients,
  { namespace, name, expirationSeconds = 3600 }: { namespace: string; name: string; expirationSeconds?: number },
): Promise<ServiceAccountKubeconfig> {
  const request = await admin.core.createNamespacedServiceAccountToken({
    namespace,
    name,
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [], expirationSeconds } },
  });
  const token = request.status?.token;
  if (token === undefined || token === '') throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);

  const cluster = admin.kc.getCurrentCluster();
  if (cluster === null) throw new Error('the admin kubeconfig has no current cluster');
  const username = `system:serviceaccount:${namespace}:${name}`;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server: cluster.server, caData: cluster.caData, caFile: cluster.caFile, skipTLSVerify: false }],
    users: [{ name: username, token }],
    contexts: [{ name: 'test', cluster: 'test', user: username }],
    currentContext: 'test',
  });
  const dir = await mkdtemp(join(tmpdir(), 'podcidr-sa-'));
  const path = join(dir, 'kubeconfig');
  await writeFile(path, kc.exportConfig(), { mode: 0o600 });
  return { path, kc, username, remove: () => rm(dir, { recursive: true, force: true }) };
}
