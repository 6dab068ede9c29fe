// The `run` command's body: takes a checked Config and runs the controller until it stops.
// Placeholder until the controller wiring lands: it logs the Config and exits 1.

import type { Logger } from '../log.js';
import type { Config } from './config.js';

export interface RunDeps {
  readonly logger: Logger;
}

/** Resolves to the process exit code. */
export async function runController(config: Config, deps: RunDeps): Promise<number> {
  const log = deps.logger.child({ component: 'run' });
  log.info({ config }, 'configuration');
  if (!config.allocateNodeCIDRs) {
    log.info('allocation is disabled (--allocate-node-cidrs=false); serving health and metrics only');
  }
  log.error('controller wiring not available yet');
  return 1;
}
