// Checks the control-plane helper itself: a second, private control plane restarts and stops cleanly.
// Tests and benchmarks rely on stop() leaving nothing behind and on restartApiServer() keeping all state.
import { existsSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isAlive, startControlPlane, type ControlPlane } from '../../hack/lib/control-plane.js';
import { TestScope, controlPlane, describeWithControlPlane } from './harness.js';

describeWithControlPlane('startControlPlane', () => {
  let cp: ControlPlane;
  let core: k8s.CoreV1Api;
  const scope = new TestScope('control-plane');

  beforeAll(async () => {
    const shared = controlPlane();
    cp = await startControlPlane({ binDir: shared.available ? shared.binDir : undefined });
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
  });
  afterAll(async () => {
    if (existsSync(cp.dir)) await cp.stop();
  });

  it('reports the pinned Kubernetes version from /version', () => {
    expect(cp.version).toBe('v1.34.4');
  });

  it('keeps port, credentials and etcd data across an apiserver restart', async () => {
    const name = scope.name('survivor');
    await core.createNode({ body: { metadata: { name, labels: scope.labels } } });
    const before = cp.pids().apiServer;

    await cp.restartApiServer();

    expect(cp.pids().apiServer).not.toBe(before);
    expect(before !== undefined && isAlive(before)).toBe(false);
    expect((await core.readNode({ name })).metadata?.name).toBe(name);
  });

  it('leaves no process and no directory behind after stop', async () => {
    const { etcd, apiServer } = cp.pids();

    await cp.stop();

    expect(isAlive(etcd)).toBe(false);
    expect(apiServer !== undefined && isAlive(apiServer)).toBe(false);
    expect(existsSync(cp.dir)).toBe(false);
  });
});
