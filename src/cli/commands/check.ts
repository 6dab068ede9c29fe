// `check`: a read-only audit of a live cluster's podCIDRs, in the spirit of `calicoctl ipam check`.
// It only lists Nodes (paginated) and ClusterCIDRs (GET requests only) and never writes; exit codes 0/1/2/3 are stable.

import type { Env } from '../config.js';
import { poolOf } from '../../controller/cluster-cidr.js';
import type { PoolDefinition } from '../../controller/pool-allocator.js';
import { type ClusterCIDRObject, type NodeInfo, type NodeSource, ResourceExpiredError } from '../../controller/ports.js';
import { listClusterCIDRs } from '../../kube/cluster-cidrs.js';
import { apiFailure, createKubeClient, KubeConfigError, KubeNodeSource, loadKubeConfig } from '../../kube/index.js';
import { auditNodes } from '../../controller/node-audit.js';
import { checkSpec, parseToolFlags, processIO, USAGE_EXIT, type ToolConfig, type ToolIO } from './flags.js';
import { checkJson, checkText, type PoolsRead } from './report.js';

export const CHECK_EXIT = {
  /** No problems found. */
  clean: 0,
  /** Problems found (foreign field managers alone do not count). */
  problems: 1,
  /** Bad flags, a kubeconfig that cannot be used, or a label selector the API server rejects. */
  usage: USAGE_EXIT,
  /** The API server could not be reached, or refused to list Nodes. */
  unreachable: 3,
} as const;

/** Nodes per list request: the API server's own recommendation for large lists. */
const PAGE_SIZE = 500;
/** A list whose continue token expires (410) starts over; past this many tries the check gives up. */
const MAX_LIST_ATTEMPTS = 3;

export interface CheckDeps {
  /** Where Nodes come from; by default the API server the flags and kubeconfig name. */
  readonly nodeSource?: (config: ToolConfig) => Pick<NodeSource, 'list'>;
  readonly pageSize?: number;
  /**
   * Where ClusterCIDRs come from; by default the same API server. When nodeSource is given and this
   * is not, pools are not read at all (the flags-only audit).
   */
  readonly clusterCIDRs?: (config: ToolConfig) => Promise<PoolListing>;
}

/** A list of ClusterCIDRs, or why there is none to read (no CRD, no grant). */
export type PoolListing = { readonly objects: readonly ClusterCIDRObject[] } | { readonly unavailable: string };

/** `podcidr-allocator check`; resolves to the exit code. */
export async function checkCommand(
  args: readonly string[],
  env: Env,
  io: ToolIO = processIO,
  deps: CheckDeps = {},
): Promise<number> {
  const parsed = parseToolFlags(args, env, checkSpec);
  if ('problems' in parsed) {
    io.err(parsed.problems.map((p) => `${p}\n`).join(''));
    return CHECK_EXIT.usage;
  }
  const { config } = parsed;
  let source: Pick<NodeSource, 'list'>;
  let listPools = deps.clusterCIDRs;
  let where = 'the API server';
  try {
    if (deps.nodeSource) source = deps.nodeSource(config);
    else ({ source, where, listPools } = await apiSources(config, env, deps));
  } catch (err) {
    if (!(err instanceof KubeConfigError)) throw err;
    io.err(`check: ${err.message}\n`);
    return CHECK_EXIT.usage;
  }
  let nodes: NodeInfo[];
  try {
    nodes = await listAll(source, deps.pageSize ?? PAGE_SIZE);
  } catch (err) {
    const failure = listFailure(err, config, where);
    io.err(`check: ${failure.message}\n`);
    return failure.exit;
  }
  let pools: PoolsRead | undefined;
  try {
    pools = listPools === undefined ? undefined : readPools(await listPools(config));
  } catch (err) {
    io.err(`check: cannot list ClusterCIDRs from ${where}: ${err instanceof Error ? err.message : String(err)}\n`);
    return CHECK_EXIT.unreachable;
  }
  if (config.ranges.length === 0 && (pools === undefined || pools.pools.length === 0)) {
    io.err(`--cluster-cidr: required: ${where} has no ClusterCIDR to check against${pools?.unavailable ? ` (${pools.unavailable})` : ''}\n`);
    return CHECK_EXIT.usage;
  }
  const findings = auditNodes(nodes, config.ranges, config.reserved, { pools: pools?.pools ?? [] });
  io.out(
    config.output === 'json'
      ? `${JSON.stringify(checkJson(findings, config.selector, pools), null, 2)}\n`
      : checkText(findings, config.selector, pools),
  );
  return findings.problems.length > 0 ? CHECK_EXIT.problems : CHECK_EXIT.clean;
}

/** Throws KubeConfigError when the client configuration cannot be loaded. */
async function apiSources(
  config: ToolConfig,
  env: Env,
  deps: CheckDeps,
): Promise<{ source: Pick<NodeSource, 'list'>; where: string; listPools: NonNullable<CheckDeps['clusterCIDRs']> }> {
  const access = await loadKubeConfig(config.kube, { env });
  const client = createKubeClient(access, { qps: config.kube.qps, burst: config.kube.burst });
  const source = new KubeNodeSource({
    client,
    ...(config.selector !== undefined ? { labelSelector: config.selector } : {}),
  });
  return { source, where: access.server, listPools: deps.clusterCIDRs ?? (() => listClusterCIDRs(client)) };
}

/** The pools the controller would serve; objects it would refuse are kept aside with their problems. */
function readPools(listing: PoolListing): PoolsRead {
  if ('unavailable' in listing) return { pools: [], invalid: [], unavailable: listing.unavailable };
  const pools: PoolDefinition[] = [];
  const invalid: { name: string; problems: readonly string[] }[] = [];
  for (const object of listing.objects) {
    const reading = poolOf(object);
    if ('pool' in reading) pools.push(reading.pool);
    else invalid.push({ name: object.name, problems: reading.problems });
  }
  return { pools, invalid };
}

/** Every Node, page by page; a 410 on a continue token starts the list over. */
async function listAll(source: Pick<NodeSource, 'list'>, limit: number): Promise<NodeInfo[]> {
  const signal = new AbortController().signal;
  for (let attempt = 1; ; attempt++) {
    const nodes: NodeInfo[] = [];
    let continueToken: string | undefined;
    try {
      do {
        const page = await source.list({ limit, signal, ...(continueToken !== undefined ? { continueToken } : {}) });
        nodes.push(...page.nodes);
        continueToken = page.continueToken;
      } while (continueToken !== undefined);
      return nodes;
    } catch (err) {
      if (!(err instanceof ResourceExpiredError) || attempt >= MAX_LIST_ATTEMPTS) throw err;
    }
  }
}

function listFailure(err: unknown, config: ToolConfig, where: string): { exit: number; message: string } {
  const text = err instanceof Error ? err.message : String(err);
  const cause = err instanceof Error ? err.cause : undefined;
  // A selector the API server cannot parse is bad input, not an unreachable server.
  if (config.selector !== undefined && apiFailure(cause)?.code === 400) {
    return { exit: CHECK_EXIT.usage, message: `--selector: rejected by the API server: ${text}` };
  }
  return { exit: CHECK_EXIT.unreachable, message: `cannot list nodes from ${where}: ${text}` };
}
