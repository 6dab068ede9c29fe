import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

function loadError(fn: () => unknown): KubeConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof KubeConfigError) return err;
    throw err;
  }
  throw new Error('expected a KubeConfigError');
}

describe('loadKubeConfig', () => {
  it('reads the file given with --kubeconfig', () => {
    const kc = loadKubeConfig({ kubeconfig: kubeconfig('a.yaml', 'https://10.0.0.1:6443') }, { env: {} });
    expect(kc.getCurrentCluster()?.server).toBe('https://10.0.0.1:6443');
  });

  it('prefers --kubeconfig over in-cluster settings and KUBECONFIG', () => {
    const file = kubeconfig('b.yaml', 'https://flag:6443');
    const other = kubeconfig('b2.yaml', 'https://env:6443');
    const kc = loadKubeConfig(
      { kubeconfig: file },
      {
        env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', KUBECONFIG: other },
        inClusterPrefix: serviceAccountRoot(),
      },
    );
    expect(kc.getCurrentCluster()?.server).toBe('https://flag:6443');
  });

  it('lets --master override the server of the kubeconfig', () => {
    const kc = loadKubeConfig(
      { kubeconfig: kubeconfig('c.yaml', 'https://10.0.0.1:6443'), master: 'https://127.0.0.1:7443' },
      { env: {} },
    );
    expect(kc.getCurrentCluster()?.server).toBe('https://127.0.0.1:7443');
    expect(kc.getCurrentUser()?.token).toBe('abc');
  });

  it('uses the service account when running in a cluster', () => {
    const root = serviceAccountRoot();
    const kc = loadKubeConfig(
      {},
      { env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, inClusterPrefix: root },
    );
    expect(kc.getCurrentCluster()?.server).toBe('https://[fd00::1]:443');
    expect(kc.getCurrentCluster()?.caFile).toBe(join(root, 'var/run/secrets/kubernetes.io/serviceaccount/ca.crt'));
    expect(kc.getCurrentUser()?.authProvider?.name).toBe('tokenFile');
  });

  it('falls back to KUBECONFIG when the service-account token is missing', () => {
    const file = kubeconfig('d.yaml', 'https://env:6443');
    const kc = loadKubeConfig(
      {},
      {
        env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', KUBECONFIG: file },
        inClusterPrefix: join(dir, 'nowhere'),
      },
    );
    expect(kc.getCurrentCluster()?.server).toBe('https://env:6443');
  });

  it('merges several KUBECONFIG files, keeping the first current-context', () => {
    const first = kubeconfig('e1.yaml', 'https://one:6443', 'one', 'c-one');
    const second = kubeconfig('e2.yaml', 'https://two:6443', 'two', 'c-two');
    const kc = loadKubeConfig({}, { env: { KUBECONFIG: [first, second].join(delimiter) } });
    expect(kc.getCurrentContext()).toBe('one');
    expect(kc.getClusters().map((c) => c.name)).toEqual(['c-one', 'c-two']);
  });

  it('never falls back to localhost:8080 when nothing is configured', () => {
    const err = loadError(() => loadKubeConfig({}, { env: {}, inClusterPrefix: join(dir, 'nowhere') }));
    expect(err.message).toBe('no Kubernetes client configuration: pass --kubeconfig, run in a cluster, or set KUBECONFIG');
  });

  it('accepts --master alone and allows plain http for it', () => {
    const kc = loadKubeConfig({ master: 'http://127.0.0.1:8080' }, { env: {} });
    expect(kc.getCurrentCluster()?.server).toBe('http://127.0.0.1:8080');
    expect(kc.getCurrentCluster()?.skipTLSVerify).toBe(true);
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
  ])('reports %s in one line naming the file', (_what, makeFile, message) => {
    const err = loadError(() => loadKubeConfig({ kubeconfig: makeFile() }, { env: {} }));
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('\n');
  });

  it('rejects a server address that is not an http(s) URL', () => {
    const err = loadError(() => loadKubeConfig({ kubeconfig: kubeconfig('f.yaml', 'ftp://x') }, { env: {} }));
    expect(err.message).toBe('API server address "ftp://x" must start with https:// or http://');
  });
});
