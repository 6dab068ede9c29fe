// Starts a throwaway etcd + kube-apiserver on 127.0.0.1 with its own CA, admin kubeconfig and service-account keys.
// Ready means /readyz answered ok and the system namespaces exist; stop() kills only its own pids and removes its dir.
import { spawn, execFile } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const run = promisify(execFile);

export const HACK_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BUILD_SCRIPT = join(HACK_DIR, 'build-control-plane.sh');
export const BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubectl'] as const;

/** Thrown when the binaries are missing or cannot be built: callers skip rather than fail, unless told otherwise. */
export class ControlPlaneUnavailableError extends Error {
  override name = 'ControlPlaneUnavailableError';
}

/** Thrown when a process started but never became ready; the message carries the tail of its log. */
export class ControlPlaneStartError extends Error {
  override name = 'ControlPlaneStartError';
}

export interface Versions {
  kubernetes: string;
  etcd: string;
}

/** The pinned versions, read from hack/versions.env so the build script and this helper cannot disagree. */
function readVersions(): Map<string, string> {
  const env = new Map<string, string>();
  for (const line of readFileSync(join(HACK_DIR, 'versions.env'), 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(\S+)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) env.set(m[1], m[2]);
  }
  return env;
}

export function pinnedVersions(): Versions {
  const env = readVersions();
  const kubernetes = env.get('K8S_VERSION');
  const etcd = env.get('ETCD_VERSION');
  if (kubernetes === undefined || etcd === undefined) throw new Error('hack/versions.env lacks K8S_VERSION or ETCD_VERSION');
  return { kubernetes, etcd };
}

/** HELM_VERSION of hack/versions.env. */
export function pinnedHelmVersion(): string {
  const helm = readVersions().get('HELM_VERSION');
  if (helm === undefined) throw new Error('hack/versions.env lacks HELM_VERSION');
  return helm;
}

/** $PODCIDR_ALLOCATOR_CACHE, or ~/.cache/podcidr-allocator: where every built binary and image is kept. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.PODCIDR_ALLOCATOR_CACHE ?? join(homedir(), '.cache', 'podcidr-allocator');
}

/** Same rule as hack/build-control-plane.sh: $PODCIDR_ALLOCATOR_CACHE (or ~/.cache/podcidr-allocator)/k8s-…-etcd-…/bin. */
export function defaultBinDir(env: NodeJS.ProcessEnv = process.env): string {
  const v = pinnedVersions();
  return join(cacheRoot(env), `k8s-${v.kubernetes}-etcd-${v.etcd}`, 'bin');
}

/** Where hack/build-control-plane.sh puts helm: <cache root>/helm-<HELM_VERSION>/bin/helm. */
export function defaultHelmPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), `helm-${pinnedHelmVersion()}`, 'bin', 'helm');
}

/** The cluster in a box's node binaries: the kubelet and kube-proxy beside kube-apiserver, CNI and flannel apart. */
export function nodeBinDirs(env: NodeJS.ProcessEnv = process.env): { kube: string; cni: string; flannel: string } {
  const root = cacheRoot(env);
  const versions = readVersions();
  const want = (key: string): string => {
    const v = versions.get(key);
    if (v === undefined) throw new Error(`hack/versions.env lacks ${key}`);
    return v;
  };
  return {
    kube: defaultBinDir(env),
    cni: join(root, `cni-plugins-${want('CNI_PLUGINS_VERSION')}`, 'bin'),
    flannel: join(root, `flannel-${want('FLANNEL_VERSION')}`, 'bin'),
  };
}

export function missingBinaries(binDir: string): string[] {
  return BINARIES.filter((b) => !existsSync(join(binDir, b)));
}

/**
 * Makes sure the binaries exist, running the (idempotent) build script when allowed.
 * Build output goes to stderr so a cold build of many minutes shows its progress.
 */
export async function ensureBinaries(opts: { binDir?: string; build?: boolean } = {}): Promise<string> {
  const binDir = opts.binDir ?? defaultBinDir();
  if (missingBinaries(binDir).length === 0) return binDir;
  if (opts.build === false || opts.binDir !== undefined) {
    throw new ControlPlaneUnavailableError(
      `missing ${missingBinaries(binDir).join(', ')} in ${binDir}; run hack/build-control-plane.sh`,
    );
  }
  const code = await new Promise<number>((done) => {
    const child = spawn('bash', [BUILD_SCRIPT, 'build'], { stdio: ['ignore', process.stderr, process.stderr] });
    child.on('error', () => done(127));
    child.on('exit', (c) => done(c ?? 1));
  });
  const missing = missingBinaries(binDir);
  if (code !== 0 || missing.length > 0) {
    throw new ControlPlaneUnavailableError(
      `hack/build-control-plane.sh exited with ${code}; missing: ${missing.join(', ') || 'none'}`,
    );
  }
  return binDir;
}

export interface ControlPlaneOptions {
  /** Directory holding the binaries; default defaultBinDir(), built on demand if missing. */
  binDir?: string;
  /** Build missing binaries with hack/build-control-plane.sh (default true; ignored when binDir is given). */
  build?: boolean;
  /** Extra kube-apiserver flags, e.g. ['--feature-gates=…']. Later flags win over the defaults. */
  apiServerArgs?: string[];
  /** --max-requests-inflight (default: the apiserver's 400); raise it for benchmarks. */
  maxRequestsInflight?: number;
  /** --max-mutating-requests-inflight (default: the apiserver's 200). */
  maxMutatingRequestsInflight?: number;
  /** etcd --quota-backend-bytes (default etcd's 2 GiB); 50,000 fat Nodes and their patches need more. */
  etcdQuotaBytes?: number;
  /** Leave etcd and kube-apiserver running when the parent exits (used by hack/control-plane.sh up). */
  detached?: boolean;
  /** How long to wait for readiness of each process (default 120 s). */
  readyTimeoutMs?: number;
  /** Progress lines; default silent. */
  log?: (line: string) => void;
  /** Address kube-apiserver binds to and advertises (default 127.0.0.1); its serving cert names it. */
  address?: string;
  /** More IPs for the serving cert, e.g. the `kubernetes` Service IP pods connect to. */
  servingIPs?: string[];
  /** Where the control plane's temp dir is made (default the OS temp dir); a sweep of parentDir finds it. */
  parentDir?: string;
}

export interface ControlPlaneFiles {
  caCert: string;
  caKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
  etcdLog: string;
  apiServerLog: string;
}

export interface ControlPlane {
  /** Admin kubeconfig (client certificate in group system:masters), embedded certs. */
  readonly kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** gitVersion from the running apiserver's /version, e.g. v1.34.4. */
  readonly version: string;
  readonly binDir: string;
  /** Temp dir holding certs, etcd data, logs and the kubeconfig; removed by stop(). */
  readonly dir: string;
  readonly etcdUrl: string;
  readonly files: ControlPlaneFiles;
  pids(): { etcd: number; apiServer: number | undefined };
  /** Stops kube-apiserver only (etcd and data stay); for outage tests. */
  stopApiServer(): Promise<void>;
  /** Starts kube-apiserver again on the same port with the same certs and etcd, then waits for /readyz. */
  startApiServer(): Promise<void>;
  restartApiServer(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts etcd and kube-apiserver; on any failure kills what it started, removes the dir and throws. */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? (() => undefined);
  const binDir = await ensureBinaries({ binDir: opts.binDir, build: opts.build });
  await checkOpenssl();
  const dir = await mkdtemp(join(opts.parentDir ?? tmpdir(), 'podcidr-cp-'));
  const started: number[] = [];
  try {
    const address = opts.address ?? '127.0.0.1';
    const files = await writeCredentials(dir, [address, ...(opts.servingIPs ?? [])]);
    const [etcdClientPort, etcdPeerPort, apiPort] = await freePorts();
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const server = `https://${address}:${apiPort}`;
    const timeout = opts.readyTimeoutMs ?? 120_000;

    const etcdPid = launch(join(binDir, 'etcd'), etcdArgs(dir, etcdClientPort, etcdPeerPort, opts.etcdQuotaBytes), files.etcdLog, opts.detached);
    started.push(etcdPid);
    await waitUntil('etcd', etcdPid, files.etcdLog, timeout, () => etcdHealthy(etcdUrl));
    log(`etcd ready at ${etcdUrl} (pid ${etcdPid})`);

    const apiArgs = apiServerArgs(dir, files, etcdUrl, apiPort, { ...opts, address });
    const tls = await readTls(files);
    let apiPid: number | undefined = launch(join(binDir, 'kube-apiserver'), apiArgs, files.apiServerLog, opts.detached);
    started.push(apiPid);
    await waitApiReady(apiPid, server, tls, files.apiServerLog, timeout);
    const version = await apiVersion(server, tls);
    log(`kube-apiserver ${version} ready at ${server} (pid ${apiPid})`);

    const kubeconfigPath = join(dir, 'kubeconfig');
    // If the parent dies without calling stop() (a crashed test run), attached children must not outlive it.
    const killOnExit = (): void => {
      for (const pid of [apiPid, etcdPid]) if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    };
    if (opts.detached !== true) process.once('exit', killOnExit);
    await writeFile(kubeconfigPath, kubeconfig(server, tls), { mode: 0o600 });

    const stopApiServer = async (): Promise<void> => {
      if (apiPid !== undefined) await terminate(apiPid);
      apiPid = undefined;
    };
    const startApiServer = async (): Promise<void> => {
      if (apiPid !== undefined) return;
      const pid = launch(join(binDir, 'kube-apiserver'), apiArgs, files.apiServerLog, opts.detached);
      apiPid = pid;
      await waitApiReady(pid, server, tls, files.apiServerLog, timeout);
    };
    return {
      kubeconfigPath,
      server,
      version,
      binDir,
      dir,
      etcdUrl,
      files,
      pids: () => ({ etcd: etcdPid, apiServer: apiPid }),
      stopApiServer,
      startApiServer,
      restartApiServer: async () => {
        await stopApiServer();
        await startApiServer();
      },
      stop: async () => {
        process.removeListener('exit', killOnExit);
        await stopApiServer();
        await terminate(etcdPid);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const pid of started.reverse()) await terminate(pid);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function etcdArgs(dir: string, clientPort: number, peerPort: number, quotaBytes?: number): string[] {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return [
    ...(quotaBytes === undefined ? [] : [`--quota-backend-bytes=${quotaBytes}`]),
    '--name=podcidr-test',
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=podcidr-test=${peer}`,
    '--log-level=warn',
    // Throwaway data: skipping fsync makes every write (and so every test) much faster.
    '--unsafe-no-fsync',
  ];
}

function apiServerArgs(dir: string, f: ControlPlaneFiles, etcdUrl: string, port: number, o: ControlPlaneOptions): string[] {
  const args = [
    `--etcd-servers=${etcdUrl}`,
    `--bind-address=${o.address}`,
    `--advertise-address=${o.address}`,
    `--secure-port=${port}`,
    `--cert-dir=${join(dir, 'apiserver-certs')}`,
    `--tls-cert-file=${join(dir, 'serving.crt')}`,
    `--tls-private-key-file=${join(dir, 'serving.key')}`,
    `--client-ca-file=${f.caCert}`,
    '--authorization-mode=Node,RBAC',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${f.serviceAccountPub}`,
    `--service-account-signing-key-file=${f.serviceAccountKey}`,
    '--service-cluster-ip-range=10.96.0.0/16',
    '--allow-privileged=true',
    '--profiling=false',
    // For logs and exec on the kubelets of a cluster (hack/cluster); unused without them.
    `--kubelet-client-certificate=${f.adminCert}`,
    `--kubelet-client-key=${f.adminKey}`,
  ];
  if (o.maxRequestsInflight !== undefined) args.push(`--max-requests-inflight=${o.maxRequestsInflight}`);
  if (o.maxMutatingRequestsInflight !== undefined) {
    args.push(`--max-mutating-requests-inflight=${o.maxMutatingRequestsInflight}`);
  }
  return [...args, ...(o.apiServerArgs ?? [])];
}

/** Spawns a process writing stdout+stderr to logPath (appending, so a restart keeps earlier output). */
export function launch(bin: string, args: string[], logPath: string, detached = false): number {
  const fd = openSync(logPath, 'a');
  try {
    const child = spawn(bin, args, { stdio: ['ignore', fd, fd], detached });
    if (child.pid === undefined) throw new ControlPlaneStartError(`could not start ${bin}`);
    // Without this the 'error' event of a vanished binary would crash the parent.
    child.on('error', () => undefined);
    if (detached) child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** False for a gone pid and for a zombie: an orphan nobody reaps must not look like a running server. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after graceMs; resolves once the pid is gone. */
export async function terminate(pid: number, graceMs = 15_000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return;
      }
    }
    await sleep(50);
  }
}

async function waitUntil(
  what: string,
  pid: number,
  logPath: string,
  timeoutMs: number,
  probe: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(pid)) throw new ControlPlaneStartError(`${what} exited during start-up\n${await tail(logPath)}`);
    if (await probe()) return;
    if (Date.now() > deadline) {
      throw new ControlPlaneStartError(`${what} not ready after ${timeoutMs} ms\n${await tail(logPath)}`);
    }
    await sleep(100);
  }
}

async function waitApiReady(pid: number, server: string, tls: Tls, logPath: string, timeoutMs: number): Promise<void> {
  // /readyz covers etcd and the RBAC bootstrap; the namespaces come from a controller that may lag behind it.
  await waitUntil('kube-apiserver', pid, logPath, timeoutMs, async () => {
    const ready = await get(server, '/readyz', tls);
    if (ready?.status !== 200 || ready.body.trim() !== 'ok') return false;
    for (const ns of ['default', 'kube-system']) {
      if ((await get(server, `/api/v1/namespaces/${ns}`, tls))?.status !== 200) return false;
    }
    return true;
  });
}

export async function tail(path: string, lines = 40): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return `--- last ${lines} lines of ${path} ---\n${text.trimEnd().split('\n').slice(-lines).join('\n')}`;
  } catch {
    return `(no log at ${path})`;
  }
}

async function etcdHealthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
    return res.ok && ((await res.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

interface Tls {
  ca: string;
  cert: string;
  key: string;
}

async function readTls(f: ControlPlaneFiles): Promise<Tls> {
  return {
    ca: await readFile(f.caCert, 'utf8'),
    cert: await readFile(f.adminCert, 'utf8'),
    key: await readFile(f.adminKey, 'utf8'),
  };
}

/** GET with the admin client certificate; undefined when the server is not reachable yet. */
function get(server: string, path: string, tls: Tls): Promise<{ status: number; body: string } | undefined> {
  return new Promise((done) => {
    const req = httpsRequest(new URL(path, server), { ...tls, method: 'GET', timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => done({ status: res.statusCode ?? 0, body }));
      res.on('error', () => done(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(undefined));
    req.end();
  });
}

async function apiVersion(server: string, tls: Tls): Promise<string> {
  const res = await get(server, '/version', tls);
  if (res?.status !== 200) throw new ControlPlaneStartError(`GET /version failed: ${res?.status ?? 'unreachable'}`);
  const v = (JSON.parse(res.body) as { gitVersion?: unknown }).gitVersion;
  return typeof v === 'string' ? v : 'unknown';
}

/** Reserves three distinct free loopback ports by holding them all open at once, then releasing them. */
async function freePorts(): Promise<[number, number, number]> {
  const servers = await Promise.all(
    Array.from({ length: 3 }, () => {
      const s = createServer();
      return new Promise<ReturnType<typeof createServer>>((done, fail) => {
        s.once('error', fail);
        s.listen(0, '127.0.0.1', () => done(s));
      });
    }),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    if (a === null || typeof a === 'string') throw new Error('unexpected server address');
    return a.port;
  });
  await Promise.all(servers.map((s) => new Promise((done) => s.close(done))));
  const [a, b, c] = ports;
  if (a === undefined || b === undefined || c === undefined) throw new Error('could not reserve ports');
  return [a, b, c];
}

async function checkOpenssl(): Promise<void> {
  try {
    await run('openssl', ['version']);
  } catch {
    throw new ControlPlaneUnavailableError('openssl is not installed (apt-get install openssl)');
  }
}

async function openssl(dir: string, args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

/** A CA, a serving cert for 127.0.0.1 and ips, an admin client cert (group system:masters) and service-account keys. */
async function writeCredentials(dir: string, ips: string[]): Promise<ControlPlaneFiles> {
  await mkdir(join(dir, 'apiserver-certs'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '7',
    '-subj', '/CN=podcidr-allocator-local-ca']);
  await openssl(dir, ['req', ...ec, '-keyout', 'serving.key', '-out', 'serving.crt', '-days', '7', '-x509',
    '-CA', 'ca.crt', '-CAkey', 'ca.key', '-subj', '/CN=kube-apiserver',
    '-addext', `subjectAltName=${servingNames(ips)}`,
    '-addext', 'extendedKeyUsage=serverAuth', '-addext', 'basicConstraints=critical,CA:FALSE']);
  await openssl(dir, ['req', ...ec, '-keyout', 'admin.key', '-out', 'admin.crt', '-days', '7', '-x509',
    '-CA', 'ca.crt', '-CAkey', 'ca.key', '-subj', '/O=system:masters/CN=podcidr-allocator-admin',
    '-addext', 'extendedKeyUsage=clientAuth', '-addext', 'basicConstraints=critical,CA:FALSE']);
  await openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', 'sa.key']);
  await openssl(dir, ['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
  return {
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    adminCert: join(dir, 'admin.crt'),
    adminKey: join(dir, 'admin.key'),
    serviceAccountKey: join(dir, 'sa.key'),
    serviceAccountPub: join(dir, 'sa.pub'),
    etcdLog: join(dir, 'etcd.log'),
    apiServerLog: join(dir, 'kube-apiserver.log'),
  };
}

function servingNames(ips: string[]): string {
  const names = [...new Set(['127.0.0.1', ...ips])].map((ip) => `IP:${ip}`);
  return [...names, 'DNS:localhost', 'DNS:kubernetes.default.svc', 'DNS:kubernetes.default'].join(',');
}

function kubeconfig(server: string, tls: Tls): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: podcidr-allocator-local',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(tls.ca)}`,
    'users:',
    '- name: admin',
    '  user:',
    `    client-certificate-data: ${b64(tls.cert)}`,
    `    client-key-data: ${b64(tls.key)}`,
    'contexts:',
    '- name: podcidr-allocator-local',
    '  context:',
    '    cluster: podcidr-allocator-local',
    '    user: admin',
    'current-context: podcidr-allocator-local',
    '',
  ].join('\n');
}
