// Bundles the kubeconfig worker (src/kube/kubeconfig-worker.ts) and the Kubernetes client library into one file.
// The library is about a thousand modules: loading them one by one took about 1 s of every start with a
// kubeconfig, the bundle about 0.3 s. `npm run build` calls it: node hack/bundle-worker.ts <dir of kube/*.js>.

import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

/** What src/kube/config.ts looks for beside itself. */
export const WORKER_BUNDLE = 'kubeconfig-worker.bundle.js';

const SOURCE = fileURLToPath(new URL('../src/kube/kubeconfig-worker.ts', import.meta.url));

/** Writes <kubeDir>/kubeconfig-worker.bundle.js and returns its path. */
export async function bundleKubeconfigWorker(kubeDir: string): Promise<string> {
  const outfile = join(kubeDir, WORKER_BUNDLE);
  await build({
    entryPoints: [SOURCE],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    logLevel: 'warning',
    // Some of the library's dependencies are CommonJS and call require() for node: builtins.
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  });
  return outfile;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dir = process.argv[2];
  if (dir === undefined) {
    console.error('usage: node hack/bundle-worker.ts <directory of the compiled src/kube>');
    process.exit(2);
  }
  console.log(`wrote ${await bundleKubeconfigWorker(dir)}`);
}
