// npm run e2e:cluster: the shipped image on real kubelets. Checks the app image as built, starts a cluster
// in a box, installs the controller with kustomize, then with the Helm chart, and checks what a user would:
// the pods Ready with one leader, every Node a podCIDR, flannel's subnet equal to it, pods getting IPs from
// their node's podCIDR and reaching each other across nodes, JSON logs and /metrics through the pod. Then
// it disrupts the controller as operators do (rollout restart, leader pod deleted, its node drained) while
// Nodes join, and checks each waits less than a lease duration and no podCIDR is held twice.
// Ends with "N passed, M failed"; exit 1 on any failure. Needs root.
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { contains, parseCidr } from '../../src/cidr/index.js';
import { imageFacts } from '../images/inspect.js';
import { HACK_DIR } from '../lib/control-plane.js';
import { SEED, type Cluster } from './cluster.js';
import { installWithHelm, installWithKustomize, startBoxCluster, type Images, type Kube } from './install.js';
import { describeWaits, Joiners, NodeWatch } from './joiners.js';
import { subnetFile, parseSubnetEnv } from './node.js';
import { pingBetween, startProbePods, until } from './probe.js';

const REPO = join(HACK_DIR, '..');

interface Result {
  name: string;
  ok: boolean;
  detail: string;
}

const results: Result[] = [];
const t0 = Date.now();
const say = (line: string): void => console.error(`[e2e +${((Date.now() - t0) / 1000).toFixed(0)}s] ${line}`);

async function check(name: string, body: () => Promise<string>): Promise<void> {
  try {
    const detail = await body();
    results.push({ name, ok: true, detail });
    say(`PASS ${name}: ${detail}`);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    results.push({ name, ok: false, detail });
    say(`FAIL ${name}: ${detail}`);
  }
}

interface PodList {
  items: {
    metadata: { name: string };
    spec: { nodeName?: string };
    status: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
  }[];
}
interface NodeList {
  items: { metadata: { name: string }; spec: { podCIDR?: string; podCIDRs?: string[] } }[];
}

async function controllerPods(kube: Kube): Promise<PodList> {
  return kube.json<PodList>(['-n', 'kube-system', 'get', 'pods', '-l', 'app.kubernetes.io/name=podcidr-allocator']);
}

async function readyControllerPods(kube: Kube, want: number): Promise<PodList['items']> {
  return until(`${want} controller pods Running and Ready`, 120_000, async () => {
    const pods = await controllerPods(kube);
    const ready = pods.items.filter((p) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    return ready.length === want && pods.items.length === want ? ready : undefined;
  });
}

async function leaderOf(kube: Kube, pods: string[]): Promise<string> {
  return until('one replica holding the lease', 60_000, async () => {
    const lease = await kube.json<{ spec: { holderIdentity?: string } }>(['-n', 'kube-system', 'get', 'lease', 'podcidr-allocator']);
    const holder = lease.spec.holderIdentity ?? '';
    return pods.find((p) => holder.startsWith(p));
  });
}

function inCIDR(ip: string, cidr: string): boolean {
  return contains(parseCidr(cidr), parseCidr(`${ip}/32`));
}

async function nodeCIDRs(kube: Kube, count: number): Promise<Map<string, string>> {
  return until(`podCIDRs on all ${count} nodes`, 90_000, async () => {
    const nodes = await kube.json<NodeList>(['get', 'nodes']);
    const cidrs = new Map(nodes.items.map((n) => [n.metadata.name, n.spec.podCIDR ?? '']));
    return nodes.items.length === count && [...cidrs.values()].every((c) => c !== '') ? cidrs : undefined;
  });
}

async function controllerChecks(cluster: Cluster, kube: Kube, how: string, before?: Map<string, string>): Promise<Map<string, string>> {
  let cidrs = new Map<string, string>();
  await check(`${how}: two replicas Running and Ready, one leading`, async () => {
    const pods = await readyControllerPods(kube, 2);
    const leader = await leaderOf(kube, pods.map((p) => p.metadata.name));
    return `pods ${pods.map((p) => `${p.metadata.name}@${p.spec.nodeName ?? '?'}`).join(', ')}; leader ${leader}`;
  });
  await check(`${how}: every Node has its own podCIDR inside ${SEED.clusterCIDR}`, async () => {
    cidrs = await nodeCIDRs(kube, cluster.nodes.length);
    const values = [...cidrs.values()];
    if (new Set(values).size !== values.length) throw new Error(`a podCIDR held twice: ${values.join(', ')}`);
    const outside = values.filter((c) => !inCIDR(c.split('/')[0] ?? '', SEED.clusterCIDR) || !c.endsWith('/24'));
    if (outside.length > 0) throw new Error(`not a /24 of ${SEED.clusterCIDR}: ${outside.join(', ')}`);
    if (before !== undefined) {
      const moved = [...cidrs].filter(([n, c]) => before.get(n) !== c);
      if (moved.length > 0) throw new Error(`podCIDRs changed across the reinstall: ${moved.map(([n, c]) => `${n} ${c}`).join(', ')}`);
    }
    return [...cidrs].map(([n, c]) => `${n} ${c}`).join(', ');
  });
  await check(`${how}: logs are JSON lines`, async () => {
    const pods = await controllerPods(kube);
    const first = pods.items[0]?.metadata.name ?? '';
    const lines = (await kube.run(['-n', 'kube-system', 'logs', first])).split('\n').filter(Boolean);
    if (lines.length === 0) throw new Error(`${first} logged nothing`);
    const bad = lines.filter((l) => {
      try {
        return typeof (JSON.parse(l) as { msg?: unknown }).msg !== 'string';
      } catch {
        return true;
      }
    });
    if (bad.length > 0) throw new Error(`${bad.length} of ${lines.length} lines are not JSON log records: ${bad[0]}`);
    return `${lines.length} lines from ${first}, each a JSON record with msg`;
  });
  await check(`${how}: /metrics answers through each pod`, async () => {
    const out: string[] = [];
    for (const node of cluster.network.nodes) {
      const res = await fetch(`http://${node.address}:10262/metrics`, { signal: AbortSignal.timeout(5_000) });
      const text = await res.text();
      if (!res.ok || !text.includes('podcidr_allocator_')) throw new Error(`${node.name}: HTTP ${res.status}, no podcidr_allocator_ series`);
      out.push(`${node.name} ${text.split('\n').filter((l) => l.startsWith('podcidr_allocator_')).length} samples`);
    }
    return out.join(', ');
  });
  return cidrs;
}

async function podNetworkChecks(cluster: Cluster, kube: Kube, images: Images, cidrs: Map<string, string>): Promise<void> {
  await check('flannel on each node writes its podCIDR as its subnet', async () => {
    await cluster.waitForPodNetwork(60_000);
    const out: string[] = [];
    for (const node of cluster.nodes) {
      const env = parseSubnetEnv(await readFile(subnetFile(node.spec.dir), 'utf8'));
      const want = cidrs.get(node.spec.net.name) ?? '';
      const gateway = (env.FLANNEL_SUBNET ?? '').split('/')[0] ?? '';
      if (!inCIDR(gateway, want)) throw new Error(`${node.spec.net.name}: FLANNEL_SUBNET ${env.FLANNEL_SUBNET} outside podCIDR ${want}`);
      out.push(`${node.spec.net.name} ${env.FLANNEL_SUBNET}`);
    }
    return out.join(', ');
  });
  let podIPs = new Map<string, string>();
  await check('a pod on each node gets an IP inside its node\'s podCIDR', async () => {
    podIPs = await startProbePods(cluster, kube, images.PAUSE_IMAGE);
    for (const [node, ip] of podIPs) {
      const want = cidrs.get(node) ?? '';
      if (!inCIDR(ip, want)) throw new Error(`probe-${node}: IP ${ip} outside ${node}'s podCIDR ${want}`);
    }
    return [...podIPs].map(([n, ip]) => `${n} ${ip}`).join(', ');
  });
  await check('pods reach each other across nodes (ping from inside each pod\'s network namespace)', async () => {
    const out: string[] = [];
    for (const [from, fromIP] of podIPs) {
      for (const [to, toIP] of podIPs) {
        if (from === to) continue;
        const replies = await pingBetween(fromIP, toIP);
        if (replies === 0) throw new Error(`${from} → ${to}: no reply from ${toIP}`);
        out.push(`${from}→${to} ${replies}/3`);
      }
    }
    return out.join(', ');
  });
}

/** Most of the app image is its base (Node and glibc); what it adds is the bundle. */
const MAX_OWN_MB = 20;

async function imageChecks(images: Images): Promise<void> {
  await check(`image: the app image runs as 65532, adds only /app/dist and /app/package.json, ≤ ${MAX_OWN_MB} MB over its base`, async () => {
    const facts = await imageFacts(images.APP_ARCHIVE, images.NODE_ARCHIVE);
    if (facts.user !== '65532:65532') throw new Error(`runs as "${facts.user}", not 65532:65532`);
    if (facts.entrypoint[0] !== 'node') throw new Error(`entrypoint ${facts.entrypoint.join(' ')} does not start node`);
    const stray = facts.ownFiles.filter((f) => f !== 'app/' && f !== 'app/package.json' && !f.startsWith('app/dist/'));
    if (stray.length > 0) throw new Error(`files outside /app/dist and /app/package.json: ${stray.slice(0, 10).join(', ')}`);
    const mb = (b: number): string => (b / 1e6).toFixed(1);
    if (facts.ownBytes > MAX_OWN_MB * 1e6) throw new Error(`adds ${mb(facts.ownBytes)} MB over its base`);
    return `user ${facts.user}, ${facts.ownFiles.length} paths added (${mb(facts.ownBytes)} MB), ${mb(facts.totalBytes)} MB in all`;
  });
}

/**
 * What an operator does to the controller while Nodes join: a rollout restart, deleting the leader pod,
 * draining the leader's node. Every Node must get its podCIDR within one lease duration, and none twice.
 */
async function disruptionChecks(cluster: Cluster, kube: Kube): Promise<void> {
  const watch = await NodeWatch.start(cluster.kubeconfigPath);
  try {
    await disruption(watch, 'kubectl rollout restart of the Deployment while Nodes join', 'rollout', async (joiners) => {
      await kube.run(['-n', 'kube-system', 'rollout', 'restart', 'deployment/podcidr-allocator']);
      const rolled = kube.run(['-n', 'kube-system', 'rollout', 'status', 'deployment/podcidr-allocator', '--timeout=180s']);
      await joiners.addWhile(rolled, 2_000, 4);
      await rolled;
      return `rolled out; ${await leaderSummary(kube)}`;
    });
    await disruption(watch, 'the leader pod deleted while Nodes join', 'orphan', async (joiners) => {
      const before = await leaderPod(kube);
      const deleted = kube.run(['-n', 'kube-system', 'delete', 'pod', before.name, '--wait=true']);
      await joiners.addWhile(deleted, 1_000, 5);
      await deleted;
      const after = await until('a new leader', 60_000, async () => {
        const now = await leaderPod(kube);
        return now.name === before.name ? undefined : now;
      });
      await readyControllerPods(kube, 2);
      return `leader ${before.name} deleted; ${after.name} leads; two replicas Ready again`;
    });
    await disruption(watch, 'the leader\'s node drained while Nodes join', 'drain', async (joiners) => {
      const before = await leaderPod(kube);
      const drained = kube.run(['drain', before.node, '--ignore-daemonsets', '--delete-emptydir-data', '--force', '--timeout=120s']);
      await joiners.addWhile(drained, 1_000, 5);
      await drained;
      const after = await until('a leader on another node', 60_000, async () => {
        const now = await leaderPod(kube);
        return now.node === before.node ? undefined : now;
      });
      await kube.run(['uncordon', before.node]);
      await readyControllerPods(kube, 2);
      return `${before.node} drained (leader ${before.name}); ${after.name} on ${after.node} leads; uncordoned, two replicas Ready again`;
    });
  } finally {
    watch.stop();
  }
}

/** Runs a disruption while Nodes join, then checks their waits and that no podCIDR is held twice. */
async function disruption(watch: NodeWatch, name: string, prefix: string, act: (joiners: Joiners) => Promise<string>): Promise<void> {
  const joiners = new Joiners(watch, `joiner-${prefix}`);
  await check(name, async () => {
    try {
      const what = await act(joiners);
      const waits = await joiners.waits(60_000);
      const slow = waits.filter((w) => w.ms > LEASE_DURATION_MS);
      if (slow.length > 0) throw new Error(`waited over ${LEASE_DURATION_MS / 1000} s: ${describeWaits(slow)}`);
      const twice = watch.duplicates();
      if (twice.length > 0) throw new Error(`a podCIDR held twice: ${twice.join('; ')}`);
      return `${what}; ${describeWaits(waits)}; ${watch.podCIDRs.size} podCIDRs, all distinct`;
    } finally {
      await joiners.removeAll();
    }
  });
}

/** The chart's --leader-elect-lease-duration: the longest a handoff may leave a Node waiting. */
const LEASE_DURATION_MS = 15_000;

async function leaderPod(kube: Kube): Promise<{ name: string; node: string }> {
  const pods = await controllerPods(kube);
  const name = await leaderOf(kube, pods.items.map((p) => p.metadata.name));
  return { name, node: pods.items.find((p) => p.metadata.name === name)?.spec.nodeName ?? '' };
}

async function leaderSummary(kube: Kube): Promise<string> {
  const pods = await readyControllerPods(kube, 2);
  const leader = await leaderOf(kube, pods.map((p) => p.metadata.name));
  return `pods ${pods.map((p) => p.metadata.name).join(', ')} Ready, ${leader} leads`;
}

async function main(): Promise<void> {
  say('building images (cached after the first run)');
  const { cluster, images, kube } = await startBoxCluster({ log: say });
  try {
    await imageChecks(images);
    let overlay = '';
    await check('kustomize: kubectl apply -k of an overlay of the base', async () => {
      overlay = await installWithKustomize(cluster, kube, images);
      return `applied ${relative(REPO, overlay)} with image ${images.APP_IMAGE}`;
    });
    const cidrs = await controllerChecks(cluster, kube, 'kustomize');
    await podNetworkChecks(cluster, kube, images, cidrs);
    await check('helm: the kustomize install removed, then helm install --wait of the chart', async () => {
      await kube.run(['delete', '-k', overlay, '--wait=true']);
      await installWithHelm(cluster, images);
      return 'helm install returned after --wait';
    });
    await controllerChecks(cluster, kube, 'helm', cidrs);
    await disruptionChecks(cluster, kube);
  } finally {
    await cluster.stop();
    say('cluster removed');
  }
}

main()
  .catch((err: unknown) => {
    results.push({ name: 'cluster start', ok: false, detail: err instanceof Error ? err.message : String(err) });
    say(`FAIL ${err instanceof Error ? err.message : String(err)}`);
  })
  .finally(() => {
    const failed = results.filter((r) => !r.ok).length;
    console.log(`${results.length - failed} passed, ${failed} failed`);
    process.exitCode = failed === 0 ? 0 : 1;
  });
