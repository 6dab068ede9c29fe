// The built image resolves kubeconfigs with a one-file bundle of the worker and the client library
// (hack/bundle-worker.ts). It must answer every job exactly as the worker run from source does.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleKubeconfigWorker } from '../../../hack/bundle-worker.js';
import { askKubeconfigWorker } from '../../../src/kube/config.js';
import type { KubeconfigJob } from '../../../src/kube/kubeconfig-worker.js';
import { repo } from '../../cli-process.js';

const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-bundle-test-'));
const source = join(repo, 'src/kube/kubeconfig-worker.ts');
let bundle = '';

beforeAll(async () => {
  bundle = await bundleKubeconfigWorker(dir);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, [...lines, ''].join('\n'));
  return path;
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
