// Runs the host's networking and cgroup commands; a failure carries the command and its stderr.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function sh(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`);
  }
}

/** Like sh, for cleanup: what is already gone is not an error. */
export async function shQuiet(cmd: string, args: string[]): Promise<void> {
  try {
    await run(cmd, args);
  } catch {
    // gone already
  }
}
