import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KubeConfigError, loadKubeConfig } from '../../../src/kube/config.js';

const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function kubeconfig(name: string, server: string, context = 'ctx', cluster = 'c1'): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      `current-context: ${context}`,
      'clusters:',
      `- name: ${cluster}`,
      '  cluster:',
      `    server: ${server}`,
      'users:',
      `- name: u-${cluster}`,
      '  user:',
      '    token: abc',
      'contexts:',
      `- name: ${context}`,
      '  context:',
      `    cluster: ${cluster}`,
      `    user: u-${cluster}`,
      '',
    ].join('\n'),
  );
  return file;
}

function serviceAccountRoot(): string {
  const root = mkdtempSync(join(dir, 'sa-'));
  const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
  mkdirSync(sa, { recursive: true });
  writeFileSync(join(sa, 'token'), 'token');
  writeFileSync(join(sa, 'ca.crt'), 'ca');
  return root;
}

async function loadError(fn: () => Promise<unknown>): Promise<KubeConfigError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof KubeConfigError) return err;
    throw err;
  }
  throw new Error('expected a KubeConfigError');
}

describe('loadKubeConfig', () => {
  it('reads the file given with --kubeconfig', async () => {
    const kc = await loadKubeConfig({ kubeconfig: kubeconfig('a.yaml', 'https://10.0.0.1:6443') }, { env: {} });
    expect(kc.server).toBe('https://10.0.0.1:6443');
  });

  it('prefers --kubeconfig over in-cluster settings and KUBECONFIG', async () => {
    const file = kubeconfig('b.yaml', 'https://flag:6443');
    const other = kubeconfig('b2.yaml', 'https://env:6443');
    const kc = await loadKubeConfig(
      { kubeconfig: file },
      {
        env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', KUBECONFIG: other },
        inClusterPrefix: serviceAccountRoot(),
      },
    );
    expect(kc.server).toBe('https://flag:6443');
  });

  it('lets --master override the server of the kubeconfig', async () => {
    const kc = await loadKubeConfig(
      { kubeconfig: kubeconfig('c.yaml', 'https://10.0.0.1:6443'), master: 'https://127.0.0.1:7443' },
      { env: {} },
    );
    expect(kc.server).toBe('https://127.0.0.1:7443');
    expect((await kc.credentials()).headers).toEqual({ Authorization: 'Bearer abc' });
  });

  it('uses the service account when running in a cluster', async () => {
    const root = serviceAccountRoot();
    const kc = await loadKubeConfig(
      {},
      { env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, inClusterPrefix: root },
    );
    expect(kc.server).toBe('https://[fd00::1]:443');
    expect(await kc.credentials()).toEqual({ tls: { ca: 'ca' }, headers: { Authorization: 'Bearer token' } });
  });

  it('falls back to KUBECONFIG when the service-account token is missing', async () => {
    const file = kubeconfig('d.yaml', 'https://env:6443');
    const kc = await loadKubeConfig(
      {},
      {
        env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', KUBECONFIG: file },
        inClusterPrefix: join(dir, 'nowhere'),
      },
    );
    expect(kc.server).toBe('https://env:6443');
  });

  it('merges several KUBECONFIG files, keeping the first current-context', async () => {
    const first = kubeconfig('e1.yaml', 'https://one:6443', 'one', 'c-one');
    const second = kubeconfig('e2.yaml', 'https://two:6443', 'two', 'c-two');
    const kc = await loadKubeConfig({}, { env: { KUBECONFIG: [first, second].join(delimiter) } });
    expect(kc.server).toBe('https://one:6443');
  });

  it('never falls back to localhost:8080 when nothing is configured', async () => {
    const err = await loadError(() => loadKubeConfig({}, { env: {}, inClusterPrefix: join(dir, 'nowhere') }));
    expect(err.message).toBe('no Kubernetes client configuration: pass --kubeconfig, run in a cluster, or set KUBECONFIG');
  });

  it('accepts --master alone and allows plain http for it', async () => {
    const kc = await loadKubeConfig({ master: 'http://127.0.0.1:8080' }, { env: {} });
    expect(kc.server).toBe('http://127.0.0.1:8080');
    expect(await kc.credentials()).toEqual({ tls: {}, headers: {} });
  });

  it.each([
    ['a missing file', () => join(dir, 'missing.yaml'), /^cannot read kubeconfig .*missing\.yaml \(from --kubeconfig\): no such file$/],
    ['a directory', () => dir, /^cannot read kubeconfig .* \(from --kubeconfig\): is a directory$/],
    [
      'an empty file',
      () => {
        writeFileSync(join(dir, 'empty.yaml'), '\n');
        return join(dir, 'empty.yaml');
      },
      /^kubeconfig .*empty\.yaml \(from --kubeconfig\) is empty$/,
    ],
    [
      'broken YAML',
      () => {
        writeFileSync(join(dir, 'broken.yaml'), 'clusters: [\n  - {name: x\n');
        return join(dir, 'broken.yaml');
      },
      /^kubeconfig .*broken\.yaml \(from --kubeconfig\) is not valid: .+/,
    ],
    [
      'YAML that is no kubeconfig',
      () => {
        writeFileSync(join(dir, 'text.yaml'), 'just some text\n');
        return join(dir, 'text.yaml');
      },
      /^kubeconfig .*text\.yaml \(from --kubeconfig\) has no current-context$/,
    ],
    [
      'a context naming an unknown cluster',
      () => {
        const file = kubeconfig('dangling.yaml', 'https://x:6443');
        writeFileSync(file, `${'current-context: nope\n'}contexts: []\nclusters: []\nusers: []\n`);
        return file;
      },
      /current-context "nope" names no known cluster$/,
    ],
  ])('reports %s in one line naming the file', async (_what, makeFile, message) => {
    const err = await loadError(() => loadKubeConfig({ kubeconfig: makeFile() }, { env: {} }));
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('\n');
  });

  it('rejects a server address that is not an http(s) URL', async () => {
    const err = await loadError(() => loadKubeConfig({ kubeconfig: kubeconfig('f.yaml', 'ftp://x') }, { env: {} }));
    expect(err.message).toBe('API server address "ftp://x" must start with https:// or http://');
  });

  it('re-reads a rotated service-account token after a 401', async () => {
    const root = serviceAccountRoot();
    const access = await loadKubeConfig(
      {},
      { env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, inClusterPrefix: root },
    );
    expect((await access.credentials()).headers).toEqual({ Authorization: 'Bearer token' });
    expect(await access.renew()).toBe(false);
    writeFileSync(join(root, 'var/run/secrets/kubernetes.io/serviceaccount/token'), 'rotated\n');
    expect(await access.renew()).toBe(true);
    expect((await access.credentials()).headers).toEqual({ Authorization: 'Bearer rotated' });
  });

  it('reports an unreadable service-account CA in one line', async () => {
    const root = serviceAccountRoot();
    rmSync(join(root, 'var/run/secrets/kubernetes.io/serviceaccount/ca.crt'));
    const err = await loadError(() =>
      loadKubeConfig({}, { env: { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '443' }, inClusterPrefix: root }),
    );
    expect(err.message).toMatch(/^cannot read the service account's CA .*ca\.crt: no such file$/);
  });

  it('hands back client certificates, CA and tls-server-name as plain data', async () => {
    const file = join(dir, 'certs.yaml');
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'current-context: x',
        'clusters:',
        '- name: c',
        '  cluster:',
        '    server: https://10.0.0.1:6443',
        `    certificate-authority-data: ${b64('CA PEM')}`,
        '    tls-server-name: api.internal',
        'users:',
        '- name: u',
        '  user:',
        `    client-certificate-data: ${b64('CERT PEM')}`,
        `    client-key-data: ${b64('KEY PEM')}`,
        'contexts:',
        '- name: x',
        '  context: {cluster: c, user: u}',
        '',
      ].join('\n'),
    );
    const access = await loadKubeConfig({ kubeconfig: file }, { env: {} });
    expect(await access.credentials()).toEqual({
      tls: { ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM', servername: 'api.internal' },
      headers: {},
    });
    expect(await access.renew()).toBe(false);
  });

  it('runs an exec credential plugin, and runs it again after a 401', async () => {
    const counter = join(dir, 'exec-count');
    writeFileSync(counter, '0');
    const plugin = join(dir, 'plugin.sh');
    writeFileSync(
      plugin,
      [
        '#!/bin/sh',
        `n=$(($(cat ${counter}) + 1)); echo $n > ${counter}`,
        'echo "{\\"apiVersion\\":\\"client.authentication.k8s.io/v1\\",\\"kind\\":\\"ExecCredential\\",\\"status\\":{\\"token\\":\\"exec-$n\\"}}"',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const file = join(dir, 'exec.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'current-context: x',
        'clusters: [{name: c, cluster: {server: "https://10.0.0.1:6443"}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'users:',
        '- name: u',
        '  user:',
        '    exec:',
        '      apiVersion: client.authentication.k8s.io/v1',
        `      command: ${plugin}`,
        '      interactiveMode: Never',
        '',
      ].join('\n'),
    );
    const access = await loadKubeConfig({ kubeconfig: file }, { env: {} });
    expect((await access.credentials()).headers).toEqual({ Authorization: 'Bearer exec-1' });
    // Refusals at the same time share one renewal.
    expect(await Promise.all([access.renew(), access.renew()])).toEqual([true, true]);
    expect((await access.credentials()).headers).toEqual({ Authorization: 'Bearer exec-2' });
  });

  it('keeps an http proxy-url and refuses a socks one in one line', async () => {
    const withProxy = (name: string, proxy: string): string => {
      const file = kubeconfig(name, 'https://10.0.0.1:6443');
      writeFileSync(file, readFileSync(file, 'utf8').replace('    server: https://10.0.0.1:6443', `    server: https://10.0.0.1:6443\n    proxy-url: ${proxy}`));
      return file;
    };
    const access = await loadKubeConfig({ kubeconfig: withProxy('proxy.yaml', 'http://127.0.0.1:3128') }, { env: {} });
    expect(access.proxyUrl).toBe('http://127.0.0.1:3128');
    const err = await loadError(() => loadKubeConfig({ kubeconfig: withProxy('socks.yaml', 'socks5://127.0.0.1:1080') }, { env: {} }));
    expect(err.message).toMatch(/^proxy-url "socks5:\/\/127\.0\.0\.1:1080" is not supported: only http:\/\/ and https:\/\/ proxies are/);
  });
});
