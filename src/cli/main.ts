#!/usr/bin/env node
// Entry point of the podcidr-allocator command: the yargs command tree, usage errors and exit codes.
// Exit 2 means a usage error, printed as one line per problem on stderr and never with a stack trace.

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { packageVersion } from '../kube/client.js';
import { createLogger } from '../log.js';
import { parseRunConfig, type Env } from './config.js';
import { envPrefix, helpOptions } from './flags.js';
import { runController } from './run.js';
import { checkCommand } from './commands/check.js';
import { checkSpec, planSpec, toolHelpOptions } from './commands/flags.js';
import { planCommand } from './commands/plan.js';

const usageExit = 2;

const runEpilogue =
  `Every flag can also be set through an environment variable named ${envPrefix}<FLAG> in upper ` +
  `snake case (shown as [env ...]); lists are comma-separated there too. The command line wins over ` +
  `the environment, the environment over the defaults. Exit codes: 0 stopped cleanly, 1 failed, 2 bad usage.`;

const planEpilogue = 'Exit codes: 0 plan printed, 2 bad usage.';

const checkEpilogue =
  'Only lists Nodes; never writes. The range flags (and their environment variables) are those of run. ' +
  'Exit codes: 0 no problems, 1 problems found, 2 bad usage or unusable kubeconfig, ' +
  '3 the API server could not be reached or refused to list Nodes.';

async function main(args: string[], env: Env): Promise<number> {
  let exitCode = 0;
  const usageProblems: string[] = [];
  const cli = yargs(args)
    .scriptName('podcidr-allocator')
    .usage('$0 <command> [flags]')
    .command(
      'run',
      'Watch Nodes and give each one its podCIDRs from --cluster-cidr',
      (command) => command.options(helpOptions()).strict(false).epilogue(runEpilogue),
      async () => {
        exitCode = await run(withoutCommand(args, 'run'), env);
      },
    )
    .command(
      'plan',
      'Print the node subnets, pods per node and node limit of a range configuration; needs no cluster',
      (command) => command.options(toolHelpOptions(planSpec)).strict(false).epilogue(planEpilogue),
      () => {
        exitCode = planCommand(withoutCommand(args, 'plan'), env);
      },
    )
    .command(
      'check',
      "Audit a live cluster's podCIDRs (read-only): conflicts, out-of-range, missing, usage per range",
      (command) => command.options(toolHelpOptions(checkSpec)).strict(false).epilogue(checkEpilogue),
      async () => {
        exitCode = await checkCommand(withoutCommand(args, 'check'), env);
      },
    )
    .epilogue('Run "podcidr-allocator run --help" for the flags of run.')
    .demandCommand(1, 'a command is required, e.g. "podcidr-allocator run --cluster-cidr=10.244.0.0/16"')
    .strict()
    .version(packageVersion())
    .help()
    .wrap(Math.min(120, process.stdout.columns || 120))
    .exitProcess(false)
    .fail((message, error) => {
      // yargs passes a message for usage errors and only an error when a command handler threw.
      if (message === null && error !== undefined) throw error;
      usageProblems.push(oneLine(message ?? error?.message ?? 'bad usage'));
    });
  await cli.parseAsync();
  if (usageProblems.length > 0) {
    process.stderr.write(usageProblems.map((p) => `${p}\n`).join(''));
    return usageExit;
  }
  return exitCode;
}

async function run(args: string[], env: Env): Promise<number> {
  const result = parseRunConfig(args, env);
  if ('problems' in result) {
    process.stderr.write(result.problems.map((p) => `${p}\n`).join(''));
    return usageExit;
  }
  const logger = createLogger({ level: result.config.logLevel });
  return runController(result.config, { logger });
}

/** The command line with the command word removed; flags may stand before or after it. */
function withoutCommand(args: string[], command: string): string[] {
  const at = args.indexOf(command);
  return at < 0 ? args : [...args.slice(0, at), ...args.slice(at + 1)];
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

try {
  process.exitCode = await main(hideBin(process.argv), process.env);
} catch (error) {
  // Not a usage error: a bug or a failure while running. The stack is worth having here.
  process.stderr.write(`podcidr-allocator: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
}
