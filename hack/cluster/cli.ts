// Command line behind `npm run cluster`: up (foreground; Ctrl-C removes everything) and down (sweeps what a
// killed `up` left behind). Needs root: network namespaces, cgroups and mounts.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureBinaries, nodeBinDirs } from '../lib/control-plane.js';
import { startCluster, sweep, type Cluster } from './cluster.js';
import { buildImages, installWithHelm, installWithKustomize, Kube } from './install.js';

const USAGE = 'usage: npm run cluster -- up [--nodes N] [--install helm|kustomize|none] | down';
const INSTALLS = ['helm', 'kustomize', 'none'];

async function up(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { nodes: { type: 'string', default: '2' }, install: { type: 'string', default: 'helm' } },
  });
  const count = Number(values.nodes);
  if (!Number.isInteger(count) || count < 1 || count > 8) throw new UsageError(`--nodes: want 1 to 8, got ${values.nodes}`);
  if (!INSTALLS.includes(values.install)) throw new UsageError(`--install: want ${INSTALLS.join(', ')}, got ${values.install}`);
  console.error('building images and binaries (cached after the first run)');
  const images = await buildImages();
  const binDir = await ensureBinaries();
  const dirs = nodeBinDirs();
  const started = Date.now();
  const cluster = await startCluster({
    nodes: Array.from({ length: count }, (_, i) => `node-${i + 1}`),
    images: [images.PAUSE_ARCHIVE, images.APP_ARCHIVE],
    pauseImage: images.PAUSE_IMAGE,
    binDir,
    nodeBins: { kubelet: join(dirs.kube, 'kubelet'), kubeProxy: join(dirs.kube, 'kube-proxy'), flanneld: join(dirs.flannel, 'flanneld'), cniDir: dirs.cni },
    log: (line) => console.error(line),
  });
  const stopped = new Promise<void>((done) => {
    const stop = (): void => {
      console.error('stopping');
      void cluster.stop().then(done);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  console.error(`cluster ${cluster.id} up in ${((Date.now() - started) / 1000).toFixed(1)} s; Ctrl-C stops it`);
  console.log(`export KUBECONFIG=${cluster.kubeconfigPath}`);
  try {
    await install(cluster, values.install, images);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  await stopped;
}

async function install(cluster: Cluster, how: string, images: Awaited<ReturnType<typeof buildImages>>): Promise<void> {
  if (how === 'none') return;
  const kube = new Kube(join(await ensureBinaries(), 'kubectl'), cluster.kubeconfigPath);
  if (how === 'helm') await installWithHelm(cluster, images);
  else await installWithKustomize(cluster, kube, images);
  console.error(`podcidr-allocator installed with ${how}; waiting for flannel to get each node's podCIDR`);
  const subnets = await cluster.waitForPodNetwork(180_000);
  for (const [node, env] of subnets) console.error(`${node}: podCIDR subnet ${env.FLANNEL_SUBNET ?? '?'}, CNI config written`);
  console.error(await kube.run(['get', 'nodes', '-o', 'custom-columns=NODE:.metadata.name,INTERNAL-IP:.status.addresses[0].address,PODCIDR:.spec.podCIDR']));
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
