// Command line behind hack/control-plane.sh: up (detached, state file), down, env, status.
// down only signals pids whose command line points into the temp dir recorded by up, then removes that dir.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { HACK_DIR, isAlive, startControlPlane, terminate } from './control-plane.js';

const STATE_FILE = process.env.PODCIDR_ALLOCATOR_STATE ?? join(resolve(HACK_DIR, '..'), '.cache', 'control-plane', 'state.json');

interface State {
  dir: string;
  kubeconfigPath: string;
  server: string;
  version: string;
  binDir: string;
  pids: { etcd: number; apiServer: number };
}

function readState(): State | undefined {
  if (!existsSync(STATE_FILE)) return undefined;
  return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as State;
}

/** True only if pid is alive and its command line mentions our temp dir, so a recycled pid is never signalled. */
function ours(pid: number, dir: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
  } catch {
    return false;
  }
}

function running(s: State): boolean {
  return ours(s.pids.etcd, s.dir) && ours(s.pids.apiServer, s.dir);
}

async function up(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'max-requests-inflight': { type: 'string' },
      'max-mutating-requests-inflight': { type: 'string' },
      'apiserver-arg': { type: 'string', multiple: true },
    },
  });
  const existing = readState();
  if (existing && running(existing)) {
    console.error(`control plane already up: ${existing.server} (${existing.version}); kubeconfig ${existing.kubeconfigPath}`);
    return;
  }
  if (existing) await down();
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  const started = Date.now();
  const cp = await startControlPlane({
    detached: true,
    maxRequestsInflight: num(values['max-requests-inflight']),
    maxMutatingRequestsInflight: num(values['max-mutating-requests-inflight']),
    apiServerArgs: values['apiserver-arg'] ?? [],
    log: (line) => console.error(line),
  });
  const { etcd, apiServer } = cp.pids();
  if (apiServer === undefined) throw new Error('kube-apiserver pid missing after start');
  const state: State = {
    dir: cp.dir,
    kubeconfigPath: cp.kubeconfigPath,
    server: cp.server,
    version: cp.version,
    binDir: cp.binDir,
    pids: { etcd, apiServer },
  };
  await mkdir(dirname(STATE_FILE), { recursive: true });
  await writeFile(STATE_FILE, JSON.stringify(state, null, 2) + '\n');
  console.error(`control plane up in ${((Date.now() - started) / 1000).toFixed(1)}s: ${cp.server} (${cp.version})`);
  console.error(`logs and data: ${cp.dir}`);
  console.error(`use it: eval "$(hack/control-plane.sh env)"`);
}

async function down(): Promise<void> {
  const s = readState();
  if (!s) {
    console.error('control plane is not up (no state file)');
    return;
  }
  for (const pid of [s.pids.apiServer, s.pids.etcd]) {
    if (ours(pid, s.dir)) await terminate(pid);
  }
  await rm(s.dir, { recursive: true, force: true });
  await rm(STATE_FILE, { force: true });
  console.error(`control plane down; removed ${s.dir}`);
}

function env(): void {
  const s = readState();
  if (!s || !running(s)) {
    console.error('control plane is not up: run hack/control-plane.sh up');
    process.exitCode = 1;
    return;
  }
  const q = (v: string): string => `'${v.replaceAll("'", `'\\''`)}'`;
  console.log(`export KUBECONFIG=${q(s.kubeconfigPath)}`);
  console.log(`export PATH=${q(s.binDir)}:"$PATH"`);
}

function status(): void {
  const s = readState();
  if (!s) {
    console.log('down');
    process.exitCode = 1;
    return;
  }
  console.log(`${running(s) ? 'up' : 'broken (processes gone; run down)'} ${s.server} ${s.version} dir=${s.dir}`);
  if (!running(s)) process.exitCode = 1;
}

const [cmd, ...rest] = process.argv.slice(2);
switch (cmd) {
  case 'up':
    await up(rest);
    break;
  case 'down':
    await down();
    break;
  case 'env':
    env();
    break;
  case 'status':
    status();
    break;
  default:
    console.error('usage: hack/control-plane.sh up [--max-requests-inflight N] [--apiserver-arg=--flag=value ...] | down | env | status');
    process.exitCode = 2;
}
