// `podcidr-allocator plan`: the capacity of a set of flags, and of a file of ClusterCIDRs, printed as text or JSON.

import { readFileSync } from 'node:fs';
import type { Env } from '../config.js';
import { planCapacity } from './capacity.js';
import { parseToolFlags, planSpec, processIO, USAGE_EXIT, type ToolConfig, type ToolIO } from './flags.js';
import { planPools } from './pool-plan.js';
import { readPoolFile } from './pools-file.js';
import { planJson, planText, poolsPlanJson, poolsPlanText, REPORT_VERSION } from './report.js';

export interface PlanDeps {
  /** Reads -f's file ('-' is stdin); throws when it cannot. */
  readonly readFile?: (path: string) => string;
}

const readFromDisk = (path: string): string => readFileSync(path === '-' ? 0 : path, 'utf8');

/** `podcidr-allocator plan`: 0 with the plan printed, 2 on bad flags or a bad pool file (one line per problem). */
export function planCommand(args: readonly string[], env: Env, io: ToolIO = processIO, deps: PlanDeps = {}): number {
  const parsed = parseToolFlags(args, env, planSpec);
  if ('problems' in parsed) {
    io.err(parsed.problems.map((p) => `${p}\n`).join(''));
    return USAGE_EXIT;
  }
  const { config } = parsed;
  if (config.filename !== undefined) return planWithPools(config, config.filename, io, deps);
  const plan = planCapacity(config);
  io.out(config.output === 'json' ? `${JSON.stringify(planJson(plan), null, 2)}\n` : planText(plan));
  return 0;
}

function planWithPools(config: ToolConfig, filename: string, io: ToolIO, deps: PlanDeps): number {
  const source = filename === '-' ? 'stdin' : filename;
  let text: string;
  try {
    text = (deps.readFile ?? readFromDisk)(filename);
  } catch (err) {
    io.err(`--filename: cannot read ${source}: ${err instanceof Error ? err.message : String(err)}\n`);
    return USAGE_EXIT;
  }
  const reading = readPoolFile(text, source);
  if ('problems' in reading) {
    io.err(reading.problems.map((p) => `${p}\n`).join(''));
    return USAGE_EXIT;
  }
  const pools = planPools(reading.pools, config.ranges, config.reserved);
  const flags = config.ranges.length > 0 ? planCapacity(config) : undefined;
  if (config.output === 'json') {
    const base = flags
      ? planJson(flags)
      : { report: 'plan', version: REPORT_VERSION, maxNodes: null, ranges: [], unusedReserved: [], warnings: [] };
    io.out(`${JSON.stringify({ ...base, ...poolsPlanJson(pools) }, null, 2)}\n`);
    return 0;
  }
  const flagText = flags ? `Flags (--cluster-cidr, the pool served last):\n\n${planText(flags)}\n` : '';
  io.out(`${poolsPlanText(pools)}${flagText}`);
  return 0;
}
