// The run command must not load the Kubernetes client library: importing it costs ~35 MB of memory.
// A child process records every module it loads (a load hook) while importing a module graph.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repo } from '../../cli-process.js';

const LIBRARY = '/node_modules/@kubernetes/client-node/';

/** Imports file through tsx with a load hook and returns the URLs of every module loaded. */
async function modulesLoadedBy(file: string): Promise<string[]> {
  const probe = [
    "import { registerHooks } from 'node:module';",
    'const loaded = [];',
    'registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });',
    `await import(${JSON.stringify(join(repo, file))});`,
    'process.stdout.write(JSON.stringify(loaded));',
  ].join('\n');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], {
    cwd: repo,
  });
  return JSON.parse(stdout) as string[];
}

describe('the run command module graph', () => {
  it('sees the library when a module does import it', async () => {
    const loaded = await modulesLoadedBy('src/kube/kubeconfig-worker.ts');
    expect(loaded.filter((url) => url.includes(LIBRARY)).length).toBeGreaterThan(100);
  });

  it('loads nothing of the library when the run command is imported', async () => {
    const loaded = await modulesLoadedBy('src/cli/run.ts');
    expect(loaded.some((url) => url.endsWith('/src/cli/run.ts'))).toBe(true);
    expect(loaded.filter((url) => url.includes(LIBRARY))).toEqual([]);
  });
});
