// A cluster in a box: etcd and kube-apiserver on the host (listening on the LAN's .1), kube-scheduler and
// kube-controller-manager with --allocate-node-cidrs=false, and kubelets in network namespaces of their
// own, each with its own containerd, kube-proxy and flanneld. Nothing leaves loopback or the namespaces
// this file creates; stop() removes every namespace, link, process, mount, cgroup and directory it made.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, rmdir, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, startControlPlane, terminate, isAlive, type ControlPlane } from '../lib/control-plane.js';
import { createNetwork, freeOctet, planNetwork, removeNetwork, type Network } from './net.js';
import {
  cgroupHierarchies,
  createCgroupRoot,
  importImages,
  startContainerd,
  startFlanneld,
  startKubelet,
  startKubeProxy,
  writeCniWhenSubnetKnown,
  type NodeBins,
  type RunningNode,
} from './node.js';
import { sh, shQuiet } from './sh.js';

export interface ClusterOptions {
  /** Node names; default node-1, node-2. */
  nodes?: string[];
  /** The pod network flannel is told about; our controller's --cluster-cidr. */
  clusterCIDR?: string;
  serviceCIDR?: string;
  /** Image archives imported into every node's containerd; the pause image must be among them. */
  images: string[];
  pauseImage: string;
  /** Directory of kube-apiserver, kube-controller-manager, kube-scheduler, etcd. */
  binDir: string;
  nodeBins: NodeBins;
  /** Extra kube-apiserver flags, e.g. short service-account token lifetimes. */
  apiServerArgs?: string[];
  log?: (line: string) => void;
}

export interface Cluster {
  readonly id: string;
  readonly controlPlane: ControlPlane;
  readonly kubeconfigPath: string;
  readonly network: Network;
  readonly nodes: RunningNode[];
  readonly dir: string;
  /** Waits for flanneld on every node to know its subnet (so for our podCIDRs), then writes the CNI config. */
  waitForPodNetwork(timeoutMs: number): Promise<Map<string, Record<string, string>>>;
  stop(): Promise<void>;
}

/** The seed's numbers: a /18 of /24s, services in the /18 below. */
export const SEED = { clusterCIDR: '10.233.64.0/18', serviceCIDR: '10.233.0.0/18', serviceIP: '10.233.0.1' };

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const log = opts.log ?? (() => undefined);
  const id = Math.random().toString(16).slice(2, 6);
  const names = opts.nodes ?? ['node-1', 'node-2'];
  const clusterCIDR = opts.clusterCIDR ?? SEED.clusterCIDR;
  const network = planNetwork(id, await freeOctet(), names);
  const dir = await mkdtemp(join(tmpdir(), `pca-${id}-`));
  const teardown = new Teardown(id, dir, network);
  try {
    await createNetwork(network);
    log(`network ${network.subnet}: host ${network.hostAddress}, ${network.nodes.map((n) => `${n.name} ${n.address}`).join(', ')}`);
    const cp = await startControlPlane({
      binDir: opts.binDir,
      address: network.hostAddress,
      servingIPs: [serviceIP(opts.serviceCIDR)],
      // Inside the cluster's dir, so that sweep() finds etcd and kube-apiserver of a killed `up` too.
      parentDir: dir,
      apiServerArgs: [
        `--service-cluster-ip-range=${opts.serviceCIDR ?? SEED.serviceCIDR}`,
        // Node names resolve nowhere; logs and exec reach the kubelet at the node's address.
        '--kubelet-preferred-address-types=InternalIP',
        // Pods' projected tokens expire when they say (about an hour), not a year later: the controller
        // must live on the kubelet's rotations, as on clusters that turn the extension off.
        '--service-account-extend-token-expiration=false',
        ...(opts.apiServerArgs ?? []),
      ],
    });
    teardown.controlPlane = cp;
    log(`kube-apiserver ${cp.version} at ${cp.server}`);
    teardown.pids.push(...startControllers(cp, opts.binDir, dir));
    const nodes: RunningNode[] = [];
    for (const net of network.nodes) {
      const nodeDir = join(dir, net.name);
      await mkdir(nodeDir, { recursive: true });
      const cgroupRoot = `/pca-${id}-${net.name}`;
      teardown.cgroupRoots.push(cgroupRoot);
      await createCgroupRoot(cgroupRoot);
      const spec = {
        net,
        dir: nodeDir,
        cgroupRoot,
        server: cp.server,
        caCert: cp.files.caCert,
        kubeconfig: await nodeKubeconfig(cp, nodeDir, net.name),
        adminKubeconfig: cp.kubeconfigPath,
        clusterCIDR,
        pauseImage: opts.pauseImage,
        bins: opts.nodeBins,
      };
      const node = await startContainerd(spec);
      nodes.push(node);
      teardown.nodes.push(node);
      await importImages(node, opts.images);
      await startKubelet(node);
      await startKubeProxy(node);
      await startFlanneld(node);
      log(`${net.name}: containerd, kubelet, kube-proxy, flanneld started (${opts.images.length} images imported)`);
    }
    return {
      id,
      controlPlane: cp,
      kubeconfigPath: cp.kubeconfigPath,
      network,
      nodes,
      dir,
      waitForPodNetwork: async (timeoutMs) => {
        const subnets = await Promise.all(nodes.map((n) => writeCniWhenSubnetKnown(n, timeoutMs)));
        return new Map(nodes.map((n, i) => [n.spec.net.name, subnets[i] ?? {}]));
      },
      stop: () => teardown.run(),
    };
  } catch (err) {
    await teardown.run();
    throw err;
  }
}

function serviceIP(serviceCIDR: string | undefined): string {
  if (serviceCIDR === undefined) return SEED.serviceIP;
  const [base] = serviceCIDR.split('/');
  const octets = (base ?? '').split('.').map(Number);
  octets[3] = (octets[3] ?? 0) + 1;
  return octets.join('.');
}

function startControllers(cp: ControlPlane, binDir: string, dir: string): number[] {
  const common = [`--kubeconfig=${cp.kubeconfigPath}`, '--leader-elect=false', '--bind-address=127.0.0.1', '--secure-port=0'];
  const kcm = launch(
    join(binDir, 'kube-controller-manager'),
    [
      ...common,
      // Our controller allocates; two allocators would hand one subnet to two nodes.
      '--allocate-node-cidrs=false',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${cp.files.serviceAccountKey}`,
      `--root-ca-file=${cp.files.caCert}`,
      '--controllers=*',
    ],
    join(dir, 'kube-controller-manager.log'),
  );
  const scheduler = launch(join(binDir, 'kube-scheduler'), common, join(dir, 'kube-scheduler.log'));
  return [kcm, scheduler];
}

/** A kubeconfig with a client certificate for system:node:<name>, as kubeadm's join gives a kubelet. */
async function nodeKubeconfig(cp: ControlPlane, dir: string, name: string): Promise<string> {
  const key = join(dir, 'node.key');
  const crt = join(dir, 'node.crt');
  await sh('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', crt, '-days', '7', '-CA', cp.files.caCert, '-CAkey', cp.files.caKey,
    '-subj', `/O=system:nodes/CN=system:node:${name}`,
    '-addext', 'extendedKeyUsage=clientAuth', '-addext', 'basicConstraints=critical,CA:FALSE']);
  const b64 = async (f: string): Promise<string> => (await readFile(f)).toString('base64');
  const path = join(dir, 'kubeconfig');
  await writeFile(path, [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: local',
    `  cluster: {server: "${cp.server}", certificate-authority-data: ${await b64(cp.files.caCert)}}`,
    'users:',
    `- name: ${name}`,
    `  user: {client-certificate-data: ${await b64(crt)}, client-key-data: ${await b64(key)}}`,
    'contexts:',
    `- name: local`,
    `  context: {cluster: local, user: ${name}}`,
    'current-context: local',
    '',
  ].join('\n'), { mode: 0o600 });
  return path;
}

/** Undoes what startCluster did, in reverse; every step tolerates a half-made cluster. */
class Teardown {
  controlPlane: ControlPlane | undefined;
  readonly pids: number[] = [];
  readonly nodes: RunningNode[] = [];
  readonly cgroupRoots: string[] = [];
  private done = false;

  constructor(readonly id: string, readonly dir: string, readonly network: Network) {}

  async run(): Promise<void> {
    if (this.done) return;
    this.done = true;
    const podNetns = await Promise.all(this.nodes.map((n) => sandboxNetns(n)));
    for (const node of this.nodes) await Promise.all(node.supervised.map((s) => s.stop()));
    for (const node of this.nodes) await Promise.all(node.pids.slice(1).map((p) => terminate(p, 5_000)));
    await killCgroups(this.cgroupRoots);
    // The containerd shims outlive containerd; their command lines name its socket in our dir.
    await killWhere((cmd) => cmd.includes('containerd-shim') && cmd.includes(this.dir));
    for (const node of this.nodes) await Promise.all(node.pids.slice(0, 1).map((p) => terminate(p, 5_000)));
    await Promise.all(this.pids.map((p) => terminate(p, 5_000)));
    await this.controlPlane?.stop();
    await unmountBelow(this.dir);
    for (const ns of podNetns.flat()) await shQuiet('ip', ['netns', 'del', ns]);
    await removeCgroups(this.cgroupRoots);
    await removeLogLinks(this.dir);
    await removeNetwork(this.network);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Names of the network namespaces containerd made for the node's pod sandboxes. */
async function sandboxNetns(node: RunningNode): Promise<string[]> {
  try {
    const ids = (await sh('ctr', ['--address', node.socket, '-n', 'k8s.io', 'containers', 'ls', '-q'])).split('\n').filter(Boolean);
    const names = new Set<string>();
    for (const id of ids) {
      const info = JSON.parse(await sh('ctr', ['--address', node.socket, '-n', 'k8s.io', 'containers', 'info', id])) as {
        Spec?: { linux?: { namespaces?: { type: string; path?: string }[] } };
      };
      for (const ns of info.Spec?.linux?.namespaces ?? []) {
        const m = ns.type === 'network' ? /\/(?:var\/)?run\/netns\/([^/]+)$/.exec(ns.path ?? '') : null;
        if (m?.[1] !== undefined) names.add(m[1]);
      }
    }
    return [...names];
  } catch {
    return [];
  }
}

/** SIGKILLs every process left in the nodes' cgroups (the pods' containers). */
async function killCgroups(roots: string[]): Promise<void> {
  for (const root of roots) {
    for (const dir of await cgroupDirs(join('/sys/fs/cgroup/pids', root))) {
      const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
      for (const pid of procs.split('\n').filter(Boolean).map(Number)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  }
}

/** Stops every process but this one whose command line passes the test; one walk of /proc. */
async function killWhere(matches: (cmdline: string) => boolean): Promise<void> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (matches(cmd) && isAlive(Number(entry))) await terminate(Number(entry), 2_000);
  }
}

/** Directories of a cgroup tree, deepest first. */
async function cgroupDirs(top: string): Promise<string[]> {
  if (!existsSync(top)) return [];
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await walk(join(d, e.name));
    out.push(d);
  };
  await walk(top);
  return out;
}

async function removeCgroups(roots: string[]): Promise<void> {
  for (const h of await cgroupHierarchies()) {
    for (const root of roots) {
      for (const d of await cgroupDirs(join('/sys/fs/cgroup', h, root))) await rmdir(d).catch(() => undefined);
    }
  }
}

/** Unmounts (lazily, deepest first) whatever the kubelet and containerd mounted below dir. */
async function unmountBelow(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
  for (const m of mounts.reverse()) await shQuiet('umount', ['-l', m]);
}

/** The kubelet links each container's log from /var/log/containers; drop links into our dir. */
async function removeLogLinks(dir: string): Promise<void> {
  const logs = '/var/log/containers';
  for (const name of await readdir(logs).catch(() => [])) {
    const target = await readlink(join(logs, name)).catch(() => '');
    if (target.startsWith(dir)) await unlink(join(logs, name)).catch(() => undefined);
  }
}

/**
 * Removes what a cluster killed without stop() left behind (its parent SIGKILLed): every pca-* namespace,
 * host link, cgroup, process and mount, and every pca-* directory in the temp dir. Only names this file makes.
 */
export async function sweep(log: (line: string) => void = () => undefined): Promise<void> {
  const dirs = (await readdir(tmpdir())).filter((d) => /^pca-[0-9a-f]{4}-/.test(d)).map((d) => join(tmpdir(), d));
  for (const dir of dirs) {
    // The nodes' daemons and shims, and the control plane, all name the dir on their command lines.
    await killWhere((cmd) => cmd.includes(dir));
    await unmountBelow(dir);
    await removeLogLinks(dir);
    await rm(dir, { recursive: true, force: true });
    log(`removed ${dir}`);
  }
  const namespaces = (await sh('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0] ?? '');
  for (const ns of namespaces.filter((n) => /^pca-[0-9a-f]{4}-/.test(n))) {
    await shQuiet('ip', ['netns', 'del', ns]);
    log(`removed namespace ${ns}`);
  }
  for (const link of (await sh('ip', ['-o', 'link', 'show'])).matchAll(/^\d+: (pca[0-9a-f]{4}h)[@:]/gm)) {
    if (link[1] !== undefined) await shQuiet('ip', ['link', 'del', link[1]]);
  }
  for (const h of await cgroupHierarchies()) {
    const roots = (await readdir(join('/sys/fs/cgroup', h)).catch(() => [])).filter((d) => /^pca-[0-9a-f]{4}-/.test(d));
    await killCgroups(roots.map((r) => `/${r}`));
    await removeCgroups(roots.map((r) => `/${r}`));
  }
}
