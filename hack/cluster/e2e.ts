// npm run e2e:cluster: the shipped image on real kubelets. Builds the images, starts a cluster in a box,
// installs the controller with kustomize, then with the Helm chart, and checks what a user would: the
// pods Ready with one leader, every Node a podCIDR, flannel's subnet equal to it, pods getting IPs from
// their node's podCIDR and reaching each other across nodes, JSON logs and /metrics through the pod.
// Ends with "N passed, M failed"; exit 1 on any failure. Needs root.
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureBinaries, HACK_DIR, nodeBinDirs } from '../lib/control-plane.js';
import { SEED, startCluster, type Cluster } from './cluster.js';
import { buildImages, installWithHelm, installWithKustomize, Kube, type Images } from './install.js';
import { subnetFile, parseSubnetEnv } from './node.js';
import { sh } from './sh.js';

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

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s${last === '' ? '' : ` (${last})`}`);
    await sleep(1_000);
  }
}

async function readyControllerPods(kube: Kube, want: number): Promise<PodList['items']> {
  return until(`${want} controller pods Running and Ready`, 120_000, async () => {
    const pods = await kube.json<PodList>(['-n', 'kube-system', 'get', 'pods', '-l', 'app.kubernetes.io/name=podcidr-allocator']);
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
  const [base, bits] = cidr.split('/');
  const n = (a: string): number => a.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(bits));
  return Math.floor(n(ip) / size) === Math.floor(n(base ?? '') / size);
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
    const pods = await kube.json<PodList>(['-n', 'kube-system', 'get', 'pods', '-l', 'app.kubernetes.io/name=podcidr-allocator']);
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
  const podIPs = new Map<string, string>();
  await check('a pod on each node gets an IP inside its node\'s podCIDR', async () => {
    for (const node of cluster.nodes) {
      const name = `probe-${node.spec.net.name}`;
      await kube.run(['run', name, `--image=${images.PAUSE_IMAGE}`, '--image-pull-policy=Never', '--restart=Never',
        `--overrides=${JSON.stringify({ spec: { nodeName: node.spec.net.name } })}`]);
    }
    for (const node of cluster.nodes) {
      const name = `probe-${node.spec.net.name}`;
      const ip = await until(`${name} Running with an IP`, 60_000, async () => {
        const pod = await kube.json<PodList['items'][number]>(['get', 'pod', name]);
        return pod.status.phase === 'Running' && pod.status.podIP !== undefined ? pod.status.podIP : undefined;
      });
      const want = cidrs.get(node.spec.net.name) ?? '';
      if (!inCIDR(ip, want)) throw new Error(`${name}: IP ${ip} outside ${node.spec.net.name}'s podCIDR ${want}`);
      podIPs.set(node.spec.net.name, ip);
    }
    return [...podIPs].map(([n, ip]) => `${n} ${ip}`).join(', ');
  });
  await check('pods reach each other across nodes (ping from inside each pod\'s network namespace)', async () => {
    const out: string[] = [];
    const entries = [...podIPs];
    for (const [from, fromIP] of entries) {
      for (const [to, toIP] of entries) {
        if (from === to) continue;
        const ns = await podNetns(fromIP);
        const reply = await sh('ip', ['netns', 'exec', ns, 'ping', '-c', '3', '-W', '2', toIP]);
        const m = /(\d+) received/.exec(reply);
        if (m?.[1] === undefined || Number(m[1]) === 0) throw new Error(`${from} → ${to}: no reply from ${toIP}`);
        out.push(`${from}→${to} ${m[1]}/3`);
      }
    }
    return out.join(', ');
  });
}

/** The pod sandbox namespace whose eth0 holds ip. */
async function podNetns(ip: string): Promise<string> {
  const names = (await sh('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith('cni-'));
  for (const ns of names) {
    const addrs = await sh('ip', ['-n', ns, '-4', '-o', 'addr', 'show']).catch(() => '');
    if (addrs.includes(` ${ip}/`)) return ns;
  }
  throw new Error(`no pod network namespace holds ${ip}`);
}

async function main(): Promise<void> {
  say('building images (cached after the first run)');
  const images = await buildImages();
  const binDir = await ensureBinaries();
  const dirs = nodeBinDirs();
  const cluster = await startCluster({
    images: [images.PAUSE_ARCHIVE, images.APP_ARCHIVE],
    pauseImage: images.PAUSE_IMAGE,
    binDir,
    nodeBins: { kubelet: join(dirs.kube, 'kubelet'), kubeProxy: join(dirs.kube, 'kube-proxy'), flanneld: join(dirs.flannel, 'flanneld'), cniDir: dirs.cni },
    log: say,
  });
  try {
    const kube = new Kube(join(binDir, 'kubectl'), cluster.kubeconfigPath);
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
