import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { withSharedConnections } from '../../../src/kube/dispatcher.js';

function kubeConfig(cert: string, proxyUrl?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caData: Buffer.from('ca').toString('base64'), proxyUrl }],
    users: [{ name: 'u', certData: Buffer.from(cert).toString('base64'), keyData: Buffer.from('key').toString('base64') }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

async function dispatcherOf(kc: k8s.KubeConfig): Promise<unknown> {
  const ctx = new k8s.RequestContext('https://127.0.0.1:6443/api/v1/nodes', k8s.HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  return ctx.getDispatcher();
}

describe('withSharedConnections', () => {
  it('gives every request the same connection pool', async () => {
    const kc = withSharedConnections(kubeConfig('cert'));
    const first = await dispatcherOf(kc);
    expect(first).toBeDefined();
    expect(await dispatcherOf(kc)).toBe(first);
  });

  it('shows that client-node alone builds a new pool per request', async () => {
    const kc = kubeConfig('cert');
    expect(await dispatcherOf(kc)).not.toBe(await dispatcherOf(kc));
  });

  it('opens a new pool when the client certificate changes', async () => {
    const base = kubeConfig('cert-1');
    const kc = withSharedConnections(base);
    const first = await dispatcherOf(kc);
    const user = base.getCurrentUser();
    if (user === null) throw new Error('no user');
    Object.assign(user, { certData: Buffer.from('cert-2').toString('base64') });
    const second = await dispatcherOf(kc);
    expect(second).not.toBe(first);
    expect(await dispatcherOf(kc)).toBe(second);
  });

  it('leaves proxied clusters to client-node', async () => {
    const kc = withSharedConnections(kubeConfig('cert', 'http://127.0.0.1:3128'));
    expect(await dispatcherOf(kc)).not.toBe(await dispatcherOf(kc));
  });
});
