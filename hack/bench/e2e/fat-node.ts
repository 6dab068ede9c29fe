// Nodes shaped like a kubelet registers them: conditions, addresses, nodeInfo, capacity and ~40 images.
// The JSON is built once per node and never parsed by the benchmark, so creating thousands stays cheap.

/** Label every benchmark node carries, so one selector finds (and deletes) exactly them. */
export const BENCH_LABEL = 'bench.podcidr-allocator.io/run';

/** A digest-like hex string of 64 characters, stable for (seed, k). */
function digest(seed: number, k: number): string {
  return ((seed * 2654435761 + k * 40503) >>> 0).toString(16).padStart(8, '0').repeat(8);
}

/**
 * 40 images: most with the usual two names (digest + tag); every 20th one carries ~10 KB of names,
 * like the images of a busy node that many tags point at.
 */
function images(i: number): { names: string[]; sizeBytes: number }[] {
  return Array.from({ length: 40 }, (_, k) => {
    const repo = `registry.example.com/platform/team-${k % 7}/service-${k}`;
    const names = [`${repo}@sha256:${digest(i, k)}`, `${repo}:v1.${k}.${i % 10}`];
    if (k % 20 === 0) {
      for (let t = 0; t < 80; t++) names.push(`${repo}:release-2026.${t}-build-${digest(k, t).slice(0, 40)}`);
    }
    return { names, sizeBytes: 50_000_000 + k * 1_000_003 };
  });
}

/** The body of POST /api/v1/nodes for node `name` number i. */
export function fatNodeJson(name: string, i: number, runLabel: string): string {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const zone = `zone-${'abc'[i % 3] ?? 'a'}`;
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        [BENCH_LABEL]: runLabel,
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/os': 'linux',
        'kubernetes.io/hostname': name,
        'node.kubernetes.io/instance-type': 'm6i.2xlarge',
        'topology.kubernetes.io/region': 'region-1',
        'topology.kubernetes.io/zone': zone,
        'node-pool': `pool-${i % 20}`,
      },
      annotations: {
        'node.alpha.kubernetes.io/ttl': '0',
        'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
      },
    },
    spec: { providerID: `bench:///${zone}/i-${i.toString(16).padStart(17, '0')}` },
    status: {
      capacity: { cpu: '8', memory: '32386544Ki', pods: '110', 'ephemeral-storage': '104845292Ki' },
      allocatable: { cpu: '7910m', memory: '31369712Ki', pods: '110', 'ephemeral-storage': '95551679124' },
      conditions: [
        ['MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'],
        ['DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'],
        ['PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'],
        ['Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'],
      ].map(([type, status, reason, message]) => ({
        type,
        status,
        reason,
        message,
        lastHeartbeatTime: now,
        lastTransitionTime: now,
      })),
      addresses: [
        { type: 'InternalIP', address: `172.16.${(i >> 8) & 255}.${i & 255}` },
        { type: 'Hostname', address: name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: digest(i, 1).slice(0, 32),
        systemUUID: `ec2${digest(i, 2).slice(0, 5)}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
        bootID: `${digest(i, 3).slice(0, 8)}-0000-4000-8000-000000000000`,
        kernelVersion: '6.1.0-28-cloud-amd64',
        osImage: 'Debian GNU/Linux 12 (bookworm)',
        containerRuntimeVersion: 'containerd://1.7.24',
        kubeletVersion: 'v1.34.4',
        kubeProxyVersion: '',
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
      images: images(i),
    },
  });
}

/** The podCIDR the raw contestant gives node number i: the i-th /24 of 10.0.0.0/8. */
export function precomputedCidr(i: number): string {
  return `10.${(i >> 8) & 255}.${i & 255}.0/24`;
}
