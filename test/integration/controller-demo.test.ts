// `npm run demo` end to end with small settings: its table and capacity line, the released range, a clean
// exit, and nothing left behind, whether it finishes, is interrupted with Ctrl-C, or is called wrongly.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { REPO_DIR } from '../../hack/lib/controller-process.js';
import { isAlive } from '../../hack/lib/control-plane.js';
import { eventually } from '../support/eventually.js';
import { isInside } from './controller-harness.js';
import { describeWithControlPlane } from './harness.js';

interface DemoRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runDemo(args: string[], { interruptAfter }: { interruptAfter?: string } = {}): Promise<DemoRun> {
  const child = spawn(join(REPO_DIR, 'node_modules/.bin/node'), ['--import', 'tsx', 'hack/demo.ts', ...args], {
    cwd: REPO_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: DemoRun = { code: null, stdout: '', stderr: '' };
  let interrupted = false;
  child.stdout.on('data', (chunk: Buffer) => {
    run.stdout += chunk.toString();
    if (interruptAfter !== undefined && !interrupted && run.stdout.includes(interruptAfter)) {
      interrupted = true;
      child.kill('SIGINT');
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      run.code = code;
      resolve(run);
    });
  });
}

/** The pids and temp dir the demo printed for its control plane and allocator. */
function startedBy(stdout: string): { pids: number[]; dirs: string[] } {
  const pids = [...stdout.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]));
  const dirs = [...stdout.matchAll(/logs in (\S+)/g)].map((m) => m[1] ?? '');
  return { pids, dirs };
}

async function expectNothingLeft(stdout: string): Promise<void> {
  const { pids, dirs } = startedBy(stdout);
  expect(pids.length).toBeGreaterThanOrEqual(2);
  expect(dirs).toHaveLength(1);
  await eventually(async () => (pids.every((pid) => !isAlive(pid)) ? true : undefined), { timeoutMs: 10_000 });
  for (const dir of dirs) expect(existsSync(dir), dir).toBe(false);
}

describeWithControlPlane('npm run demo', () => {
  it('prints every node with its podCIDR and the capacity, releases a deleted node\'s range and exits 0', async () => {
    const run = await runDemo(['--nodes', '3', '--cluster-cidr', '10.240.0.0/26', '--node-cidr-mask-size', '28']);

    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    const lines = run.stdout.split('\n');
    const header = lines.findIndex((l) => /^NODE\s+ROLE\s+INTERNAL-IP\s+PODCIDR$/.test(l));
    expect(header).toBeGreaterThanOrEqual(0);
    const rows = lines.slice(header + 1, header + 4).map((l) => l.split(/\s+/));
    expect(rows.map((r) => [r[0], r[1]])).toEqual([
      ['cp-1', 'control-plane'],
      ['worker-1', 'worker'],
      ['worker-2', 'worker'],
    ]);
    const cidrs = rows.map((r) => r[3] ?? '');
    for (const cidr of cidrs) expect(isInside('10.240.0.0/26', cidr), cidr).toBe(true);
    expect(new Set(cidrs).size).toBe(3);
    expect(lines).toContain('10.240.0.0/26: 4 node subnets of /28, 14 pod addresses each, 3 used, 1 free');
    expect(run.stdout).toContain(`Deleting node worker-2 (${cidrs[2]})`);
    expect(run.stdout).toContain(`released ${cidrs[2]}`);
    expect(run.stdout).toMatch(/podcidr_allocator_range_quarantined_cidrs 1\b/);
    expect(run.stdout).toMatch(/worker-3 got 10\.240\.0\.\d+\/28/);
    expect(run.stdout.trimEnd().endsWith('Done.')).toBe(true);
    await expectNothingLeft(run.stdout);
  });

  it('stops everything it started when interrupted with Ctrl-C', async () => {
    const run = await runDemo(['--nodes', '2', '--cluster-cidr', '10.240.0.0/26', '--node-cidr-mask-size', '28'], {
      interruptAfter: 'serving metrics at',
    });

    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(130);
    expect(run.stderr).toContain('interrupted; cleaning up');
    await expectNothingLeft(run.stdout);
  });

  it('refuses bad settings with exit 2 before starting anything', async () => {
    const run = await runDemo(['--nodes', '4', '--cluster-cidr', '10.240.0.0/26', '--node-cidr-mask-size', '28']);

    expect(run.code).toBe(2);
    expect(run.stderr).toContain('holds 4 /28 subnets; the demo needs --nodes + 1');
    expect(run.stdout).toBe('');
  });

  it.each([
    [['--cluster', '--nodes', '9'], '--nodes must be an integer in 1..8 with --cluster, got 9'],
    [['--cluster', '--cluster-cidr', 'fd00:10:244::/56', '--node-cidr-mask-size', '64'], 'the cluster in a box is IPv4 only'],
  ])('refuses %j with exit 2 before starting anything', async (args, message) => {
    const run = await runDemo(args);

    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
    expect(run.stdout).toBe('');
  });
});
