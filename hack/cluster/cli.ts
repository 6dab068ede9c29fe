// Command line behind `npm run cluster`: up (foreground; Ctrl-C removes everything) and down (sweeps what a
// killed `up` left behind). Needs root: network namespaces, cgroups and mounts.
import { parseArgs } from 'node:util';
import { ensureBinaries, nodeBinDirs } from '../lib/control-plane.js';
import { join } from 'node:path';
import { startCluster, sweep } from './cluster.js';

const USAGE = 'usage: npm run cluster -- up [--nodes N] [--image ARCHIVE ...] --pause-image NAME | down';

async function up(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string', default: '2' },
      image: { type: 'string', multiple: true },
      'pause-image': { type: 'string' },
    },
  });
  const count = Number(values.nodes);
  if (!Number.isInteger(count) || count < 1 || count > 8) throw new UsageError(`--nodes: want 1 to 8, got ${values.nodes}`);
  const pauseImage = values['pause-image'];
  if (pauseImage === undefined) throw new UsageError('--pause-image is required');
  const binDir = await ensureBinaries();
  const dirs = nodeBinDirs();
  const started = Date.now();
  const cluster = await startCluster({
    nodes: Array.from({ length: count }, (_, i) => `node-${i + 1}`),
    images: values.image ?? [],
    pauseImage,
    binDir,
    nodeBins: {
      kubelet: join(dirs.kube, 'kubelet'),
      kubeProxy: join(dirs.kube, 'kube-proxy'),
      flanneld: join(dirs.flannel, 'flanneld'),
      cniDir: dirs.cni,
    },
    log: (line) => console.error(line),
  });
  console.error(`cluster ${cluster.id} up in ${((Date.now() - started) / 1000).toFixed(1)} s; Ctrl-C stops it`);
  console.log(`export KUBECONFIG=${cluster.kubeconfigPath}`);
  void cluster.waitForPodNetwork(24 * 3_600_000).then((subnets) => {
    for (const [node, env] of subnets) console.error(`${node}: pod network ${env.FLANNEL_SUBNET ?? '?'} (CNI config written)`);
  });
  await new Promise<void>((done) => {
    const stop = (): void => {
      console.error('stopping');
      void cluster.stop().then(done);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

class UsageError extends Error {}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'up') return up(rest);
  if (command === 'down') return sweep((line) => console.error(line));
  throw new UsageError(USAGE);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = err instanceof UsageError ? 2 : 1;
});
