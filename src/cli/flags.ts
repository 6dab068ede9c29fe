// The `run` command's flags as plain data: names, kinds, defaults and help text in one table.
// The parser, `--help` and the README's flag table all read this table, so they cannot drift apart.

import type { Options } from 'yargs';

/** Prefix of the environment variable that can set each flag, e.g. PODCIDR_ALLOCATOR_KUBE_API_QPS. */
export const envPrefix = 'PODCIDR_ALLOCATOR_';

/**
 * How a flag's text becomes a value:
 * - boolean: `--x`, `--x=false`, `--no-x`; values as Go's strconv.ParseBool takes them
 * - string, integer, number: one value, the last occurrence wins
 * - duration: Go syntax (`15s`, `1m30s`, `500ms`, `0`)
 * - list: comma-separated; with `repeatable` every occurrence adds to the list, otherwise the last wins
 */
export type FlagKind = 'boolean' | 'string' | 'integer' | 'number' | 'duration' | 'list';

export type FlagGroup = 'Allocation' | 'API server' | 'Controller' | 'Leader election' | 'Observability';

export interface FlagSpec {
  readonly kind: FlagKind;
  readonly group: FlagGroup;
  readonly describe: string;
  /** The default as an operator would type it; absent when the flag has none. */
  readonly default?: string;
  /** Shown instead of `default` when the default depends on other flags. */
  readonly defaultDescription?: string;
  /** list flags only: every occurrence adds to the list. */
  readonly repeatable?: boolean;
}

export const runFlags = {
  'allocate-node-cidrs': {
    kind: 'boolean',
    group: 'Allocation',
    default: 'true',
    describe:
      'Allocate podCIDRs to Nodes. When false, only the health and metrics endpoints are served. ' +
      '(kube-controller-manager defaults to false; allocating is what this program is for.)',
  },
  'cluster-cidr': {
    kind: 'list',
    group: 'Allocation',
    describe:
      'CIDR range(s) for pods, comma-separated: one, or one IPv4 and one IPv6. ' +
      'Entry i pairs with spec.podCIDRs[i]. The pool that serves every node after all ClusterCIDRs; ' +
      'without it, nodes are served from ClusterCIDR objects alone.',
  },
  'node-cidr-mask-size': {
    kind: 'integer',
    group: 'Allocation',
    defaultDescription: '24 (IPv4) or 64 (IPv6)',
    describe: 'Mask size of each node subnet in a single-stack cluster.',
  },
  'node-cidr-mask-size-ipv4': {
    kind: 'integer',
    group: 'Allocation',
    defaultDescription: '24',
    describe: 'Mask size of each IPv4 node subnet (dual-stack clusters).',
  },
  'node-cidr-mask-size-ipv6': {
    kind: 'integer',
    group: 'Allocation',
    defaultDescription: '64',
    describe: 'Mask size of each IPv6 node subnet (dual-stack clusters).',
  },
  'service-cluster-ip-range': {
    kind: 'list',
    group: 'Allocation',
    describe:
      'Service CIDR range(s), comma-separated, at most two. Subnets overlapping them are never allocated.',
  },
  'exclude-cidr': {
    kind: 'list',
    repeatable: true,
    group: 'Allocation',
    describe: 'CIDRs whose overlapping node subnets are never allocated; repeatable and comma-separated.',
  },
  'release-quarantine': {
    kind: 'duration',
    group: 'Allocation',
    default: '1m',
    describe:
      'How long a released podCIDR waits before it can be given to another Node, so routes to the old ' +
      'Node can be withdrawn first. 0 reuses at once, like kube-controller-manager.',
  },
  kubeconfig: {
    kind: 'string',
    group: 'API server',
    defaultDescription: 'in-cluster configuration',
    describe: 'Path to a kubeconfig file.',
  },
  master: {
    kind: 'string',
    group: 'API server',
    describe: 'URL of the Kubernetes API server; overrides the server in the kubeconfig.',
  },
  'kube-api-qps': {
    kind: 'number',
    group: 'API server',
    default: '20',
    describe:
      "Requests per second to the API server, on average, for each client, as in kube-controller-manager: the caches' lists and watches (Nodes, the range ConfigMap), the allocations (patches, Events, ConfigMap writes) and the leader lease each have a budget of their own.",
  },
  'kube-api-burst': {
    kind: 'integer',
    group: 'API server',
    default: '30',
    describe: 'Requests to the API server allowed in a burst above the QPS, for each client as above.',
  },
  'kube-api-content-type': {
    kind: 'string',
    group: 'API server',
    default: 'application/vnd.kubernetes.protobuf',
    describe:
      'Encoding of Node lists and watches: application/vnd.kubernetes.protobuf (as kube-controller-manager; ' +
      'the API server encodes it faster and a Node\'s status is skipped unread) or application/json.',
  },
  'concurrent-node-syncs': {
    kind: 'integer',
    group: 'Controller',
    default: '30',
    describe: 'Nodes reconciled in parallel (kube-controller-manager uses 30 podCIDR update workers).',
  },
  'audit-interval': {
    kind: 'duration',
    group: 'Controller',
    default: '1m',
    describe:
      'How often the leader audits every node\'s podCIDRs (duplicates, overlaps, out-of-range, reserved, ' +
      'missing) like the check command, exporting podcidr_allocator_audit_findings and an Event per new finding. 0 turns it off.',
  },
  'handoff-interval': {
    kind: 'duration',
    group: 'Controller',
    default: '10s',
    describe:
      'How often the leader rewrites its handoff (the ConfigMap podcidr-allocator-handoff) while it runs, when its ' +
      'Node cache has moved, so a replica that takes over after a crash (SIGKILL, OOM, a lost node) serves new Nodes ' +
      'from it before its full Node list is in. A graceful stop always writes one. 0 writes it only then.',
  },
  'log-level': {
    kind: 'string',
    group: 'Observability',
    default: 'info',
    describe: 'One of trace, debug, info, warn, error, fatal.',
  },
  'metrics-bind-address': {
    kind: 'string',
    group: 'Observability',
    default: '0.0.0.0:10262',
    describe:
      'host:port of the HTTP server for /metrics, /healthz and /readyz. The default port stays clear of ' +
      '10248-10260, which Kubernetes components use on control-plane hosts.',
  },
  'leader-elect': {
    kind: 'boolean',
    group: 'Leader election',
    default: 'true',
    describe: 'Allocate only while holding the Lease, so that replicas never allocate at the same time.',
  },
  'leader-elect-lease-duration': {
    kind: 'duration',
    group: 'Leader election',
    default: '15s',
    describe: 'How long other candidates wait after the last renewal before taking the Lease.',
  },
  'leader-elect-renew-deadline': {
    kind: 'duration',
    group: 'Leader election',
    default: '10s',
    describe: 'How long the leader keeps retrying a renewal before it stops leading.',
  },
  'leader-elect-retry-period': {
    kind: 'duration',
    group: 'Leader election',
    default: '2s',
    describe: 'Time between attempts to acquire or renew the Lease.',
  },
  'leader-elect-resource-name': {
    kind: 'string',
    group: 'Leader election',
    default: 'podcidr-allocator',
    describe: 'Name of the Lease object.',
  },
  'leader-elect-resource-namespace': {
    kind: 'string',
    group: 'Leader election',
    default: 'kube-system',
    describe: 'Namespace of the Lease object.',
  },
} as const satisfies Record<string, FlagSpec>;

export type RunFlagName = keyof typeof runFlags;

export const runFlagNames = Object.keys(runFlags) as RunFlagName[];

export function isRunFlag(name: string): name is RunFlagName {
  return Object.hasOwn(runFlags, name);
}

export function flagSpec(name: RunFlagName): FlagSpec {
  return runFlags[name];
}

/** `kube-api-qps` -> `PODCIDR_ALLOCATOR_KUBE_API_QPS`. */
export function envVarName(flag: RunFlagName): string {
  return envPrefix + flag.toUpperCase().replaceAll('-', '_');
}

/** yargs options for `--help`: typed defaults so the help reads `[default: 20]`, not `"20"`. */
export function helpOptions(): Record<string, Options> {
  const options: Record<string, Options> = {};
  for (const name of runFlagNames) {
    const spec = flagSpec(name);
    const option: Options = {
      type: yargsType(spec.kind),
      group: `${spec.group}:`,
      describe: `${spec.describe} [env ${envVarName(name)}]`,
    };
    if (spec.kind === 'list' && spec.repeatable === true) option.array = true;
    if (spec.default !== undefined) option.default = typedDefault(spec.kind, spec.default);
    if (spec.defaultDescription !== undefined) option.defaultDescription = spec.defaultDescription;
    options[name] = option;
  }
  return options;
}

function yargsType(kind: FlagKind): 'boolean' | 'number' | 'string' {
  if (kind === 'boolean') return 'boolean';
  if (kind === 'integer' || kind === 'number') return 'number';
  return 'string';
}

function typedDefault(kind: FlagKind, text: string): boolean | number | string {
  if (kind === 'boolean') return text === 'true';
  if (kind === 'integer' || kind === 'number') return Number(text);
  return text;
}
