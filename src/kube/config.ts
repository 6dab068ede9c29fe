// Chooses where the API server and credentials come from: --kubeconfig, in-cluster, or KUBECONFIG.
// Never falls back to localhost:8080 the way loadFromDefault does; every failure is a one-line KubeConfigError.

import { accessSync, constants, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { delimiter } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

/** Why the client configuration could not be loaded; the message is meant for the operator as is. */
export class KubeConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KubeConfigError';
  }
}

export interface KubeConfigSource {
  /** Path of a kubeconfig file (--kubeconfig). */
  readonly kubeconfig?: string;
  /** API server URL that overrides the kubeconfig's (--master). */
  readonly master?: string;
}

export interface KubeConfigEnvironment {
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Root of the service-account files; tests point it elsewhere. Default ''. */
  readonly inClusterPrefix?: string;
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
const SERVICE_ACCOUNT_CA = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt';

/**
 * Loads the client configuration from, in order: the kubeconfig file given, the in-cluster
 * service account (KUBERNETES_SERVICE_HOST/PORT and a readable token), the KUBECONFIG variable.
 * With only --master, the server is used without credentials (client-go does the same).
 */
export function loadKubeConfig(source: KubeConfigSource, environment: KubeConfigEnvironment = {}): KubeConfig {
  const env = environment.env ?? process.env;
  const prefix = environment.inClusterPrefix ?? '';
  const kc = new KubeConfig();
  if (source.kubeconfig !== undefined && source.kubeconfig !== '') {
    loadFile(kc, source.kubeconfig, '--kubeconfig');
  } else if (inCluster(env, prefix)) {
    loadInCluster(kc, env, prefix);
  } else if (env.KUBECONFIG !== undefined && env.KUBECONFIG !== '') {
    loadKubeconfigVariable(kc, env.KUBECONFIG);
  } else if (source.master !== undefined && source.master !== '') {
    kc.loadFromClusterAndUser({ name: 'master', server: source.master, skipTLSVerify: false }, { name: 'anonymous' });
  } else {
    throw new KubeConfigError(
      'no Kubernetes client configuration: pass --kubeconfig, run in a cluster, or set KUBECONFIG',
    );
  }
  if (source.master !== undefined && source.master !== '') overrideServer(kc, source.master);
  checkUsable(kc);
  return kc;
}

function inCluster(env: Readonly<Record<string, string | undefined>>, prefix: string): boolean {
  if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) return false;
  try {
    accessSync(`${prefix}${SERVICE_ACCOUNT_TOKEN}`, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * What KubeConfig.loadFromCluster builds, but from the environment given rather than process.env.
 * The tokenFile provider re-reads the token periodically, so rotated service-account tokens work.
 */
function loadInCluster(kc: KubeConfig, env: Readonly<Record<string, string | undefined>>, prefix: string): void {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT ?? '';
  const server = `https://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  kc.loadFromOptions({
    clusters: [{ name: 'in-cluster', server, caFile: `${prefix}${SERVICE_ACCOUNT_CA}`, skipTLSVerify: false }],
    users: [
      {
        name: 'in-cluster',
        authProvider: { name: 'tokenFile', config: { tokenFile: `${prefix}${SERVICE_ACCOUNT_TOKEN}` } },
      },
    ],
    contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'in-cluster' }],
    currentContext: 'in-cluster',
  });
}

/** KUBECONFIG may list several files; like kubectl, they are merged and the first one's context wins. */
function loadKubeconfigVariable(kc: KubeConfig, value: string): void {
  const files = value.split(delimiter).filter((f) => f !== '');
  const [first, ...rest] = files;
  if (first === undefined) throw new KubeConfigError('KUBECONFIG is set but names no file');
  loadFile(kc, first, 'KUBECONFIG');
  for (const file of rest) {
    const extra = new KubeConfig();
    loadFile(extra, file, 'KUBECONFIG');
    try {
      kc.mergeConfig(extra, true);
    } catch (err) {
      throw new KubeConfigError(`kubeconfig ${file} (from KUBECONFIG) cannot be merged: ${firstLine(err)}`, {
        cause: err,
      });
    }
  }
}

function loadFile(kc: KubeConfig, file: string, from: string): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new KubeConfigError(`cannot read kubeconfig ${file} (from ${from}): ${fsReason(err)}`, { cause: err });
  }
  if (text.trim() === '') throw new KubeConfigError(`kubeconfig ${file} (from ${from}) is empty`);
  try {
    // loadFromFile (not loadFromString) so that relative certificate paths resolve against the file.
    kc.loadFromFile(file);
  } catch (err) {
    throw new KubeConfigError(`kubeconfig ${file} (from ${from}) is not valid: ${firstLine(err)}`, { cause: err });
  }
  const context = kc.getCurrentContext();
  if (!context) throw new KubeConfigError(`kubeconfig ${file} (from ${from}) has no current-context`);
  if (kc.getCurrentCluster() === null) {
    throw new KubeConfigError(
      `kubeconfig ${file} (from ${from}): current-context "${context}" names no known cluster`,
    );
  }
}

function overrideServer(kc: KubeConfig, master: string): void {
  const current = kc.getCurrentCluster();
  if (current === null) return;
  kc.clusters = kc.clusters.map((c) => (c.name === current.name ? { ...c, server: master } : c));
}

function checkUsable(kc: KubeConfig): void {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new KubeConfigError('the Kubernetes client configuration has no current cluster');
  let url: URL;
  try {
    url = new URL(cluster.server);
  } catch (err) {
    throw new KubeConfigError(`API server address "${cluster.server}" is not a URL`, { cause: err });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new KubeConfigError(`API server address "${cluster.server}" must start with https:// or http://`);
  }
  // Plain HTTP has no TLS to verify, but client-node refuses http:// unless this flag is set.
  if (url.protocol === 'http:' && !cluster.skipTLSVerify) {
    kc.clusters = kc.clusters.map((c) => (c.name === cluster.name ? { ...c, skipTLSVerify: true } : c));
  }
}

function fsReason(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    switch (err.code) {
      case 'ENOENT':
        return 'no such file';
      case 'EACCES':
        return 'permission denied';
      case 'EISDIR':
        return 'is a directory';
    }
  }
  return firstLine(err);
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n', 1)[0] ?? text).trim();
}
