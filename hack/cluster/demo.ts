// `npm run demo -- --cluster`: the controller's image on real kubelets. Starts a cluster in a box, installs
// the chart, and shows what the podCIDRs become: flannel's subnet on each node, a pod per node with an IP
// from it, and the pods pinging each other. Everything is removed at the end (or at Ctrl-C with --keep).
import { installWithHelm, startBoxCluster, type Ranges } from './install.js';
import { pingBetween, startProbePods } from './probe.js';

export interface ClusterDemoOptions {
  readonly nodes: number;
  readonly keep: boolean;
  readonly ranges: Ranges;
}

/** What the demo's shell gives: output, a place to register undo steps, and a wait for Ctrl-C. */
export interface DemoShell {
  say(line?: string): void;
  onTeardown(what: string, run: () => Promise<unknown>): void;
  untilInterrupted(): Promise<void>;
}

export async function clusterDemo(options: ClusterDemoOptions, { say, onTeardown, untilInterrupted }: DemoShell): Promise<void> {
  say(`Building the images and node binaries (cached after the first run), then ${options.nodes} nodes...`);
  const started = Date.now();
  const { cluster, images, kube } = await startBoxCluster({
    nodes: Array.from({ length: options.nodes }, (_, i) => `node-${i + 1}`),
    clusterCIDR: options.ranges.clusterCIDR,
    log: (line) => say(`  ${line}`),
  });
  onTeardown('remove the cluster', () => cluster.stop());
  say(`Installing ${images.APP_IMAGE} with the Helm chart: --cluster-cidr ${options.ranges.clusterCIDR}, /${options.ranges.nodeCIDRMaskSize} per node`);
  await installWithHelm(cluster, images, options.ranges);
  const subnets = await cluster.waitForPodNetwork(180_000);
  const podCIDRs = new Map((await kube.run(['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name} {.spec.podCIDR}{"\\n"}{end}']))
    .split('\n').filter(Boolean).map((l) => l.split(' ') as [string, string]));
  const pods = await startProbePods(cluster, kube, images.PAUSE_IMAGE);
  say();
  say(`${'node'.padEnd(8)} ${'podCIDR'.padEnd(17)} ${'flannel subnet'.padEnd(17)} pod IP`);
  for (const node of cluster.nodes.map((n) => n.spec.net.name)) {
    say(`${node.padEnd(8)} ${(podCIDRs.get(node) ?? '-').padEnd(17)} ${(subnets.get(node)?.FLANNEL_SUBNET ?? '-').padEnd(17)} ${pods.get(node) ?? '-'}`);
  }
  say();
  for (const [from, fromIP] of pods) {
    for (const [to, toIP] of pods) {
      if (from !== to) say(`ping from the pod on ${from} (${fromIP}) to the pod on ${to} (${toIP}): ${await pingBetween(fromIP, toIP)}/3 replies`);
    }
  }
  say(`\nAll up in ${((Date.now() - started) / 1000).toFixed(0)} s.`);
  if (options.keep) {
    say(`\nexport KUBECONFIG=${cluster.kubeconfigPath}`);
    say('  kubectl get nodes -o custom-columns=NAME:.metadata.name,PODCIDR:.spec.podCIDR');
    say('  kubectl -n kube-system logs deploy/podcidr-allocator');
    say('Press Ctrl-C to remove the cluster.');
    await untilInterrupted();
  }
}
