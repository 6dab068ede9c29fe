// Bad input an operator can give `run` beyond the flag table in main.test.ts: more flag mistakes, and
// kubeconfigs that are missing, unreadable or garbage: each one clear line, and exit 2 from the real process.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../../src/cli/config.js';
import { KubeConfigError, loadKubeConfig } from '../../../src/kube/config.js';
import { runCli as cli } from '../../cli-process.js';

const dir = mkdtempSync(join(tmpdir(), 'podcidr-bad-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function expectOneCleanLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  return lines[0] ?? '';
}

const ok = '--cluster-cidr=10.244.0.0/16';
const fixed = { hostname: () => 'cp-1', randomSuffix: () => '0a1b2c3d' };
const noServe = ['--metrics-bind-address=127.0.0.1:0', '--leader-elect=false'];

describe('run refuses flag mistakes the main table leaves out', () => {
  // main.test.ts proves that any problem line ends in exit 2 without a stack; here only the lines.
  it.each<[string, string[], string]>([
    ['the IPv6 mask flag on an IPv4-only cluster', ['--cluster-cidr=10.244.0.0/16', '--node-cidr-mask-size-ipv6=64'], '--node-cidr-mask-size-ipv6'],
    ['an IPv6 node mask shorter than its cluster prefix', ['--cluster-cidr=10.244.0.0/16,fd00:10:244::/56', '--node-cidr-mask-size-ipv6=48'], '--cluster-cidr'],
    ['an IPv4 node mask longer than 32 bits', [ok, '--node-cidr-mask-size=33'], '--node-cidr-mask-size'],
    ['an IPv6 node mask longer than 128 bits', ['--cluster-cidr=fd00:10:244::/56', '--node-cidr-mask-size-ipv6=129'], '--node-cidr-mask-size-ipv6'],
    ['two IPv6 cluster CIDRs', ['--cluster-cidr=fd00:10:244::/56,fd00:10:245::/56'], '--cluster-cidr'],
    ['an empty cluster CIDR in the list', ['--cluster-cidr=10.244.0.0/16,'], '--cluster-cidr'],
    ['a bare address as cluster CIDR', ['--cluster-cidr=10.244.0.0'], '--cluster-cidr'],
    ['a zero QPS', [ok, '--kube-api-qps=0'], '--kube-api-qps'],
    ['a QPS of Infinity', [ok, '--kube-api-qps=Infinity'], '--kube-api-qps'],
    ['a QPS of NaN', [ok, '--kube-api-qps=NaN'], '--kube-api-qps'],
    ['a non-numeric burst', [ok, '--kube-api-burst=many'], '--kube-api-burst'],
    ['a negative retry period', [ok, '--leader-elect-retry-period=-1s'], '--leader-elect-retry-period'],
    ['a retry period longer than the lease', [ok, '--leader-elect-retry-period=20s'], '--leader-elect-renew-deadline'],
  ])('reports %s as a line starting with the flag', (_case, args, flag) => {
    const result = parseRunConfig(args, {}, fixed);
    if (!('problems' in result)) throw new Error('expected problems, got a config');
    // The flag, then anything but more of a longer flag's name ("--x:" or "--x (10s)").
    expect(result.problems.some((line) => line.startsWith(flag) && /^[^-a-z0-9]/.test(line.slice(flag.length)))).toBe(true);
    for (const line of result.problems) expect(line).not.toContain('\n');
  });
});

describe('loading a kubeconfig it cannot use', () => {
  it.each<[string, string, RegExp]>([
    ['garbage bytes', '\u0000\u0001\u00ff{{{: : :\n\t- ]]', /kubeconfig .* is not valid/],
    ['YAML that is not a kubeconfig', 'hello: world\nitems: [1, 2]\n', /kubeconfig .*(is not valid|has no current-context)/],
    ['an empty file', '   \n', /kubeconfig .* is empty/],
    [
      'a current-context naming no cluster',
      'apiVersion: v1\nkind: Config\ncurrent-context: nowhere\ncontexts: []\nclusters: []\nusers: []\n',
      /kubeconfig .*(names no known cluster|is not valid)/,
    ],
    [
      'a server that is not a URL',
      kubeconfigText('not a url'),
      /API server address "not a url" is not a URL/,
    ],
    ['a server without a scheme', kubeconfigText('127.0.0.1:6443'), /API server address "127.0.0.1:6443"/],
  ])('throws a one-line KubeConfigError for %s', async (name, text, reason) => {
    const path = file(`${name.replace(/\W+/g, '-')}.kubeconfig`, text);
    const error = await kubeConfigError(() => loadKubeConfig({ kubeconfig: path }, { env: {} }));
    expect(error.message).toMatch(reason);
    expect(error.message).not.toContain('\n');
  });

  it('names the file and says it does not exist', async () => {
    const path = join(dir, 'missing.kubeconfig');
    const error = await kubeConfigError(() => loadKubeConfig({ kubeconfig: path }, { env: {} }));
    expect(error.message).toBe(`cannot read kubeconfig ${path} (from --kubeconfig): no such file`);
  });

  it('names the file and says it is a directory', async () => {
    const error = await kubeConfigError(() => loadKubeConfig({ kubeconfig: dir }, { env: {} }));
    expect(error.message).toBe(`cannot read kubeconfig ${dir} (from --kubeconfig): is a directory`);
  });
});

describe('run with a kubeconfig it cannot use', () => {
  it.each<[string, () => string, RegExp]>([
    ['does not exist', () => join(dir, 'absent.kubeconfig'), /^podcidr-allocator: cannot read kubeconfig .*: no such file$/],
    ['is garbage', () => file('garbage.kubeconfig', '{{{{ not yaml ]]]'), /^podcidr-allocator: kubeconfig .* is not valid: /],
  ])('exits 2 with one line on stderr when the kubeconfig %s', async (_case, path, line) => {
    const { code, stdout, stderr } = await cli(['run', ok, ...noServe, `--kubeconfig=${path()}`]);
    expect(code).toBe(2);
    expect(expectOneCleanLine(stderr)).toMatch(line);
    // The JSON log says it too, without a stack.
    expect(stdout).toContain('cannot load the Kubernetes client configuration');
    expect(stdout).not.toContain('"stack"');
  });
});

function kubeconfigText(server: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'current-context: c',
    'contexts: [{name: c, context: {cluster: k, user: u}}]',
    `clusters: [{name: k, cluster: {server: "${server}"}}]`,
    'users: [{name: u, user: {token: t}}]',
    '',
  ].join('\n');
}

async function kubeConfigError(load: () => Promise<unknown>): Promise<KubeConfigError> {
  try {
    await load();
  } catch (err) {
    if (err instanceof KubeConfigError) return err;
    throw err;
  }
  throw new Error('expected a KubeConfigError');
}
