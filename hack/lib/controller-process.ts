// Runs `podcidr-allocator run` from source as a child process, for the demo and the integration tests.
// Collects its JSON log lines, knows its metrics address, and stop() leaves no process behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** One parsed JSON log line; fields beyond these depend on the line. */
export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface ControllerOptions {
  readonly kubeconfig: string;
  /** Flags after `run`, e.g. ['--cluster-cidr', '10.233.64.0/18']. */
  readonly args: readonly string[];
  /** Default debug: tests and the demo read per-node lines such as "released podCIDRs of deleted node". */
  readonly logLevel?: string;
  /** How long to wait for the "serving health and metrics" line; default 60 s (a cold tsx start is slow). */
  readonly startTimeoutMs?: number;
  /** Each log line as it arrives. */
  readonly onLog?: (line: LogLine) => void;
}

export class ControllerExitedError extends Error {
  override name = 'ControllerExitedError';
}

export class ControllerProcess {
  readonly #child: ChildProcess;
  readonly #logs: LogLine[] = [];
  readonly #raw: string[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #exited: Promise<number | null>;
  readonly #killOnExit = (): void => {
    this.#child.kill('SIGKILL');
  };
  #exitCode: number | null | undefined;
  #address: string | undefined;

  private constructor(options: ControllerOptions) {
    const args = [
      '--import',
      'tsx',
      join(REPO_DIR, 'src/cli/main.ts'),
      'run',
      '--kubeconfig',
      options.kubeconfig,
      '--metrics-bind-address',
      '127.0.0.1:0',
      '--log-level',
      options.logLevel ?? 'debug',
      ...options.args,
    ];
    this.#child = spawn(join(REPO_DIR, 'node_modules/.bin/node'), args, {
      cwd: REPO_DIR,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    // A crashed parent must not leave the controller running.
    process.once('exit', this.#killOnExit);
    this.#exited = new Promise((done) => {
      this.#child.once('exit', (code) => {
        this.#exitCode = code;
        process.off('exit', this.#killOnExit);
        this.#notify();
        done(this.#exitCode);
      });
      this.#child.once('error', (err) => {
        this.#raw.push(`spawn failed: ${err.message}`);
        this.#exitCode = null;
        this.#notify();
        done(null);
      });
    });
    this.#read(options.onLog);
  }

  /** Starts the controller and resolves once it serves health and metrics. */
  static async start(options: ControllerOptions): Promise<ControllerProcess> {
    const proc = new ControllerProcess(options);
    try {
      const line = await proc.waitForLog((l) => l.msg === 'serving health and metrics', options.startTimeoutMs ?? 60_000);
      proc.#address = String(line.address);
    } catch (err) {
      await proc.stop();
      throw err;
    }
    return proc;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** host:port of /metrics, /healthz and /readyz. */
  get address(): string {
    if (this.#address === undefined) throw new Error('controller has not started serving yet');
    return this.#address;
  }

  /** Every JSON log line so far, oldest first. */
  get logs(): readonly LogLine[] {
    return this.#logs;
  }

  /** undefined while running. */
  get exitCode(): number | null | undefined {
    return this.#exitCode;
  }

  /** Resolves with the first line (already seen or coming) that matches; rejects on exit or timeout. */
  async waitForLog(match: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.#logs.find(match);
      if (found) return found;
      if (this.#exitCode !== undefined) {
        throw new ControllerExitedError(`controller exited (${String(this.#exitCode)}) before the expected log line\n${this.tail()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected log line not seen within ${timeoutMs} ms\n${this.tail()}`);
      await this.#nextLine(left);
    }
  }

  /** The text of /metrics. */
  async metrics(): Promise<string> {
    const res = await fetch(`http://${this.address}/metrics`, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
    return res.text();
  }

  /** The last lines of output (JSON and anything else), for failure messages. */
  tail(lines = 30): string {
    return this.#raw.slice(-lines).join('\n');
  }

  /** SIGTERM, SIGKILL after graceMs; resolves with the exit code (null when killed by a signal). */
  async stop(graceMs = 15_000): Promise<number | null> {
    if (this.#exitCode !== undefined) return this.#exitCode;
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    try {
      return await this.#exited;
    } finally {
      clearTimeout(timer);
    }
  }

  #read(onLog: ((line: LogLine) => void) | undefined): void {
    const { stdout, stderr } = this.#child;
    if (stdout) {
      createInterface({ input: stdout }).on('line', (text) => {
        this.#raw.push(text);
        const line = parseLogLine(text);
        if (line) {
          this.#logs.push(line);
          onLog?.(line);
        }
        this.#notify();
      });
    }
    if (stderr) createInterface({ input: stderr }).on('line', (text) => this.#raw.push(`stderr: ${text}`));
  }

  #notify(): void {
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  #nextLine(timeoutMs: number): Promise<void> {
    return new Promise((done) => {
      const timer = setTimeout(finish, timeoutMs);
      const waiters = this.#waiters;
      function finish(): void {
        clearTimeout(timer);
        waiters.delete(finish);
        done();
      }
      waiters.add(finish);
    });
  }
}

function parseLogLine(text: string): LogLine | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) return undefined;
    const record = value as Record<string, unknown>;
    if (typeof record.msg !== 'string' || typeof record.level !== 'string') return undefined;
    return { ...record, level: record.level, msg: record.msg };
  } catch {
    return undefined;
  }
}
