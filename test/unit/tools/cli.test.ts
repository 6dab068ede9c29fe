// Runs `plan` and `check` through the real entry point in a child process (tsx), as an operator would,
// and checks exit codes and output. check's exits 0 and 1 need an API server: see test/integration/check.test.ts.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { PlanJson } from '../../../src/tools/report.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(args: readonly string[], env: Record<string, string> = {}): Promise<Outcome> {
  // Only what node and tsx need, so that the host's own PODCIDR_ALLOCATOR_* or KUBECONFIG cannot leak in.
  const base: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR']) {
    const value = process.env[name];
    if (value !== undefined) base[name] = value;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: repo,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

const quickStart = ['--cluster-cidr', '10.233.64.0/18', '--node-cidr-mask-size', '24', '--service-cluster-ip-range', '10.233.0.0/18'];

describe('podcidr-allocator plan', () => {
  it('exits 0 and prints the plan of the Quick start cluster', async () => {
    const { code, stdout, stderr } = await cli(['plan', ...quickStart]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('node subnets             64: 10.233.64.0/24 … 10.233.127.0/24');
    expect(stdout).toContain('pod addresses per node   254');
    expect(stdout).toContain('the cluster tops out at 64 nodes');
  });

  it('exits 0 with the JSON object for --output json', async () => {
    const { code, stdout } = await cli(['plan', '--cluster-cidr=fd00:10:244::/48', '--output=json']);
    expect(code).toBe(0);
    const plan = JSON.parse(stdout) as PlanJson;
    expect(plan).toMatchObject({ report: 'plan', version: 1, maxNodes: 65_536 });
    expect(plan.ranges[0]?.podAddressesPerNode).toBe('18446744073709551615');
  });

  it('exits 2 on bad flags with one line per problem and no stack trace', async () => {
    const { code, stdout, stderr } = await cli(['plan', '--cluster-cidr=10.233.64.0/33', '--output=yaml', '--master=https://x']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(lines(stderr)).toEqual([
      '--master: unknown flag',
      '--cluster-cidr: invalid CIDR "10.233.64.0/33": prefix length 33 is longer than the 32 bits of an IPv4 address',
      '--output: must be one of text, json, got "yaml"',
    ]);
  });
});

describe('podcidr-allocator check', () => {
  const dir = mkdtempSync(join(tmpdir(), 'podcidr-check-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 2 on bad flags', async () => {
    const { code, stderr } = await cli(['check', '--node-cidr-mask-size=24']);
    expect(code).toBe(2);
    expect(lines(stderr)).toEqual(['--cluster-cidr: required']);
  });

  it('exits 2 when the kubeconfig cannot be read', async () => {
    const missing = join(dir, 'missing.yaml');
    const { code, stdout, stderr } = await cli(['check', '--cluster-cidr=10.233.64.0/18', `--kubeconfig=${missing}`]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe(`check: cannot read kubeconfig ${missing} (from --kubeconfig): no such file\n`);
  });

  it('exits 3 with one line when the API server cannot be reached', async () => {
    const port = await closedPort();
    const kubeconfig = join(dir, 'closed.yaml');
    writeFileSync(kubeconfig, kubeconfigFor(`http://127.0.0.1:${port}`));
    const { code, stdout, stderr } = await cli(['check', '--cluster-cidr=10.233.64.0/18', `--kubeconfig=${kubeconfig}`]);
    expect(stdout).toBe('');
    expect(code).toBe(3);
    expect(lines(stderr)).toHaveLength(1);
    expect(stderr).toContain(`check: cannot list nodes from http://127.0.0.1:${port}: `);
    expect(stderr).toContain('ECONNREFUSED');
  });
});

/** A loopback port nothing listens on: bound by us, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function kubeconfigFor(server: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters: [{name: c, cluster: {server: "' + server + '"}}]',
    'users: [{name: u, user: {token: t}}]',
    'contexts: [{name: x, context: {cluster: c, user: u}}]',
    'current-context: x',
    '',
  ].join('\n');
}
