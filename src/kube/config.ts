// Chooses where the API server and credentials come from: --kubeconfig, in-cluster, or KUBECONFIG.
// Never falls back to localhost:8080 the way loadFromDefault does; every failure is a one-line KubeConfigError.

import { fork } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { delimiter, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ClusterAccess, type Resolved, ResolvingAccess, TokenFileAccess, fixedAccess } from './access.js';
import type { KubeconfigAnswer, KubeconfigJob } from './kubeconfig-worker.js';

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
export async function loadKubeConfig(
  source: KubeConfigSource,
  environment: KubeConfigEnvironment = {},
): Promise<ClusterAccess> {
  const env = environment.env ?? process.env;
  const prefix = environment.inClusterPrefix ?? '';
  const master = source.master !== undefined && source.master !== '' ? source.master : undefined;
  let access: ClusterAccess;
  if (source.kubeconfig !== undefined && source.kubeconfig !== '') {
    access = await kubeconfigAccess({ files: [source.kubeconfig], from: '--kubeconfig', master });
  } else if (inCluster(env, prefix)) {
    access = inClusterAccess(env, prefix, master);
  } else if (env.KUBECONFIG !== undefined && env.KUBECONFIG !== '') {
    const files = env.KUBECONFIG.split(delimiter).filter((f) => f !== '');
    access = await kubeconfigAccess({ files, from: 'KUBECONFIG', master });
  } else if (master !== undefined) {
    access = fixedAccess(master, { tls: {}, headers: {} });
  } else {
    throw new KubeConfigError(
      'no Kubernetes client configuration: pass --kubeconfig, run in a cluster, or set KUBECONFIG',
    );
  }
  checkUsable(access);
  return access;
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
 * What KubeConfig.loadFromCluster builds, from the environment given rather than process.env. The
 * token is re-read every minute and after a 401, so rotated service-account tokens work.
 */
function inClusterAccess(
  env: Readonly<Record<string, string | undefined>>,
  prefix: string,
  master: string | undefined,
): ClusterAccess {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT ?? '';
  const caFile = `${prefix}${SERVICE_ACCOUNT_CA}`;
  let ca: string;
  try {
    ca = readFileSync(caFile, 'utf8');
  } catch (err) {
    throw new KubeConfigError(`cannot read the service account's CA ${caFile}: ${fsReason(err)}`, { cause: err });
  }
  return new TokenFileAccess({
    server: master ?? `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    tls: { ca },
    tokenFile: `${prefix}${SERVICE_ACCOUNT_TOKEN}`,
  });
}

/** A kubeconfig resolved in a child process; credentials that can change are resolved anew after a 401. */
async function kubeconfigAccess(job: KubeconfigJob): Promise<ClusterAccess> {
  const first = await resolveInWorker(job);
  if (first.proxyUrl !== undefined && !/^https?:\/\//i.test(first.proxyUrl)) {
    throw new KubeConfigError(
      `proxy-url "${first.proxyUrl}" is not supported: only http:// and https:// proxies are (kubeconfig ${job.files[0] ?? ''})`,
    );
  }
  const resolved: Resolved = {
    server: first.server,
    ...(first.proxyUrl !== undefined ? { proxyUrl: first.proxyUrl } : {}),
    credentials: { tls: first.tls, headers: first.headers },
  };
  if (!first.refreshable) return fixedAccess(resolved.server, resolved.credentials, resolved.proxyUrl);
  return new ResolvingAccess(resolved, async () => {
    const next = await resolveInWorker(job);
    return { server: next.server, credentials: { tls: next.tls, headers: next.headers } };
  });
}

/**
 * The Kubernetes client library loads the files and runs any credential plugin in a child process:
 * it weighs about 35 MB once imported. A worker thread would not do: measured, the parent kept
 * that memory (malloc arenas) after the thread ended; a process returns all of it when it exits.
 */
async function resolveInWorker(job: KubeconfigJob): Promise<Extract<KubeconfigAnswer, { ok: true }>> {
  const answer = await askKubeconfigWorker(fileURLToPath(workerUrl()), job).catch((err: unknown) => {
    throw new KubeConfigError(`cannot load kubeconfig ${job.files.join(delimiter)}: ${firstLine(err)}`, { cause: err });
  });
  if (!answer.ok) throw new KubeConfigError(answer.message);
  return answer;
}

/** Starts the worker file as a child process, sends it the job and waits for its one answer. */
export function askKubeconfigWorker(file: string, job: KubeconfigJob): Promise<KubeconfigAnswer> {
  return new Promise<KubeconfigAnswer>((resolve, reject) => {
    // No inherited execArgv: the parent's flags (heap sizes, loaders) are not the child's business.
    // stdout ignored so nothing can mix into the JSON log; a credential plugin's stderr stays visible.
    const child = fork(file, [], { execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    child.once('message', (message) => resolve(message as KubeconfigAnswer));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the kubeconfig process ended (exit code ${code}) without an answer`)));
    child.send(job);
  });
}

/**
 * Run from source, the worker is the .ts beside this file. Built (`npm run build`, the image), this
 * code is bundled into main.js and the worker is kubeconfig-worker.bundle.js beside it.
 */
function workerUrl(): URL {
  const fromSource = extname(fileURLToPath(import.meta.url)) === '.ts';
  return new URL(fromSource ? './kubeconfig-worker.ts' : './kubeconfig-worker.bundle.js', import.meta.url);
}

function checkUsable(access: ClusterAccess): void {
  let url: URL;
  try {
    url = new URL(access.server);
  } catch (err) {
    throw new KubeConfigError(`API server address "${access.server}" is not a URL`, { cause: err });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new KubeConfigError(`API server address "${access.server}" must start with https:// or http://`);
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
