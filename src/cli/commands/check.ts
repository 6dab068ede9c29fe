// `check`: a read-only audit of a live cluster's podCIDRs, in the spirit of `calicoctl ipam check`.
// It only lists Nodes (paginated, GET requests only) and never writes; exit codes 0/1/2/3 are stable.

import type { Env } from '../config.js';
import { type NodeInfo, type NodeSource, ResourceExpiredError } from '../../controller/ports.js';
import { apiFailure, createKubeClient, KubeConfigError, KubeNodeSource, loadKubeConfig } from '../../kube/index.js';
import { auditNodes } from '../../controller/node-audit.js';
import { checkSpec, parseToolFlags, processIO, USAGE_EXIT, type ToolConfig, type ToolIO } from './flags.js';
import { checkJson, checkText } from './report.js';

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
}

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
  let where = 'the API server';
  try {
    if (deps.nodeSource) source = deps.nodeSource(config);
    else ({ source, where } = await apiNodeSource(config, env));
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
  const findings = auditNodes(nodes, config.ranges, config.reserved);
  io.out(
    config.output === 'json'
      ? `${JSON.stringify(checkJson(findings, config.selector), null, 2)}\n`
      : checkText(findings, config.selector),
  );
  return findings.problems.length > 0 ? CHECK_EXIT.problems : CHECK_EXIT.clean;
}

/** Throws KubeConfigError when the client configuration cannot be loaded. */
async function apiNodeSource(config: ToolConfig, env: Env): Promise<{ source: Pick<NodeSource, 'list'>; where: string }> {
  const access = await loadKubeConfig(config.kube, { env });
  const client = createKubeClient(access, { qps: config.kube.qps, burst: config.kube.burst });
  const source = new KubeNodeSource({
    client,
    ...(config.selector !== undefined ? { labelSelector: config.selector } : {}),
  });
  return { source, where: access.server };
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
