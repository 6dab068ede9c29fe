// Runs `plan` and `check` through the real entry point in a child process (tsx), as an operator would,
// and checks exit codes and output. check's exits 0 and 1 need an API server: see test/integration/check.test.ts.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PlanJson } from '../../../../src/cli/commands/report.js';
import { closedPort, runCli as cli } from '../../../cli-process.js';

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
    const { code, stderr } = await cli(['check', '--cluster-cidr=10.0.0.0/8', '--node-cidr-mask-size=nine']);
    expect(code).toBe(2);
    expect(lines(stderr)).toHaveLength(1);
    expect(lines(stderr)[0]).toMatch(/^--node-cidr-mask-size: /);
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
