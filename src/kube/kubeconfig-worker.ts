// Runs as a short-lived child process: loads kubeconfig files with the Kubernetes client library and sends back plain data.
// The library's memory goes with the process (a worker thread's would stay in the parent's malloc arenas).
// Only node: builtins and the library are imported, so the file also runs from source with type stripping.

import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import type { AgentOptions } from 'node:https';

/** What the loading thread asks for. */
export interface KubeconfigJob {
  /** The files, in order; the first one's current-context wins. */
  readonly files: readonly string[];
  /** Where the files were named: "--kubeconfig" or "KUBECONFIG". */
  readonly from: string;
  /** --master: replaces the current cluster's server. */
  readonly master?: string;
}

export type KubeconfigAnswer =
  | {
      readonly ok: true;
      readonly server: string;
      readonly proxyUrl?: string;
      readonly tls: {
        readonly ca?: string;
        readonly cert?: string;
        readonly key?: string;
        readonly rejectUnauthorized?: boolean;
        readonly servername?: string;
      };
      readonly headers: Record<string, string>;
      /** The credential can change (exec plugin, auth provider): resolve again after a 401. */
      readonly refreshable: boolean;
    }
  | { readonly ok: false; readonly message: string };

async function answer(job: KubeconfigJob): Promise<KubeconfigAnswer> {
  try {
    const kc = load(job);
    const cluster = kc.getCurrentCluster();
    if (cluster === null) return { ok: false, message: 'the Kubernetes client configuration has no current cluster' };
    return { ok: true, ...(await resolve(kc)) };
  } catch (err) {
    if (err instanceof LoadError) return { ok: false, message: err.message };
    return { ok: false, message: `cannot get credentials from kubeconfig ${job.files[0] ?? ''}: ${firstLine(err)}` };
  }
}

class LoadError extends Error {}

/** Like kubectl, several files are merged and the first one's context wins. */
function load(job: KubeconfigJob): KubeConfig {
  const [first, ...rest] = job.files;
  if (first === undefined) throw new LoadError(`${job.from} is set but names no file`);
  const kc = new KubeConfig();
  loadFile(kc, first, job.from);
  for (const file of rest) {
    const extra = new KubeConfig();
    loadFile(extra, file, job.from);
    try {
      kc.mergeConfig(extra, true);
    } catch (err) {
      throw new LoadError(`kubeconfig ${file} (from ${job.from}) cannot be merged: ${firstLine(err)}`);
    }
  }
  const current = kc.getCurrentCluster();
  if (current !== null) {
    const server = job.master !== undefined && job.master !== '' ? job.master : current.server;
    // Plain HTTP has no TLS to verify, but the library refuses http:// unless this flag is set.
    const skipTLSVerify = current.skipTLSVerify || server.startsWith('http:');
    kc.clusters = kc.clusters.map((c) => (c.name === current.name ? { ...c, server, skipTLSVerify } : c));
  }
  return kc;
}

function loadFile(kc: KubeConfig, file: string, from: string): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new LoadError(`cannot read kubeconfig ${file} (from ${from}): ${fsReason(err)}`);
  }
  if (text.trim() === '') throw new LoadError(`kubeconfig ${file} (from ${from}) is empty`);
  try {
    // loadFromFile (not loadFromString) so that relative certificate paths resolve against the file.
    kc.loadFromFile(file);
  } catch (err) {
    throw new LoadError(`kubeconfig ${file} (from ${from}) is not valid: ${firstLine(err)}`);
  }
  const context = kc.getCurrentContext();
  if (!context) throw new LoadError(`kubeconfig ${file} (from ${from}) has no current-context`);
  if (kc.getCurrentCluster() === null) {
    throw new LoadError(`kubeconfig ${file} (from ${from}): current-context "${context}" names no known cluster`);
  }
}

/**
 * The library's own applySecurityAuthentication fills in headers (running exec plugins, token files,
 * oidc…) and hands the TLS options to createDispatcher, which is replaced here to capture them.
 */
async function resolve(kc: KubeConfig): Promise<Omit<Extract<KubeconfigAnswer, { ok: true }>, 'ok'>> {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  let agentOptions: AgentOptions = {};
  Reflect.set(kc, 'createDispatcher', (c: typeof cluster, options: AgentOptions) => {
    kc.createDispatcherOptions(c, options);
    agentOptions = options;
    return undefined;
  });
  const headers: Record<string, string> = {};
  const context = {
    setHeaderParam: (name: string, value: string) => {
      headers[name] = value;
    },
    setDispatcher: () => undefined,
  };
  await kc.applySecurityAuthentication(context as unknown as Parameters<KubeConfig['applySecurityAuthentication']>[0]);
  const proxyUrl = cluster?.proxyUrl;
  return {
    server: cluster?.server ?? '',
    ...(proxyUrl ? { proxyUrl } : {}),
    tls: {
      ...pem('ca', agentOptions.ca),
      ...pem('cert', agentOptions.cert),
      ...pem('key', agentOptions.key),
      ...(agentOptions.rejectUnauthorized !== undefined ? { rejectUnauthorized: agentOptions.rejectUnauthorized } : {}),
      ...(agentOptions.servername !== undefined ? { servername: agentOptions.servername } : {}),
    },
    headers,
    refreshable: Boolean(user?.exec || user?.authProvider),
  };
}

function pem(name: string, value: unknown): Record<string, string> {
  if (typeof value === 'string') return { [name]: value };
  if (Buffer.isBuffer(value)) return { [name]: value.toString('utf8') };
  return {};
}

// fsReason and firstLine repeat config.ts's: this file may import no module of ours (see the top).
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

// Started with an IPC channel (fork): one job in, one answer out, then exit.
const send = process.send?.bind(process);
if (send !== undefined) {
  process.once('message', (job: KubeconfigJob) => {
    void answer(job).then((result) => send(result, () => process.exit(0)));
  });
}
