// Starts one real etcd + kube-apiserver per vitest run for the integration project and always tears it down.
// Without REQUIRE_CONTROL_PLANE=1 an unavailable control plane skips the tests with one loud line; with it, the run fails.
import type { TestProject } from 'vitest/node';
import { startControlPlane, type ControlPlane } from '../../hack/lib/control-plane.js';
import type { ControlPlaneInfo } from './context.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const required = process.env.REQUIRE_CONTROL_PLANE === '1';
  let cp: ControlPlane | undefined;
  let info: ControlPlaneInfo;
  try {
    cp = await startControlPlane({ log: (line) => console.error(`[control-plane] ${line}`) });
    info = { available: true, kubeconfigPath: cp.kubeconfigPath, server: cp.server, version: cp.version, binDir: cp.binDir };
    console.log(`integration tests run against kube-apiserver ${cp.version} at ${cp.server}`);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (required) throw new Error(`REQUIRE_CONTROL_PLANE=1 but the control plane could not start: ${reason}`, { cause: err });
    console.warn(`\n!!! SKIPPING integration tests: no control plane (${reason.split('\n')[0]}). Set REQUIRE_CONTROL_PLANE=1 to fail instead.\n`);
    info = { available: false, reason };
  }
  project.provide('controlPlane', info);
  return async () => {
    await cp?.stop();
  };
}
