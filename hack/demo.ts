// `npm run demo`: a local control plane, six nodes like a small cluster, the allocator giving them podCIDRs,
// then a node deleted and its range released. Everything it starts is stopped on exit, Ctrl-C or failure.
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { parseCidr, type Cidr } from '../src/cidr/index.js';
import { ControllerProcess, type LogLine } from './lib/controller-process.js';
import { startControlPlane, type ControlPlane } from './lib/control-plane.js';

const USAGE = `Usage: npm run demo -- [--cluster] [--cluster-cidr CIDR] [--node-cidr-mask-size N] [--nodes N] [--keep]

  --cluster                  real nodes instead: kubelets, containerd and flannel in network namespaces,
                             the controller's image installed with the Helm chart, a pod per node
                             getting an IP from its podCIDR (needs root; the first run builds a while)
  --cluster-cidr CIDR        range the node subnets are cut from (default 10.233.64.0/18)
  --node-cidr-mask-size N    prefix length of each node subnet (default 24)
  --nodes N                  nodes to register, up to 3 control-plane, the rest workers (default 6);
                             with --cluster, nodes to start (1 to 8, default 2)
  --keep                     leave the cluster and the allocator running until Ctrl-C, with kubectl hints`;

/** Short, so a node added after the delete shows the released range held back without a long wait. */
const QUARANTINE = '5s';

interface DemoOptions {
  readonly clusterCIDR: Cidr;
  readonly clusterText: string;
  readonly nodeMask: number;
  readonly nodes: number;
  readonly keep: boolean;
  readonly cluster: boolean;
}

interface DemoNode {
  readonly name: string;
  readonly role: 'control-plane' | 'worker';
  readonly address: string;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): DemoOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      'cluster-cidr': { type: 'string', default: '10.233.64.0/18' },
      'node-cidr-mask-size': { type: 'string', default: '24' },
      nodes: { type: 'string' },
      keep: { type: 'boolean', default: false },
      cluster: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const clusterText = values['cluster-cidr'];
  let clusterCIDR: Cidr;
  try {
    clusterCIDR = parseCidr(clusterText);
  } catch (err) {
    throw new UsageError(`--cluster-cidr: ${err instanceof Error ? err.message : String(err)}`);
  }
  const nodeMask = Number(values['node-cidr-mask-size']);
  if (!Number.isInteger(nodeMask) || nodeMask <= clusterCIDR.prefix || nodeMask > clusterCIDR.bits) {
    throw new UsageError(`--node-cidr-mask-size must be an integer in ${clusterCIDR.prefix + 1}..${clusterCIDR.bits}, got ${values['node-cidr-mask-size']}`);
  }
  const nodes = Number(values.nodes ?? (values.cluster ? 2 : 6));
  const maxNodes = values.cluster ? 8 : 100;
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > maxNodes) {
    throw new UsageError(`--nodes must be an integer in 1..${maxNodes}${values.cluster ? ' with --cluster' : ''}, got ${values.nodes}`);
  }
  if (capacity(clusterCIDR, nodeMask) < BigInt(nodes) + 1n) {
    throw new UsageError(`--cluster-cidr ${clusterText} holds ${capacity(clusterCIDR, nodeMask)} /${nodeMask} subnets; the demo needs --nodes + 1`);
  }
  if (values.cluster && clusterCIDR.family !== 'IPv4') throw new UsageError('--cluster: the cluster in a box is IPv4 only; --cluster-cidr must be an IPv4 range');
  return { clusterCIDR, clusterText, nodeMask, nodes, keep: values.keep, cluster: values.cluster };
}

function capacity(cluster: Cidr, nodeMask: number): bigint {
  return 1n << BigInt(nodeMask - cluster.prefix);
}

/** Pod addresses in one node subnet; IPv4 loses its network and broadcast addresses. */
function podsPerNode(cluster: Cidr, nodeMask: number): bigint {
  const size = 1n << BigInt(cluster.bits - nodeMask);
  return cluster.family === 'IPv4' && size > 2n ? size - 2n : size;
}

/** Up to three control-plane nodes, like an HA control plane; the rest are workers. */
function planNodes(count: number): DemoNode[] {
  const controlPlanes = Math.min(3, Math.max(1, Math.floor(count / 2)));
  return Array.from({ length: count }, (_, i) => {
    const role = i < controlPlanes ? 'control-plane' : 'worker';
    const name = role === 'control-plane' ? `cp-${i + 1}` : `worker-${i - controlPlanes + 1}`;
    return { name, role, address: `192.168.10.${11 + i}` };
  });
}

function nodeBody(node: DemoNode): k8s.V1Node {
  const labels: Record<string, string> = {
    'kubernetes.io/hostname': node.name,
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': 'amd64',
  };
  if (node.role === 'control-plane') labels['node-role.kubernetes.io/control-plane'] = '';
  const resources = { cpu: node.role === 'control-plane' ? '4' : '8', memory: node.role === 'control-plane' ? '16Gi' : '32Gi', pods: '110', 'ephemeral-storage': '100Gi' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: node.name, labels },
    spec: node.role === 'control-plane' ? { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] } : {},
    status: {
      addresses: [
        { type: 'InternalIP', address: node.address },
        { type: 'Hostname', address: node.name },
      ],
      capacity: resources,
      allocatable: resources,
      nodeInfo: {
        architecture: 'amd64',
        operatingSystem: 'linux',
        osImage: 'Debian GNU/Linux 13 (trixie)',
        kernelVersion: '6.12.0-demo',
        kubeletVersion: 'v1.34.4',
        kubeProxyVersion: '',
        containerRuntimeVersion: 'containerd://2.1.4',
        machineID: '',
        systemUUID: '',
        bootID: '',
      },
    },
  };
}

/** Where Ctrl-C goes: to `next` when the demo waits for it (--keep), else it ends the demo. */
interface Interrupts {
  next?: () => void;
}

/** Things to undo, last started first; run once, whatever ends the demo. */
class Teardown {
  readonly #steps: { what: string; run: () => Promise<unknown> }[] = [];
  #done: Promise<void> | undefined;

  add(what: string, run: () => Promise<unknown>): void {
    this.#steps.push({ what, run });
  }

  run(): Promise<void> {
    this.#done ??= (async () => {
      for (const step of this.#steps.reverse()) {
        try {
          await step.run();
        } catch (err) {
          process.stderr.write(`demo: could not ${step.what}: ${err instanceof Error ? err.message : String(err)}\n`);
        }
      }
    })();
    return this.#done;
  }
}

const say = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, col) => cell.padEnd(widths[col] ?? 0)).join('   ').trimEnd());
}

/** Sum of every sample of one metric family (all label sets). */
function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${seconds(timeoutMs)} waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function podCIDRsOf(core: k8s.CoreV1Api): Promise<Map<string, string>> {
  const list = await core.listNode();
  return new Map(list.items.map((n) => [n.metadata?.name ?? '', n.spec?.podCIDR ?? '']));
}

async function demo(options: DemoOptions, teardown: Teardown, interrupts: Interrupts): Promise<void> {
  const started = Date.now();
  say('Starting a local control plane (etcd + kube-apiserver; binaries are built on first use, which takes a while)...');
  const cp: ControlPlane = await startControlPlane({ log: (line) => say(`  ${line}`) });
  teardown.add('stop the control plane', () => cp.stop());
  say(`  ready in ${seconds(Date.now() - started)}; certificates, data and logs in ${cp.dir}`);

  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const core = kc.makeApiClient(k8s.CoreV1Api);

  const flags = [
    '--cluster-cidr', options.clusterText,
    '--node-cidr-mask-size', String(options.nodeMask),
    '--leader-elect=false',
    '--release-quarantine', QUARANTINE,
  ];
  say();
  say(`Starting podcidr-allocator run ${flags.join(' ')}`);
  let t0 = Date.now();
  let showProgress = true;
  const assigned = (line: LogLine): void => {
    if (!showProgress || line.msg !== 'assigned podCIDRs' || typeof line.node !== 'string') return;
    const cidrs = Array.isArray(line.podCIDRs) ? line.podCIDRs.join(',') : '';
    say(`  ${line.node.padEnd(10)} <- ${cidrs}   (+${seconds(Date.now() - t0)})`);
  };
  const controller = await ControllerProcess.start({ kubeconfig: cp.kubeconfigPath, args: flags, onLog: assigned });
  teardown.add('stop the allocator', () => controller.stop());
  say(`  serving metrics at http://${controller.address}/metrics (pid ${controller.pid ?? '?'})`);

  const nodes = planNodes(options.nodes);
  say();
  say(`Registering ${nodes.length} nodes; the allocator patches spec.podCIDR as each appears:`);
  t0 = Date.now();
  // One by one, as kubelets register on a cluster's first boot.
  for (const n of nodes) await core.createNode({ body: nodeBody(n) });
  const cidrs = await waitFor('every node to get a podCIDR', async () => {
    const all = await podCIDRsOf(core);
    return nodes.every((n) => all.get(n.name)) ? all : undefined;
  });

  showProgress = false;
  say();
  const rows = [['NODE', 'ROLE', 'INTERNAL-IP', 'PODCIDR'], ...nodes.map((n) => [n.name, n.role, n.address, cidrs.get(n.name) ?? ''])];
  for (const line of table(rows)) say(line);
  say();
  const total = capacity(options.clusterCIDR, options.nodeMask);
  const used = BigInt(nodes.length);
  say(
    `${options.clusterText}: ${total} node subnets of /${options.nodeMask}, ` +
      `${podsPerNode(options.clusterCIDR, options.nodeMask)} pod addresses each, ${used} used, ${total - used} free`,
  );

  const victim = nodes[nodes.length - 1];
  if (victim === undefined) return;
  const victimCIDR = cidrs.get(victim.name) ?? '';
  say();
  say(`Deleting node ${victim.name} (${victimCIDR})...`);
  await core.deleteNode({ name: victim.name });
  await controller.waitForLog((l) => l.node === victim.name && l.msg === 'released podCIDRs of deleted node');
  const metrics = await controller.metrics();
  say(`  released ${victimCIDR}; it is handed out again only after a ${QUARANTINE} quarantine. From /metrics:`);
  const series = [
    ['podcidr_allocator_range_used_cidrs', '(quarantined ones count as used)'],
    ['podcidr_allocator_range_quarantined_cidrs', ''],
    ['podcidr_allocator_range_free_cidrs', ''],
  ] as const;
  for (const [name, note] of series) say(`    ${name} ${metricSum(metrics, name)} ${note}`.trimEnd());

  const workers = nodes.filter((n) => n.role === 'worker').length;
  const newcomer: DemoNode = { name: `worker-${workers + 1}`, role: 'worker', address: `192.168.10.${11 + nodes.length}` };
  say(`Adding node ${newcomer.name}...`);
  await core.createNode({ body: nodeBody(newcomer) });
  const got = await waitFor(`${newcomer.name} to get a podCIDR`, async () => (await podCIDRsOf(core)).get(newcomer.name) || undefined);
  say(`  ${newcomer.name} got ${got}${got === victimCIDR ? '' : ` (not ${victimCIDR}: still in quarantine)`}`);

  if (options.keep) {
    say();
    say('The cluster and the allocator keep running. In another shell:');
    say(`  export KUBECONFIG=${cp.kubeconfigPath} PATH=${cp.binDir}:$PATH`);
    say('  kubectl get nodes -o custom-columns=NAME:.metadata.name,PODCIDR:.spec.podCIDR');
    say(`  kubectl create -f - <<< '{"apiVersion":"v1","kind":"Node","metadata":{"name":"worker-9"}}'`);
    say('  kubectl get events -n default');
    say(`  curl -s http://${controller.address}/metrics | grep cidrset`);
    say('Press Ctrl-C to stop everything.');
    await new Promise<void>((resolve) => {
      interrupts.next = resolve;
    });
  }

  say();
  say('Stopping the allocator and the control plane...');
  const code = await controller.stop();
  if (code !== 0) throw new Error(`the allocator exited with ${String(code)}\n${controller.tail()}`);
}

/** The cluster in a box: loaded only for --cluster, which needs root for namespaces, mounts and cgroups. */
async function runClusterDemo(options: DemoOptions, teardown: Teardown, interrupts: Interrupts): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('--cluster needs root: it makes network namespaces, mounts and cgroups');
  const { clusterDemo } = await import('./cluster/demo.js');
  await clusterDemo(
    { nodes: options.nodes, keep: options.keep, ranges: { clusterCIDR: options.clusterText, nodeCIDRMaskSize: options.nodeMask } },
    {
      say,
      onTeardown: (what, run) => teardown.add(what, run),
      untilInterrupted: () => new Promise<void>((resolve) => (interrupts.next = resolve)),
    },
  );
}

async function main(): Promise<number> {
  let options: DemoOptions | 'help';
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError) && !(err instanceof TypeError)) throw err;
    process.stderr.write(`demo: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (options === 'help') {
    say(USAGE);
    return 0;
  }
  const teardown = new Teardown();
  const interrupts: Interrupts = {};
  const interrupt = (): void => {
    const next = interrupts.next;
    interrupts.next = undefined;
    if (next) return next();
    process.stderr.write('\ndemo: interrupted; cleaning up\n');
    void teardown.run().then(() => process.exit(130));
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  try {
    if (options.cluster) await runClusterDemo(options, teardown, interrupts);
    else await demo(options, teardown, interrupts);
    await teardown.run();
    say('Done.');
    return 0;
  } catch (err) {
    process.stderr.write(`demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await teardown.run();
    return 1;
  }
}

process.exitCode = await main();
