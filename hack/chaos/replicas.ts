// Controller replicas as child processes for the chaos run: start, SIGKILL, SIGSTOP, graceful stop.
// Every exit is recorded with its cause (killed by us, or not), and each replica's JSON log is kept on disk.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface ReplicaExit {
  readonly name: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** True when the runner sent the signal that ended it (SIGKILL for chaos, SIGTERM at the end). */
  readonly expected: boolean;
  /** The last fatal/error log message before the exit, if any. */
  readonly lastFatal: string | undefined;
}

export interface LogRecord {
  readonly level?: number | string;
  readonly msg?: string;
  readonly [key: string]: unknown;
}

export interface ReplicaOptions {
  readonly name: string;
  readonly repo: string;
  readonly args: readonly string[];
  readonly logDir: string;
  readonly onRecord?: (replica: Replica, record: LogRecord) => void;
  readonly onExit: (exit: ReplicaExit) => void;
}

const FATAL = 60;
const LEVELS: Readonly<Record<string, number>> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

/** pino's level as a number, whether the logger writes labels ("error") or numbers (50). */
export function levelOf(record: LogRecord): number {
  const level = record.level;
  return typeof level === 'number' ? level : (LEVELS[level ?? ''] ?? 0);
}

export class Replica {
  readonly name: string;
  /** The leader-election identity, known once the replica logged its configuration. */
  identity: string | undefined;
  /** host:port of its health and metrics server, once it is serving. */
  address: string | undefined;
  readonly #child: ChildProcess;
  readonly #log: WriteStream;
  #expectedSignal: NodeJS.Signals | undefined;
  #lastFatal: string | undefined;
  #exited = false;
  readonly exited: Promise<ReplicaExit>;

  constructor(o: ReplicaOptions) {
    this.name = o.name;
    this.#log = createWriteStream(join(o.logDir, `${o.name}.log`));
    this.#child = spawn(join(o.repo, 'node_modules/.bin/node'), ['--import', 'tsx', 'src/cli/main.ts', ...o.args], {
      cwd: o.repo,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', POD_NAME: o.name },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines = createInterface({ input: this.#stdout() });
    lines.on('line', (line) => {
      this.#log.write(`${line}\n`);
      const record = parseRecord(line);
      if (record === undefined) return;
      this.#observe(record);
      o.onRecord?.(this, record);
    });
    this.#child.stderr?.on('data', (chunk: Buffer) => this.#log.write(chunk));
    this.exited = new Promise((resolve) => {
      this.#child.on('exit', (code, signal) => {
        this.#exited = true;
        const exit: ReplicaExit = {
          name: this.name,
          code,
          signal,
          // SIGKILL shows as the signal; a handled SIGTERM ends with an exit code instead.
          expected: this.#expectedSignal !== undefined && (signal === this.#expectedSignal || this.#expectedSignal === 'SIGTERM'),
          lastFatal: this.#lastFatal,
        };
        // Let buffered lines reach the log file before the stream closes.
        setTimeout(() => this.#log.end(), 200);
        o.onExit(exit);
        resolve(exit);
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get alive(): boolean {
    return !this.#exited;
  }

  kill(): void {
    this.#signal('SIGKILL');
  }

  /** SIGSTOP for ms, then SIGCONT: a stalled process whose lease may expire meanwhile. */
  async stall(ms: number): Promise<void> {
    if (!this.alive || this.#child.pid === undefined) return;
    process.kill(this.#child.pid, 'SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (this.alive) process.kill(this.#child.pid, 'SIGCONT');
  }

  /** SIGTERM once it serves (a process still loading has no handler yet), and wait for its exit. */
  async stop(): Promise<ReplicaExit> {
    for (let i = 0; i < 120 && this.alive && this.address === undefined; i++) await new Promise((r) => setTimeout(r, 250));
    this.#signal('SIGTERM');
    return this.exited;
  }

  #signal(signal: NodeJS.Signals): void {
    if (!this.alive) return;
    this.#expectedSignal = signal;
    this.#child.kill(signal);
  }

  #stdout(): NodeJS.ReadableStream {
    const out = this.#child.stdout;
    if (out === null) throw new Error('replica stdout is not a pipe');
    return out;
  }

  #observe(record: LogRecord): void {
    if (record.msg === 'configuration') this.identity = identityOf(record);
    if (record.msg === 'serving health and metrics' && typeof record.address === 'string') this.address = record.address;
    if (levelOf(record) >= FATAL && typeof record.msg === 'string') this.#lastFatal = record.msg;
  }
}

function parseRecord(line: string): LogRecord | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? (value as LogRecord) : undefined;
  } catch {
    return undefined;
  }
}

function identityOf(record: LogRecord): string | undefined {
  const config = record.config;
  if (typeof config !== 'object' || config === null) return undefined;
  const le = (config as { leaderElection?: { identity?: unknown } }).leaderElection;
  return typeof le?.identity === 'string' ? le.identity : undefined;
}
