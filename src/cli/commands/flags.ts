// Command-line parsing for the operator tools: a subset of `run`'s flags plus the tools' own (--output, --selector).
// Shared flags go through `run`'s own parser, so values, environment variables and problem lines match `run` exactly.

import type { Options } from 'yargs';
import type { RangeSpec } from '../../allocator/types.js';
import { parseRunConfig, type Env, type KubeOptions } from '../config.js';
import { envVarName, helpOptions, type RunFlagName } from '../flags.js';
import type { Cidr } from '../../cidr/index.js';

export type OutputFormat = 'text' | 'json';

/** The tools' own flags; each takes one value, the last occurrence wins. */
interface OwnFlag {
  readonly alias?: string;
  /** Heading in --help. */
  readonly group: string;
  readonly describe: string;
  /** Allowed values; any non-empty text when absent. */
  readonly choices?: readonly string[];
  readonly default?: string;
}

const outputFlag: OwnFlag = {
  alias: 'o',
  group: 'Output',
  describe: 'Report format: text for people, json for scripts (a stable object, see the README).',
  choices: ['text', 'json'],
  default: 'text',
};

const selectorFlag: OwnFlag = {
  alias: 'l',
  group: 'Scope',
  describe:
    'Audit only the nodes matching this label selector (e.g. "pool=gpu"). Conflicts with unselected ' +
    'nodes and their share of the ranges are then not seen.',
};

const filenameFlag: OwnFlag = {
  alias: 'f',
  group: 'Pools',
  describe:
    'Plan the ClusterCIDR objects (node-group pools) in this YAML file, "-" for stdin: several documents, ' +
    'kind: List or ClusterCIDRList. --cluster-cidr is then optional; given too, it is planned as the pool served last.',
};

/** Which flags a tool takes. */
export interface ToolSpec {
  readonly command: 'plan' | 'check';
  readonly runFlags: readonly RunFlagName[];
  readonly own: Readonly<Record<string, OwnFlag>>;
  /** The tool can read pools instead (a file, the cluster), so --cluster-cidr may be left out. */
  readonly poolsInstead?: (own: ReadonlyMap<string, string>) => boolean;
}

const rangeFlags = [
  'cluster-cidr',
  'node-cidr-mask-size',
  'node-cidr-mask-size-ipv4',
  'node-cidr-mask-size-ipv6',
  'service-cluster-ip-range',
  'exclude-cidr',
] as const satisfies readonly RunFlagName[];

export const planSpec: ToolSpec = {
  command: 'plan',
  runFlags: rangeFlags,
  own: { output: outputFlag, filename: filenameFlag },
  poolsInstead: (own) => own.has('filename'),
};

export const checkSpec: ToolSpec = {
  command: 'check',
  runFlags: [...rangeFlags, 'kubeconfig', 'master'],
  own: { output: outputFlag, selector: selectorFlag },
  // The cluster's ClusterCIDRs; with none there, checkCommand still asks for --cluster-cidr.
  poolsInstead: () => true,
};

export interface ToolConfig {
  /** In podCIDRs order, canonical text. */
  readonly ranges: readonly RangeSpec[];
  /** Service ranges then --exclude-cidr entries, canonical text. */
  readonly reserved: readonly Cidr[];
  /** The service ranges alone (a prefix of `reserved`). */
  readonly services: readonly Cidr[];
  readonly kube: KubeOptions;
  readonly output: OutputFormat;
  readonly selector?: string;
  /** plan -f: the file of ClusterCIDRs, '-' for stdin. */
  readonly filename?: string;
}

export type ToolParseResult = { readonly config: ToolConfig } | { readonly problems: readonly string[] };

/** yargs options for `<tool> --help`: `run`'s help texts for the shared flags, then the tool's own. */
export function toolHelpOptions(spec: ToolSpec): Record<string, Options> {
  const all = helpOptions();
  const options: Record<string, Options> = {};
  for (const name of spec.runFlags) {
    const option = all[name];
    if (option !== undefined) options[name] = option;
  }
  for (const [name, flag] of Object.entries(spec.own)) {
    const option: Options = { type: 'string', group: `${flag.group}:`, describe: flag.describe };
    if (flag.alias !== undefined) option.alias = flag.alias;
    // Choices are checked by parseToolFlags, so a bad value gets the same one-line problem as any flag.
    if (flag.choices !== undefined) option.describe = `${flag.describe} One of: ${flag.choices.join(', ')}.`;
    if (flag.default !== undefined) option.default = flag.default;
    options[name] = option;
  }
  return options;
}

/** One flag as typed: its tokens, kept together so a flag can be left out of a second parse. */
interface Routed {
  readonly flag: RunFlagName;
  readonly tokens: readonly string[];
}

/**
 * Parses a tool's arguments (without the command word). Shared flags may also come from their
 * PODCIDR_ALLOCATOR_* variables, as for `run`, so `check` inside the controller's pod needs no flags.
 */
export function parseToolFlags(argv: readonly string[], env: Env, spec: ToolSpec): ToolParseResult {
  const problems: string[] = [];
  const own = new Map<string, string>();
  const routed = route(argv, spec, own, problems);
  const toolEnv = envFor(spec.runFlags, env);
  const hasClusterCIDR = routed.some((r) => r.flag === 'cluster-cidr') || toolEnv[envVarName('cluster-cidr')] !== undefined;
  // Pools are a plan of their own; --cluster-cidr beside them is one more pool.
  if (!hasClusterCIDR && !(spec.poolsInstead?.(own) ?? false)) problems.push('--cluster-cidr: required');
  const fixed = ['--leader-elect=false', `--allocate-node-cidrs=${hasClusterCIDR}`];
  const parsed = parseRunConfig([...routed.flatMap((r) => r.tokens), ...fixed], toolEnv);
  if ('problems' in parsed) problems.push(...parsed.problems);
  const output = ownValue(own, 'output', spec, problems);
  const selector = own.get('selector');
  const filename = own.get('filename');
  if ('problems' in parsed || problems.length > 0) return { problems };
  // run's Config merges service and excluded ranges; parsing again without --exclude-cidr tells them apart.
  const withoutExcludes = parseRunConfig(
    [...routed.filter((r) => r.flag !== 'exclude-cidr').flatMap((r) => r.tokens), ...fixed],
    { ...toolEnv, [envVarName('exclude-cidr')]: undefined },
  );
  const services = 'config' in withoutExcludes ? withoutExcludes.config.reserved : [];
  const config: ToolConfig = {
    ranges: parsed.config.ranges,
    reserved: parsed.config.reserved,
    services,
    kube: parsed.config.kube,
    output: output === 'json' ? 'json' : 'text',
    ...(selector !== undefined ? { selector } : {}),
    ...(filename !== undefined ? { filename } : {}),
  };
  return { config };
}

/** Sorts tokens into the tool's own flags and `run` flags it accepts; anything else is a problem. */
function route(argv: readonly string[], spec: ToolSpec, own: Map<string, string>, problems: string[]): Routed[] {
  const routed: Routed[] = [];
  const allowed = new Set<string>(spec.runFlags);
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] ?? '';
    if (token === '--') {
      for (const extra of argv.slice(i + 1)) problems.push(unexpected(extra, spec));
      break;
    }
    if (!token.startsWith('-') || token === '-') {
      problems.push(unexpected(token, spec));
      continue;
    }
    const dashes = token.startsWith('--') ? '--' : '-';
    const body = token.slice(dashes.length);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const ownName = ownFlagName(name, spec);
    if (ownName !== undefined) {
      const value = eq < 0 ? argv[++i] : body.slice(eq + 1);
      if (value === undefined) problems.push(`--${ownName}: takes a value`);
      else own.set(ownName, value);
      continue;
    }
    const flag = dashes === '--' ? runFlagName(name, allowed) : undefined;
    if (flag === undefined) {
      problems.push(`${dashes}${name}: unknown flag`);
      // As yargs reads it for run: the word after an unknown flag is its value, not an argument.
      if (eq < 0 && argv[i + 1] !== undefined && !(argv[i + 1] ?? '').startsWith('-')) i++;
      continue;
    }
    const tokens = [token];
    // Every shared flag takes a value; `--flag value` is one flag unless the next word is a flag.
    const next = argv[i + 1];
    if (eq < 0 && name === flag && next !== undefined && !next.startsWith('--')) {
      tokens.push(next);
      i++;
    }
    routed.push({ flag, tokens });
  }
  return routed;
}

function ownFlagName(name: string, spec: ToolSpec): string | undefined {
  for (const [flag, def] of Object.entries(spec.own)) if (name === flag || name === def.alias) return flag;
  return undefined;
}

/** The run flag named (also as --no-<flag>, which run's parser then refuses with its own words). */
function runFlagName(name: string, allowed: ReadonlySet<string>): RunFlagName | undefined {
  if (allowed.has(name)) return name as RunFlagName;
  const negated = name.startsWith('no-') ? name.slice(3) : undefined;
  return negated !== undefined && allowed.has(negated) ? (negated as RunFlagName) : undefined;
}

function unexpected(word: string, spec: ToolSpec): string {
  return `unexpected argument ${JSON.stringify(word)}: ${spec.command} takes flags only`;
}

/** Only the variables of flags this tool takes, so an unrelated bad one cannot fail it. */
function envFor(flags: readonly RunFlagName[], env: Env): Record<string, string | undefined> {
  const picked: Record<string, string | undefined> = {};
  for (const flag of flags) {
    const name = envVarName(flag);
    const value = env[name];
    if (value !== undefined && value !== '') picked[name] = value;
  }
  return picked;
}

function ownValue(own: Map<string, string>, name: string, spec: ToolSpec, problems: string[]): string | undefined {
  const def = spec.own[name];
  const value = own.get(name) ?? def?.default;
  if (value === undefined || def?.choices === undefined || def.choices.includes(value)) return value;
  problems.push(`--${name}: must be one of ${def.choices.join(', ')}, got ${JSON.stringify(value)}`);
  return undefined;
}

/** Where a tool writes; tests collect the text. */
export interface ToolIO {
  out(text: string): void;
  err(text: string): void;
}

export const processIO: ToolIO = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

/** Exit code of a usage error, as for `run`. */
export const USAGE_EXIT = 2;
