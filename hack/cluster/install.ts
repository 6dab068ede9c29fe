// Installs the controller into a cluster in a box as a user would: the images built here from the
// shipped Dockerfile, then `kubectl apply -k` of an overlay of manifests/base, or `helm install` of the chart.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { cacheRoot, defaultHelmPath, ensureBinaries, HACK_DIR, nodeBinDirs } from '../lib/control-plane.js';
import { SEED, startCluster, type Cluster } from './cluster.js';
import { sh } from './sh.js';

const run = promisify(execFile);
const REPO = join(HACK_DIR, '..');

export interface Images {
  NODE_ARCHIVE: string;
  APP_IMAGE: string;
  APP_ARCHIVE: string;
  PAUSE_IMAGE: string;
  PAUSE_ARCHIVE: string;
}

/** Builds (or finds cached) the node, app and pause images; hack/images/build.sh writes images.env. */
export async function buildImages(): Promise<Images> {
  await run('bash', [join(HACK_DIR, 'images', 'build.sh')], { maxBuffer: 64 * 1024 * 1024 });
  const env = await readFile(join(cacheRoot(), 'images', 'images.env'), 'utf8');
  const values = Object.fromEntries(env.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split('=', 2) as [string, string]));
  return values as unknown as Images;
}

/** Builds (or finds) the images and binaries, then starts a cluster in a box with the images loaded. */
export async function startBoxCluster(opts: { nodes?: string[]; clusterCIDR?: string; log: (line: string) => void }): Promise<{ cluster: Cluster; images: Images; kube: Kube }> {
  const images = await buildImages();
  const binDir = await ensureBinaries();
  const dirs = nodeBinDirs();
  const cluster = await startCluster({
    nodes: opts.nodes,
    clusterCIDR: opts.clusterCIDR,
    images: [images.PAUSE_ARCHIVE, images.APP_ARCHIVE],
    pauseImage: images.PAUSE_IMAGE,
    binDir,
    nodeBins: { kubelet: join(dirs.kube, 'kubelet'), kubeProxy: join(dirs.kube, 'kube-proxy'), flanneld: join(dirs.flannel, 'flanneld'), cniDir: dirs.cni },
    log: opts.log,
  });
  return { cluster, images, kube: new Kube(join(binDir, 'kubectl'), cluster.kubeconfigPath) };
}

export class Kube {
  constructor(private readonly kubectl: string, private readonly kubeconfig: string) {}

  async run(args: string[]): Promise<string> {
    return sh(this.kubectl, [`--kubeconfig=${this.kubeconfig}`, ...args]);
  }

  async json<T>(args: string[]): Promise<T> {
    return JSON.parse(await this.run([...args, '-o', 'json'])) as T;
  }
}

/** Applies an overlay of manifests/base (the example's ranges) with the image built here; returns its dir. */
export async function installWithKustomize(cluster: Cluster, kube: Kube, images: Images): Promise<string> {
  const overlay = join(cluster.dir, 'overlay');
  await mkdir(overlay, { recursive: true });
  const [name, tag] = images.APP_IMAGE.split(/:(?=[^:]+$)/);
  await writeFile(join(overlay, 'allocator-args.yaml'), await readFile(join(REPO, 'manifests/overlays/example/allocator-args.yaml'), 'utf8'));
  await writeFile(join(overlay, 'kustomization.yaml'), [
    'apiVersion: kustomize.config.k8s.io/v1beta1',
    'kind: Kustomization',
    'namespace: kube-system',
    'resources:',
    `  - ${relative(overlay, join(REPO, 'manifests/base'))}`,
    'images:',
    '  - name: podcidr-allocator',
    `    newName: ${name}`,
    `    newTag: "${tag}"`,
    'patches:',
    '  - path: allocator-args.yaml',
    '',
  ].join('\n'));
  await kube.run(['apply', '-k', overlay]);
  return overlay;
}

/** The ranges the controller is installed with: the seed's unless said otherwise. */
export interface Ranges {
  clusterCIDR: string;
  nodeCIDRMaskSize: number;
}

export async function installWithHelm(cluster: Cluster, images: Images, ranges: Ranges = { clusterCIDR: SEED.clusterCIDR, nodeCIDRMaskSize: 24 }): Promise<void> {
  const [name, tag] = images.APP_IMAGE.split(/:(?=[^:]+$)/);
  await sh(defaultHelmPath(), [
    `--kubeconfig=${cluster.kubeconfigPath}`, 'install', 'podcidr-allocator', join(REPO, 'charts/podcidr-allocator'),
    '-n', 'kube-system', '--wait', '--timeout', '120s',
    '--set', `clusterCIDR=${ranges.clusterCIDR}`, '--set', `nodeCIDRMaskSize=${ranges.nodeCIDRMaskSize}`,
    '--set', `serviceClusterIPRange=${SEED.serviceCIDR}`,
    '--set', `image.repository=${name ?? ''}`, '--set', `image.tag=${tag ?? ''}`,
  ]);
}
