// One node of the cluster: its own containerd (root, state, socket), a kubelet, kube-proxy and flanneld,
// all inside the node's network namespace, with a cgroup root of its own so two kubelets never reap
// each other's pods. flanneld writes subnet.env from the node's podCIDR; the CNI config follows from it.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cidrOf, formatCidr, parseCidr } from '../../src/cidr/index.js';
import { terminate } from '../lib/control-plane.js';
import type { NodeNet } from './net.js';
import { sh } from './sh.js';

export interface NodeBins {
  kubelet: string;
  kubeProxy: string;
  flanneld: string;
  /** Directory of the CNI plugins (bridge, host-local, loopback, portmap). */
  cniDir: string;
}

export interface NodeSpec {
  net: NodeNet;
  /** The node's own directory; everything it writes stays below it. */
  dir: string;
  /** cgroup path (same in every hierarchy) under which the kubelet puts its pods. */
  cgroupRoot: string;
  server: string;
  caCert: string;
  /** The node's client kubeconfig (user system:node:<name>). */
  kubeconfig: string;
  /** An admin kubeconfig for kube-proxy and flanneld, as their DaemonSets' service accounts would be. */
  adminKubeconfig: string;
  clusterCIDR: string;
  pauseImage: string;
  bins: NodeBins;
}

export interface RunningNode {
  spec: NodeSpec;
  socket: string;
  /** containerd first, then the kubelet and kube-proxy. */
  pids: number[];
  supervised: Supervised[];
}

const CGROUP_ROOT = '/sys/fs/cgroup';

export function containerdSocket(dir: string): string {
  return join(dir, 'containerd.sock');
}

export function cniConfDir(dir: string): string {
  return join(dir, 'cni');
}

function containerdConfig(spec: NodeSpec): string {
  const d = spec.dir;
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return [
    'version = 2',
    `root = "${join(d, 'containerd', 'root')}"`,
    `state = "${join(d, 'containerd', 'state')}"`,
    'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",',
    '  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]',
    '[grpc]',
    `  address = "${containerdSocket(d)}"`,
    `[plugins."io.containerd.internal.v1.opt"]`,
    `  path = "${join(d, 'containerd', 'opt')}"`,
    `[${cri}]`,
    `  sandbox_image = "${spec.pauseImage}"`,
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '  disable_apparmor = true',
    // Lowering oom_score_adj needs CAP_SYS_RESOURCE, which root lacks on some hosts (CI's among them).
    '  restrict_oom_score_adj = true',
    `[${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    `[${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `[${cri}.containerd.runtimes.runc.options]`,
    '  SystemdCgroup = false',
    `  Root = "${join(d, 'runc')}"`,
    `[${cri}.cni]`,
    `  bin_dir = "${spec.bins.cniDir}"`,
    `  conf_dir = "${cniConfDir(d)}"`,
    '',
  ].join('\n');
}

function kubeletConfig(spec: NodeSpec): string {
  const config = {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    authentication: { anonymous: { enabled: false }, webhook: { enabled: false }, x509: { clientCAFile: spec.caCert } },
    authorization: { mode: 'AlwaysAllow' },
    address: spec.net.address,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    cgroupDriver: 'cgroupfs',
    cgroupRoot: spec.cgroupRoot,
    failSwapOn: false,
    failCgroupV1: false,
    containerRuntimeEndpoint: `unix://${containerdSocket(spec.dir)}`,
    podLogsDir: join(spec.dir, 'pod-logs'),
    resolvConf: '/etc/resolv.conf',
    // The host's disk is shared by every node: pressure thresholds a full CI disk still meets.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    // Short so that a deleted pod's node is told quickly and tests stay short.
    nodeStatusUpdateFrequency: '4s',
    syncFrequency: '10s',
  };
  return JSON.stringify(config, null, 2);
}

/** Creates the node's cgroup root in every mounted hierarchy (cpuset needs its parent's cpus and mems). */
export async function createCgroupRoot(path: string): Promise<void> {
  for (const h of await cgroupHierarchies()) {
    const dir = join(CGROUP_ROOT, h, path);
    await mkdir(dir, { recursive: true });
    if (h === 'cpuset') {
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        await writeFile(join(dir, f), await readFile(join(CGROUP_ROOT, h, f), 'utf8'));
      }
    }
  }
}

export async function cgroupHierarchies(): Promise<string[]> {
  const mounts = await readFile('/proc/mounts', 'utf8');
  return mounts
    .split('\n')
    .map((l) => l.split(' '))
    // cgroup2 too: on a hybrid host runc and the kubelet also make dirs in the unified hierarchy.
    .filter((f) => (f[2] === 'cgroup' || f[2] === 'cgroup2') && f[1]?.startsWith(`${CGROUP_ROOT}/`))
    .map((f) => (f[1] ?? '').slice(CGROUP_ROOT.length + 1));
}

function spawnInNamespace(spec: NodeSpec, bin: string, args: string[], name: string, env: NodeJS.ProcessEnv): ChildProcess {
  const fd = openSync(join(spec.dir, `${name}.log`), 'a');
  try {
    // nsenter, not `ip netns exec`: the latter remounts /sys, hiding the cgroup mounts the kubelet needs.
    const child = spawn('nsenter', [`--net=/run/netns/${spec.net.namespace}`, '--', bin, ...args], {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...env },
    });
    if (child.pid === undefined) throw new Error(`could not start ${bin}`);
    child.on('error', () => undefined);
    return child;
  } finally {
    closeSync(fd);
  }
}

function inNamespace(spec: NodeSpec, bin: string, args: string[], name: string, env: NodeJS.ProcessEnv = {}): number {
  return spawnInNamespace(spec, bin, args, name, env).pid ?? 0;
}

/**
 * Restarts the process a second after it exits, as the kubelet restarts a DaemonSet's pod: flanneld exits
 * while its node has no podCIDR yet.
 */
export class Supervised {
  private child: ChildProcess | undefined;
  private stopped = false;

  constructor(private readonly start: () => ChildProcess) {
    this.launch();
  }

  private launch(): void {
    if (this.stopped) return;
    this.child = this.start();
    this.child.once('exit', () => setTimeout(() => this.launch(), 1_000).unref());
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.child?.pid !== undefined) await terminate(this.child.pid, 5_000);
  }
}

async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms`);
    await sleep(100);
  }
}

export async function startContainerd(spec: NodeSpec): Promise<RunningNode> {
  await mkdir(cniConfDir(spec.dir), { recursive: true });
  await mkdir(join(spec.dir, 'pod-logs'), { recursive: true });
  const config = join(spec.dir, 'containerd.toml');
  await writeFile(config, containerdConfig(spec));
  const pid = inNamespace(spec, 'containerd', ['--config', config], 'containerd');
  const socket = containerdSocket(spec.dir);
  await waitFor(`containerd of ${spec.net.name}`, 30_000, () => existsSync(socket));
  return { spec, socket, pids: [pid], supervised: [] };
}

/** Imports image archives (docker or OCI) into the node's CRI namespace. */
export async function importImages(node: RunningNode, archives: string[]): Promise<void> {
  for (const archive of archives) {
    await sh('ctr', ['--address', node.socket, '-n', 'k8s.io', 'images', 'import', archive]);
  }
}

export async function startKubelet(node: RunningNode): Promise<void> {
  const { spec } = node;
  const config = join(spec.dir, 'kubelet.json');
  await writeFile(config, kubeletConfig(spec));
  const args = [
    `--config=${config}`,
    `--kubeconfig=${spec.kubeconfig}`,
    `--root-dir=${join(spec.dir, 'kubelet')}`,
    `--cert-dir=${join(spec.dir, 'kubelet-pki')}`,
    `--hostname-override=${spec.net.name}`,
    `--node-ip=${spec.net.address}`,
    '--v=1',
  ];
  node.pids.push(inNamespace(spec, spec.bins.kubelet, args, 'kubelet'));
}

export async function startKubeProxy(node: RunningNode): Promise<void> {
  const { spec } = node;
  const args = [
    `--kubeconfig=${spec.adminKubeconfig}`,
    `--hostname-override=${spec.net.name}`,
    '--proxy-mode=iptables',
    `--cluster-cidr=${spec.clusterCIDR}`,
    // Conntrack limits and timeouts are the host kernel's; leave them alone.
    '--conntrack-max-per-core=0',
    '--conntrack-tcp-timeout-established=0',
    '--conntrack-tcp-timeout-close-wait=0',
    '--metrics-bind-address=127.0.0.1:10249',
    '--healthz-bind-address=127.0.0.1:10256',
  ];
  node.pids.push(inNamespace(spec, spec.bins.kubeProxy, args, 'kube-proxy'));
}

export function subnetFile(dir: string): string {
  return join(dir, 'flannel', 'subnet.env');
}

export async function startFlanneld(node: RunningNode): Promise<void> {
  const { spec } = node;
  const netConf = join(spec.dir, 'flannel', 'net-conf.json');
  await mkdir(join(spec.dir, 'flannel'), { recursive: true });
  await writeFile(netConf, JSON.stringify({ Network: spec.clusterCIDR, Backend: { Type: 'vxlan' } }));
  const args = [
    '--kube-subnet-mgr',
    `--kubeconfig-file=${spec.adminKubeconfig}`,
    `--iface=${spec.net.iface}`,
    '--ip-masq',
    `--subnet-file=${subnetFile(spec.dir)}`,
    `--net-config-path=${netConf}`,
  ];
  const env = { NODE_NAME: spec.net.name };
  node.supervised.push(new Supervised(() => spawnInNamespace(spec, spec.bins.flanneld, args, 'flanneld', env)));
}

/** FLANNEL_* values of a subnet.env file. */
export function parseSubnetEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(FLANNEL_[A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) out[m[1]] = m[2];
  }
  return out;
}

/**
 * The CNI config flannel's own plugin would hand to bridge + host-local: pods on cni0, addresses from the
 * node's subnet (FLANNEL_SUBNET is the gateway's address in it), the cluster network routed via cni0.
 */
export function flannelConflist(env: Record<string, string>, ipamDir: string): string {
  const subnet = env.FLANNEL_SUBNET;
  const network = env.FLANNEL_NETWORK;
  if (subnet === undefined || network === undefined) throw new Error('subnet.env lacks FLANNEL_SUBNET or FLANNEL_NETWORK');
  const [gateway, bits] = subnet.split('/');
  const conf = {
    cniVersion: '1.0.0',
    name: 'cbr0',
    plugins: [
      {
        type: 'bridge',
        bridge: 'cni0',
        isGateway: true,
        isDefaultGateway: true,
        hairpinMode: true,
        ipMasq: env.FLANNEL_IPMASQ !== 'true',
        mtu: Number(env.FLANNEL_MTU ?? '1450'),
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: networkOf(gateway ?? '', Number(bits)), gateway }]],
          routes: [{ dst: network }],
          dataDir: ipamDir,
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
  return JSON.stringify(conf, null, 2);
}

/** The network a gateway address and prefix length name: 10.233.64.1/24 → 10.233.64.0/24. */
function networkOf(gateway: string, prefix: number): string {
  const shift = BigInt(32 - prefix);
  return formatCidr(cidrOf('IPv4', (parseCidr(`${gateway}/32`).base >> shift) << shift, prefix));
}

/** Waits for flanneld's subnet.env, then writes the node's CNI config; the kubelet turns Ready after it. */
export async function writeCniWhenSubnetKnown(node: RunningNode, timeoutMs: number): Promise<Record<string, string>> {
  const file = subnetFile(node.spec.dir);
  await waitFor(`subnet.env of ${node.spec.net.name}`, timeoutMs, () => existsSync(file));
  const env = parseSubnetEnv(await readFile(file, 'utf8'));
  const conf = flannelConflist(env, join(node.spec.dir, 'ipam'));
  await writeFile(join(cniConfDir(node.spec.dir), '10-flannel.conflist'), conf);
  return env;
}
