// Bundles the program for shipping: dist/bundle/main.js (the command) and, beside it,
// kubeconfig-worker.bundle.js (the child that loads a kubeconfig with the Kubernetes client library).
// Node.js loads one file much faster than hundreds of modules: `--version` took about 0.35 s unbundled
// and the worker about 1 s (its library alone is about a thousand modules), each about a third bundled.
// `npm run build` calls it: node hack/bundle.ts <output directory>.

import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

/** What src/kube/config.ts looks for beside itself (beside main.js once bundled). */
export const WORKER_BUNDLE = 'kubeconfig-worker.bundle.js';

const source = (path: string): string => fileURLToPath(new URL(`../src/${path}`, import.meta.url));

/** Writes <outDir>/main.js and <outDir>/kubeconfig-worker.bundle.js; returns the path of main.js. */
export async function bundleProgram(outDir: string): Promise<string> {
  await build({
    entryPoints: [
      { in: source('cli/main.ts'), out: 'main' },
      { in: source('kube/kubeconfig-worker.ts'), out: WORKER_BUNDLE.replace(/\.js$/, '') },
    ],
    outdir: outDir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    logLevel: 'warning',
    // V8 keeps each script's source in the heap, as two bytes a character once one is not Latin-1:
    // the dependencies' comments made main.js 4.4 MB of heap. Without comments and indentation it is
    // ASCII and about 1.6 MB. Names stay, for stack traces; the linked map gives files and lines
    // under --enable-source-maps.
    minifyWhitespace: true,
    sourcemap: 'linked',
    sourcesContent: false,
    // The dependencies' licence notices go beside each bundle (<name>.LEGAL.txt), shipped with it.
    legalComments: 'external',
    // Some dependencies are CommonJS and call require() for node: builtins. The alias keeps clear of
    // a createRequire that the sources may import themselves.
    banner: { js: "import { createRequire as bundleRequire } from 'node:module'; const require = bundleRequire(import.meta.url);" },
  });
  return join(outDir, 'main.js');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dir = process.argv[2];
  if (dir === undefined) {
    console.error('usage: node hack/bundle.ts <output directory>');
    process.exit(2);
  }
  console.log(`wrote ${await bundleProgram(dir)}`);
}
