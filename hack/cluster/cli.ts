// Command line behind `npm run cluster`: up (foreground; Ctrl-C removes everything) and down (sweeps what a
// killed `up` left behind). Needs root: network namespaces, cgroups and mounts.
import { parseArgs } from 'node:util';
import { sweep, type Cluster } from './cluster.js';
import { installWithHelm, installWithKustomize, startBoxCluster, type Images, type Kube } from './install.js';

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
  const started = Date.now();
  const { cluster, images, kube } = await startBoxCluster({
    nodes: Array.from({ length: count }, (_, i) => `node-${i + 1}`),
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
    await install(cluster, kube, values.install, images);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  await stopped;
}

async function install(cluster: Cluster, kube: Kube, how: string, images: Images): Promise<void> {
  if (how === 'none') return;
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
