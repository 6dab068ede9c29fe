// Runs the real entry point as an operator would: a child process through tsx (so a half-built tree
// elsewhere cannot break it), with a minimal environment so the host's own settings cannot leak in.

import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createServer } from 'node:net';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export const repo = fileURLToPath(new URL('../', import.meta.url));

export interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Send SIGTERM once stdout satisfies this (for commands that run until stopped). */
  readonly stopWhen?: (stdout: string) => boolean;
}

/** Only what node and tsx need: no PODCIDR_ALLOCATOR_* or KUBECONFIG of the host. */
function minimalEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** Starts `src/cli/main.ts args…` and hands back the running child, for tests that watch it live. */
export function spawnCli(args: readonly string[], env: Record<string, string> = {}): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repo,
    env: { ...minimalEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs `src/cli/main.ts args…` to its end and collects its output and exit code. */
export function runCli(args: readonly string[], env: Record<string, string> = {}, options: RunOptions = {}): Promise<Outcome> {
  return outcomeOf(spawnCli(args, env), options);
}

/** Waits for child to end, collecting its output and exit code. */
export function outcomeOf(child: ChildProcessByStdio<null, Readable, Readable>, options: RunOptions = {}): Promise<Outcome> {
  const { stopWhen } = options;
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let stopped = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!stopped && stopWhen?.(stdout)) {
        stopped = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A loopback port nothing listens on: bound by us, then released. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
