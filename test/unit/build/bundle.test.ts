// What the image ships is the bundle hack/bundle.ts writes: main.js and the kubeconfig worker, each one
// file with its dependencies. Both must behave exactly as the sources do, with no node_modules around.

import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleProgram, WORKER_BUNDLE } from '../../../hack/bundle.js';
import { askKubeconfigWorker } from '../../../src/kube/config.js';
import type { KubeconfigJob } from '../../../src/kube/kubeconfig-worker.js';
import { type Outcome, outcomeOf, repo, runCli } from '../../cli-process.js';

// Under the system's temporary directory, where no node_modules can stand in for a missing dependency.
const dir = mkdtempSync(join(tmpdir(), 'bundle-test-'));
const source = join(repo, 'src/kube/kubeconfig-worker.ts');
let main = '';
let bundle = '';

beforeAll(async () => {
  // As in the image: package.json (for --version) one level above dist/bundle/.
  copyFileSync(join(repo, 'package.json'), join(dir, 'package.json'));
  main = await bundleProgram(join(dir, 'dist/bundle'));
  bundle = join(dir, 'dist/bundle', WORKER_BUNDLE);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, [...lines, ''].join('\n'));
  return path;
}

/** Runs the bundled main.js from an empty working directory, with only PATH and HOME set. */
function runBundle(args: readonly string[]): Promise<Outcome> {
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
  return outcomeOf(spawn(process.execPath, [main, ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] }));
}

const b64 = (text: string) => Buffer.from(text).toString('base64');

/** A CA file named relative to the kubeconfig, a token and a tls-server-name. */
function tokenConfig(): string {
  writeFileSync(join(dir, 'ca.pem'), 'CA FROM FILE');
  return file('token.yaml', [
    'apiVersion: v1',
    'current-context: x',
    'clusters: [{name: c, cluster: {server: "https://10.0.0.1:6443", certificate-authority: ca.pem, tls-server-name: api}}]',
    'contexts: [{name: x, context: {cluster: c, user: u}}]',
    'users: [{name: u, user: {token: secret}}]',
  ]);
}

function certConfig(): string {
  return file('certs.yaml', [
    'apiVersion: v1',
    'current-context: x',
    `clusters: [{name: c, cluster: {server: "https://10.0.0.2:6443", certificate-authority-data: ${b64('CA')}}}]`,
    'contexts: [{name: x, context: {cluster: c, user: u}}]',
    `users: [{name: u, user: {client-certificate-data: ${b64('CERT')}, client-key-data: ${b64('KEY')}}}]`,
  ]);
}

function execConfig(): string {
  const plugin = join(dir, 'plugin.sh');
  const credential = '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-exec"}}';
  writeFileSync(plugin, `#!/bin/sh\necho '${credential}'\n`, { mode: 0o755 });
  return file('exec.yaml', [
    'apiVersion: v1',
    'current-context: x',
    'clusters: [{name: c, cluster: {server: "https://10.0.0.3:6443"}}]',
    'contexts: [{name: x, context: {cluster: c, user: u}}]',
    `users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: ${plugin}, interactiveMode: Never}}}]`,
  ]);
}

const jobs: Array<[string, () => KubeconfigJob]> = [
  ['a token and a CA file relative to the kubeconfig', () => ({ files: [tokenConfig()], from: '--kubeconfig' })],
  ['client certificate data, with --master', () => ({ files: [certConfig()], from: '--kubeconfig', master: 'http://127.0.0.1:8001' })],
  ['an exec credential plugin', () => ({ files: [execConfig()], from: '--kubeconfig' })],
  ['a missing file', () => ({ files: [join(dir, 'absent.yaml')], from: 'KUBECONFIG' })],
  ['a file that is not YAML', () => ({ files: [file('bad.yaml', ['clusters: [unclosed'])], from: '--kubeconfig' })],
];

describe('the bundled kubeconfig worker', () => {
  it.each(jobs)('answers as the source worker does: %s', async (_name, makeJob) => {
    const job = makeJob();
    const expected = await askKubeconfigWorker(source, job);
    expect(await askKubeconfigWorker(bundle, job)).toEqual(expected);
  });

  it('really resolves credentials (the comparison is not between two failures)', async () => {
    const answer = await askKubeconfigWorker(bundle, { files: [tokenConfig()], from: '--kubeconfig' });
    expect(answer).toMatchObject({
      ok: true,
      server: 'https://10.0.0.1:6443',
      tls: { ca: 'CA FROM FILE', servername: 'api' },
      headers: { Authorization: 'Bearer secret' },
    });
  });
});

describe('the bundled main.js', () => {
  it('leaves the Kubernetes client library to the kubeconfig worker', () => {
    // The source maps name every bundled module.
    const sources = (path: string): string[] => (JSON.parse(readFileSync(`${path}.map`, 'utf8')) as { sources: string[] }).sources;
    const library = (source: string): boolean => source.includes('node_modules/@kubernetes/client-node/');
    expect(sources(main).filter(library)).toEqual([]);
    expect(sources(bundle).some(library)).toBe(true);
    expect(readFileSync(main, 'utf8')).toMatch(/\/\/# sourceMappingURL=main\.js\.map\n$/);
  });

  it('holds only ASCII, which V8 keeps as one byte a character', () => {
    // One other character and the whole script's source takes two bytes a character in the heap.
    for (const path of [main, bundle]) expect(readFileSync(path).every((byte) => byte < 0x80)).toBe(true);
  });

  it('prints the version of package.json', async () => {
    const outcome = await runBundle(['--version']);
    expect(outcome).toMatchObject({ code: 0, stderr: '' });
    expect(outcome.stdout.trim()).toBe((await import('../../../package.json', { with: { type: 'json' } })).default.version);
  });

  it.each([
    ['--help', ['--help'], 0],
    ['run --help', ['run', '--help'], 0],
    ['a bad flag', ['run', '--cluster-cidr', '10.0.0.0/8', '--node-cidr-mask-size', '99'], 2],
    ['an unknown subcommand', ['allocate'], 2],
  ])('answers %s as the sources do', { timeout: 30_000 }, async (_name, args, code) => {
    const [bundled, fromSource] = await Promise.all([runBundle(args), runCli(args)]);
    expect(bundled).toEqual(fromSource);
    expect(bundled.code).toBe(code);
  });
});
