// Starts one contestant (raw client, upstream kube-controller-manager, podcidr-allocator) as its own process.
// Each is a child whose pid the bench reads /proc of (peak RSS, CPU) and stops by that pid only.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { terminate } from '../../lib/control-plane.js';

/** ours-json: ours reading Nodes as JSON (--kube-api-content-type=application/json), to weigh the encodings. */
export type ContestantName = 'raw' | 'upstream' | 'ours' | 'ours-json';
export const CONTESTANTS: readonly ContestantName[] = ['raw', 'upstream', 'ours'];
export const ALL_CONTESTANTS: readonly ContestantName[] = [...CONTESTANTS, 'ours-json'];

export const REPO = resolve(import.meta.dirname, '../../..');

/** The node flags of the image's ENTRYPOINT (between "node" and the script). */
export function imageNodeFlags(): string[] {
  const line = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(readFileSync(join(REPO, 'Dockerfile'), 'utf8'))?.[1];
  const entry = line === undefined ? [] : (JSON.parse(line) as string[]);
  return entry.slice(1).filter((arg) => arg.startsWith('--'));
}

/** The image's ENV settings (NODE_ENV, the malloc tuning), as KEY=value pairs. */
export function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [, pairs] of readFileSync(join(REPO, 'Dockerfile'), 'utf8').matchAll(/^ENV\s+(.+)$/gm)) {
    for (const pair of pairs?.split(/\s+/) ?? []) {
      const at = pair.indexOf('=');
      if (at > 0) env[pair.slice(0, at)] = pair.slice(at + 1);
    }
  }
  return env;
}

/** NODE_OPTIONS as the base Deployment sets it (the heap cap under the memory limit). */
export function deploymentNodeOptions(): string[] {
  const yaml = readFileSync(join(REPO, 'manifests/base/deployment.yaml'), 'utf8');
  const value = /- name: NODE_OPTIONS\s*\n\s*value:\s*(.+)$/m.exec(yaml)?.[1] ?? '';
  return value.split(' ').filter((flag) => flag !== '');
}

/** Ours runs with the node flags it ships with: the image's, then the Deployment's NODE_OPTIONS. */
export function shippedNodeFlags(): string[] {
  return [...imageNodeFlags(), ...deploymentNodeOptions()];
}
const NODE = join(REPO, 'node_modules/.bin/node');
const TSX = join(REPO, 'node_modules/tsx/dist/esm/index.mjs');

export interface Limits {
  readonly name: string;
  readonly qps: number;
  readonly burst: number;
}

export interface ContestantOptions {
  readonly name: ContestantName;
  readonly kubeconfigPath: string;
  readonly limits: Limits;
  readonly clusterCidr: string;
  readonly nodeCidrMaskSize: number;
  /** Workers (patches in flight): upstream's RangeAllocator uses 30; ours and raw get the same. */
  readonly workers: number;
  readonly binDir: string;
  /** dist entry of podcidr-allocator (…/src/cli/main.js); from source through tsx when absent. */
  readonly oursEntry?: string;
  /** Node flags for ours; default shippedNodeFlags(). */
  readonly oursNodeArgs?: readonly string[];
  /** raw watches only these Nodes (the shared CI control plane holds others' too). */
  readonly labelSelector?: string;
  readonly logPath: string;
}

export interface Running {
  readonly pid: number;
  /** VmHWM (peak resident set) and CPU seconds so far, from /proc. */
  usage(): { peakRssMb: number; cpuSeconds: number };
  exited(): boolean;
  stop(): Promise<void>;
}

function command(o: ContestantOptions): { bin: string; args: string[]; env?: Record<string, string> } {
  const { qps, burst } = o.limits;
  switch (o.name) {
    case 'raw':
      return {
        bin: NODE,
        args: ['--import', TSX, join(import.meta.dirname, 'raw.ts'), o.kubeconfigPath, String(qps), String(burst),
          String(o.workers), ...(o.labelSelector ? [o.labelSelector] : [])],
      };
    case 'upstream':
      return {
        bin: join(o.binDir, 'kube-controller-manager'),
        args: [
          '--controllers=nodeipam',
          '--allocate-node-cidrs=true',
          `--cluster-cidr=${o.clusterCidr}`,
          `--node-cidr-mask-size=${o.nodeCidrMaskSize}`,
          '--leader-elect=false',
          `--kubeconfig=${o.kubeconfigPath}`,
          `--kube-api-qps=${qps}`,
          `--kube-api-burst=${burst}`,
          '--use-service-account-credentials=false',
          '--secure-port=0',
          '--authentication-skip-lookup=true',
        ],
      };
    case 'ours':
    case 'ours-json': {
      const entry = o.oursEntry ? [o.oursEntry] : ['--import', TSX, join(REPO, 'src/cli/main.ts')];
      return {
        bin: NODE,
        // The image's environment too: its malloc settings are part of what a replica runs with.
        env: imageEnv(),
        args: [
          ...(o.oursNodeArgs ?? shippedNodeFlags()),
          ...entry,
          'run',
          `--kubeconfig=${o.kubeconfigPath}`,
          `--cluster-cidr=${o.clusterCidr}`,
          `--node-cidr-mask-size=${o.nodeCidrMaskSize}`,
          '--leader-elect=false',
          `--kube-api-qps=${qps}`,
          `--kube-api-burst=${burst}`,
          `--concurrent-node-syncs=${o.workers}`,
          '--release-quarantine=0',
          '--metrics-bind-address=127.0.0.1:0',
          ...(o.name === 'ours-json' ? ['--kube-api-content-type=application/json'] : []),
        ],
      };
    }
  }
}

export function startContestant(o: ContestantOptions): Running {
  const { bin, args, env } = command(o);
  const fd = openSync(o.logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(bin, args, { stdio: ['ignore', fd, fd], cwd: REPO, env: { ...process.env, ...env } });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${o.name}: ${bin}`);
  let exited = false;
  let last = { peakRssMb: 0, cpuSeconds: 0 };
  child.on('exit', () => (exited = true));
  child.on('error', () => (exited = true));
  const usage = (): { peakRssMb: number; cpuSeconds: number } => {
    if (!exited) last = readUsage(pid) ?? last;
    return last;
  };
  return {
    pid,
    usage,
    exited: () => exited,
    stop: async () => {
      usage();
      await terminate(pid, 10_000);
    },
  };
}

const TICKS_PER_SECOND = 100;

/** VmHWM and CPU seconds of a process from /proc; undefined once it is gone. */
export function readUsage(pid: number): { peakRssMb: number; cpuSeconds: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwmKb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
    // An exited child not yet reaped has no memory lines: keep the last reading.
    if (Number.isNaN(hwmKb)) return undefined;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ")" of the command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { peakRssMb: hwmKb / 1024, cpuSeconds: ticks / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/**
 * Resolves once the process has used less than 0.05 s of CPU in a whole second, or after timeoutMs:
 * a restarted contestant may serve a new node before its list is in (ours from a handoff), and its
 * peak memory is only known once that list is done.
 */
export async function untilIdle(proc: Running, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let before = proc.usage().cpuSeconds;
  while (!proc.exited() && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const now = proc.usage().cpuSeconds;
    if (now - before < 0.05) return;
    before = now;
  }
}
