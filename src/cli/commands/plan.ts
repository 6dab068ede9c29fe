// `podcidr-allocator plan`: the capacity of a set of flags, printed as text or JSON.

import type { Env } from '../config.js';
import { planCapacity } from './capacity.js';
import { parseToolFlags, planSpec, processIO, USAGE_EXIT, type ToolIO } from './flags.js';
import { planJson, planText } from './report.js';

/** `podcidr-allocator plan`: 0 with the plan printed, 2 on bad flags (one line per problem). */
export function planCommand(args: readonly string[], env: Env, io: ToolIO = processIO): number {
  const parsed = parseToolFlags(args, env, planSpec);
  if ('problems' in parsed) {
    io.err(parsed.problems.map((p) => `${p}\n`).join(''));
    return USAGE_EXIT;
  }
  const { config } = parsed;
  const plan = planCapacity(config);
  io.out(config.output === 'json' ? `${JSON.stringify(planJson(plan), null, 2)}\n` : planText(plan));
  return 0;
}
