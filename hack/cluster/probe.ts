// A pod per node, to see the pod network our podCIDRs make: each pod's IP, and pings between them from
// inside the pods' own network namespaces (the pause image has no ping of its own).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from './cluster.js';
import type { Kube } from './install.js';
import { sh } from './sh.js';

interface Pod {
  status: { phase?: string; podIP?: string };
}

/** Polls probe every second until it returns a value; the last error is in the timeout's message. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
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

/** Starts a pause pod pinned to each node and waits for its IP; node name → pod IP. */
export async function startProbePods(cluster: Cluster, kube: Kube, image: string): Promise<Map<string, string>> {
  const names = cluster.nodes.map((n) => n.spec.net.name);
  for (const node of names) {
    await kube.run(['run', `probe-${node}`, `--image=${image}`, '--image-pull-policy=Never', '--restart=Never',
      `--overrides=${JSON.stringify({ spec: { nodeName: node } })}`]);
  }
  const ips = new Map<string, string>();
  for (const node of names) {
    const ip = await until(`probe-${node} Running with an IP`, 60_000, async () => {
      const pod = JSON.parse(await kube.run(['get', 'pod', `probe-${node}`, '-o', 'json'])) as Pod;
      return pod.status.phase === 'Running' && pod.status.podIP !== undefined ? pod.status.podIP : undefined;
    });
    ips.set(node, ip);
  }
  return ips;
}

/** Replies out of three to a ping from the pod holding fromIP to toIP. */
export async function pingBetween(fromIP: string, toIP: string): Promise<number> {
  // ping exits 1 when no reply came at all: that is 0 replies, not an error.
  const reply = await sh('ip', ['netns', 'exec', await podNetns(fromIP), 'ping', '-c', '3', '-W', '2', toIP]).catch(() => '');
  return Number(/(\d+) received/.exec(reply)?.[1] ?? 0);
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
