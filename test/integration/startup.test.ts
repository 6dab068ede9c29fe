// Starting with the API server unreachable: the process keeps running, retries with growing delays and
// says so in its log, stays unready, and still stops cleanly on SIGTERM. Needs no control plane.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { closedPort, spawnCli } from '../cli-process.js';

const dir = mkdtempSync(join(tmpdir(), 'podcidr-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function kubeconfig(server: string): string {
  const path = join(dir, 'unreachable.kubeconfig');
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'current-context: c',
      'contexts: [{name: c, context: {cluster: k, user: u}}]',
      `clusters: [{name: k, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]`,
      'users: [{name: u, user: {token: t}}]',
      '',
    ].join('\n'),
  );
  return path;
}

interface Record_ {
  readonly msg?: string;
  readonly address?: string;
  readonly delayMs?: number;
  readonly attempt?: number;
}

describe('run with the API server unreachable at start', () => {
  it('keeps running, backs off, stays unready and exits 0 on SIGTERM', async () => {
    const port = await closedPort();
    const path = kubeconfig(`https://127.0.0.1:${port}`);
    const child = spawnCli([
      'run',
      `--kubeconfig=${path}`,
      '--cluster-cidr=10.244.0.0/16',
      '--metrics-bind-address=127.0.0.1:0',
      '--leader-elect-resource-namespace=default',
    ]);
    const records: Record_[] = [];
    let buffered = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('{')) records.push(JSON.parse(line) as Record_);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );

    try {
      let address: string | undefined;
      for (let i = 0; i < 240 && address === undefined; i++) {
        address = records.find((r) => r.msg === 'serving health and metrics')?.address;
        if (address === undefined) await sleep(250);
      }
      expect(address).toBeDefined();
      const servingAt = records.length;

      // Watch for about five seconds: readiness and the retries the log reports meanwhile.
      const ready: number[] = [];
      for (let i = 0; i < 10; i++) {
        await sleep(500);
        ready.push((await fetch(`http://${address ?? ''}/readyz`)).status);
      }
      expect(child.exitCode).toBeNull();
      expect(ready.every((status) => status === 503)).toBe(true);

      const retries = records.filter((r) => r.msg === 'node list failed; retrying');
      const delays = retries.map((r) => r.delayMs ?? 0);
      // 0.8 s doubling: about three attempts in five seconds; a tight loop would log hundreds.
      expect(retries.length).toBeGreaterThanOrEqual(2);
      expect(retries.length).toBeLessThanOrEqual(6);
      for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThan(delays[i - 1] ?? 0);
      // The elector retries on its own period (2 s by default), not in a loop either.
      const leaseErrors = records.slice(servingAt).filter((r) => r.msg === 'error retrieving lease');
      expect(leaseErrors.length).toBeGreaterThanOrEqual(1);
      expect(leaseErrors.length).toBeLessThanOrEqual(6);
      expect(records.some((r) => r.msg === 'became leader')).toBe(false);
    } finally {
      child.kill('SIGTERM');
    }
    const { code, signal } = await exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(stderr).toBe('');
    expect(records.at(-1)?.msg).toBe('stopped');
  });
});
