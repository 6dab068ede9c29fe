// Turns the `run` command's arguments and environment into one typed Config for the wiring.
// Every problem is found in one pass and returned as one line naming the flag; nothing here throws.

import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import yargs from 'yargs';
import { validateClusterConfig, validateReservedConfig } from '../allocator/config.js';
import type { RangeSpec } from '../allocator/types.js';
import { validateLeaderElection } from '../leader/elector.js';
import { logLevels, type LogLevel } from '../log.js';
import { parseDuration } from './duration.js';
import { envVarName, flagSpec, isRunFlag, runFlagNames, type RunFlagName } from './flags.js';

type ClusterCheck = ReturnType<typeof validateClusterConfig>;

export const kubeContentTypes = ['application/vnd.kubernetes.protobuf', 'application/json'] as const;
export type KubeContentType = (typeof kubeContentTypes)[number];

export interface KubeOptions {
  /** Path of a kubeconfig file; undefined means the in-cluster configuration. */
  readonly kubeconfig?: string;
  /** API server URL that overrides the kubeconfig's. */
  readonly master?: string;
  readonly qps: number;
  readonly burst: number;
  /** --kube-api-content-type: how Node lists and watches are encoded. */
  readonly contentType: KubeContentType;
}

export interface MetricsOptions {
  /** As given, e.g. "0.0.0.0:10262". */
  readonly bindAddress: string;
  /** Undefined listens on every interface (the address was ":port"). */
  readonly host?: string;
  /** 0 lets the kernel pick a free port. */
  readonly port: number;
}

export interface LeaderElectionOptions {
  readonly enabled: boolean;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly resourceName: string;
  readonly resourceNamespace: string;
  /** POD_NAME (or the hostname) plus `_` and 8 random hex digits, unique per process. */
  readonly identity: string;
}

export interface Config {
  readonly allocateNodeCIDRs: boolean;
  /** In podCIDRs order; empty when allocation is off and no --cluster-cidr was given. */
  readonly ranges: readonly RangeSpec[];
  /** Service ranges and --exclude-cidr entries, never handed to Nodes. */
  readonly reserved: ClusterCheck['reserved'];
  readonly kube: KubeOptions;
  readonly concurrentNodeSyncs: number;
  readonly releaseQuarantineMs: number;
  /** --audit-interval; 0 = no continuous audit. */
  readonly auditIntervalMs: number;
  /** --handoff-interval; 0 = the handoff is written only at a graceful stop. */
  readonly handoffIntervalMs: number;
  readonly logLevel: LogLevel;
  readonly metrics: MetricsOptions;
  readonly leaderElection: LeaderElectionOptions;
}

export type ParseResult = { readonly config: Config } | { readonly problems: readonly string[] };

export type Env = Readonly<Record<string, string | undefined>>;

/** What varies between runs; tests pass fixed values. */
export interface ParseDeps {
  readonly hostname: () => string;
  readonly randomSuffix: () => string;
}

const defaultDeps: ParseDeps = {
  hostname,
  randomSuffix: () => randomBytes(4).toString('hex'),
};

/**
 * Parses `run`'s arguments (without the word "run"). Precedence: command line, then
 * PODCIDR_ALLOCATOR_* environment variables, then defaults. An empty environment variable counts as
 * unset, so a manifest can blank one out.
 */
export function parseRunConfig(argv: readonly string[], env: Env, deps: Partial<ParseDeps> = {}): ParseResult {
  const problems: string[] = [];
  const values = new Values(collectSources(argv, env, problems), problems);
  const config = buildConfig(values, env, { ...defaultDeps, ...deps }, problems);
  if (problems.length > 0 || config === undefined) return { problems: problems.map(printable) };
  return { config };
}

// Problems quote what the operator typed; escaping control characters keeps each one on one line.
function printable(problem: string): string {
  // eslint-disable-next-line no-control-regex
  return problem.replace(/[\u0000-\u001f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

function buildConfig(values: Values, env: Env, deps: ParseDeps, problems: string[]): Config | undefined {
  const allocateNodeCIDRs = values.boolean('allocate-node-cidrs');
  const clusterCIDRs = values.list('cluster-cidr');
  const cluster = checkCluster(values, allocateNodeCIDRs, clusterCIDRs, problems);
  const kube: KubeOptions = {
    kubeconfig: values.optionalString('kubeconfig'),
    master: values.url('master'),
    qps: values.positiveNumber('kube-api-qps'),
    burst: values.positiveInteger('kube-api-burst'),
    contentType: values.oneOf('kube-api-content-type', kubeContentTypes, kubeContentTypes[0]),
  };
  const concurrentNodeSyncs = values.positiveInteger('concurrent-node-syncs');
  const releaseQuarantineMs = values.duration('release-quarantine');
  const auditIntervalMs = values.duration('audit-interval');
  const handoffIntervalMs = values.duration('handoff-interval');
  const logLevel = values.oneOf('log-level', logLevels, 'info');
  const metrics = values.bindAddress('metrics-bind-address');
  const leaderElection = leaderElectionOptions(values, env, deps, problems);
  if (problems.length > 0 || cluster === undefined) return undefined;
  return {
    allocateNodeCIDRs,
    ranges: cluster.ranges,
    reserved: cluster.reserved,
    kube,
    concurrentNodeSyncs,
    releaseQuarantineMs,
    auditIntervalMs,
    handoffIntervalMs,
    logLevel,
    metrics,
    leaderElection,
  };
}

// kube-controller-manager ignores the CIDR flags when not allocating; we still check any that are
// given, because a typo there would surface only on the day allocation is switched on.
function checkCluster(
  values: Values,
  allocate: boolean,
  clusterCIDRs: string[],
  problems: string[],
): Pick<ClusterCheck, 'ranges' | 'reserved'> | undefined {
  // Without it, allocation comes from ClusterCIDR objects alone.
  const given = values.isSet('cluster-cidr');
  const masks = {
    nodeCIDRMaskSize: values.maskSize('node-cidr-mask-size'),
    nodeCIDRMaskSizeIPv4: values.maskSize('node-cidr-mask-size-ipv4'),
    nodeCIDRMaskSizeIPv6: values.maskSize('node-cidr-mask-size-ipv6'),
  };
  const serviceClusterIPRanges = values.list('service-cluster-ip-range');
  const excludeCIDRs = values.list('exclude-cidr');
  let check: ClusterCheck;
  try {
    check = given
      ? validateClusterConfig({ clusterCIDRs, ...masks, serviceClusterIPRanges, excludeCIDRs })
      : { ranges: [], ...validateReservedConfig({ serviceClusterIPRanges, excludeCIDRs }) };
  } catch (error) {
    // The validator should report, not throw; if it ever does, this is still a usage problem.
    problems.push(`--cluster-cidr: cannot be checked: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
  for (const problem of check.problems) {
    problems.push(`${flagLabel(problem.flag)}: ${problem.message}`);
  }
  return check;
}

function flagLabel(flag: string): string {
  return flag.startsWith('-') ? flag : `--${flag}`;
}

function leaderElectionOptions(values: Values, env: Env, deps: ParseDeps, problems: string[]): LeaderElectionOptions {
  const options: LeaderElectionOptions = {
    enabled: values.boolean('leader-elect'),
    leaseDurationMs: values.duration('leader-elect-lease-duration'),
    renewDeadlineMs: values.duration('leader-elect-renew-deadline'),
    retryPeriodMs: values.duration('leader-elect-retry-period'),
    resourceName: values.dnsName('leader-elect-resource-name', 'subdomain'),
    resourceNamespace: values.dnsName('leader-elect-resource-namespace', 'label'),
    identity: `${env.POD_NAME || deps.hostname()}_${deps.randomSuffix()}`,
  };
  if (options.enabled) problems.push(...leaderElectionProblems(options));
  return options;
}

// The elector owns client-go's rule (leaseDuration > renewDeadline > 1.2 × retryPeriod, all > 0);
// checking it here as well means a bad combination is reported with the other usage problems.
function leaderElectionProblems(o: LeaderElectionOptions): string[] {
  // NaN marks a duration already reported as unparsable; comparing it would only add noise.
  if ([o.leaseDurationMs, o.renewDeadlineMs, o.retryPeriodMs].some(Number.isNaN)) return [];
  return validateLeaderElection(o);
}

// --- where each raw value comes from ---------------------------------------------------------

/** One flag's raw text and where it came from; `false` is `--no-<flag>`. */
interface Source {
  readonly texts: readonly (string | boolean)[];
  readonly env?: string;
}

function collectSources(argv: readonly string[], env: Env, problems: string[]): Map<RunFlagName, Source> {
  const sources = new Map<RunFlagName, Source>();
  for (const [flag, texts] of readCommandLine(argv, problems)) sources.set(flag, { texts });
  // Only known names are read: Kubernetes injects service links such as PODCIDR_ALLOCATOR_PORT
  // into pods beside a Service of that name, so unknown variables under the prefix are normal.
  for (const flag of runFlagNames) {
    if (sources.has(flag)) continue;
    const name = envVarName(flag);
    const text = env[name];
    if (text !== undefined && text !== '') sources.set(flag, { texts: [text], env: name });
  }
  return sources;
}

/** Parses with yargs, every flag as text, so that bad values can be quoted back exactly. */
function readCommandLine(argv: readonly string[], problems: string[]): Map<RunFlagName, (string | boolean)[]> {
  const found = new Map<RunFlagName, (string | boolean)[]>();
  let parsed: Record<string, unknown>;
  try {
    parsed = commandLineParser([...argv]).parseSync();
  } catch (error) {
    problems.push(`cannot parse the command line: ${oneLine(error instanceof Error ? error.message : String(error))}`);
    return found;
  }
  for (const [key, value] of Object.entries(parsed)) {
    if (key === '$0') continue;
    if (key === '_') {
      for (const extra of asArray(value)) problems.push(`unexpected argument "${String(extra)}": run takes flags only`);
    } else if (isRunFlag(key)) {
      found.set(key, asArray(value).map((v) => (typeof v === 'boolean' ? v : String(v))));
    } else if (/^\S+$/.test(key)) {
      for (const written of typedAs(key, argv)) problems.push(`${written}: unknown flag`);
    } else {
      // "- " or "--a b" cannot be a flag name; quoted, so the blank is visible.
      problems.push(`unexpected argument ${JSON.stringify(`${key.length === 1 ? '-' : '--'}${key}`)}: not a flag name`);
    }
  }
  return found;
}

/** How an unknown flag was typed: yargs reads `--no-x` as x=false, so its key has lost the `no-`. */
function typedAs(key: string, argv: readonly string[]): string[] {
  const plain = `${key.length === 1 ? '-' : '--'}${key}`;
  const typed = [plain, `--no-${key}`].filter((form) => argv.some((token) => token === form || token.startsWith(`${form}=`)));
  // Not found as a whole token, e.g. one of bundled short flags (-xy).
  return typed.length > 0 ? typed : [plain];
}

function commandLineParser(argv: string[]) {
  const options: Record<string, { type: 'string'; array?: boolean }> = {};
  for (const name of runFlagNames) {
    const spec = flagSpec(name);
    options[name] = spec.kind === 'list' && spec.repeatable === true ? { type: 'string', array: true } : { type: 'string' };
  }
  return yargs(argv)
    .options(options)
    .parserConfiguration({
      'camel-case-expansion': false,
      'dot-notation': false,
      'parse-numbers': false,
      'parse-positional-numbers': false,
      'unknown-options-as-args': false,
    })
    .help(false)
    .version(false)
    .exitProcess(false)
    .strict(false)
    .fail((message, error) => {
      throw error ?? new Error(message);
    });
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value];
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

// --- turning raw text into typed values ------------------------------------------------------

const goTrue = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const goFalse = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);
const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const hostName = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$/;
// setTimeout's limit (2^31 - 1 ms) rounded down to whole hours.
const maxDurationMs = 596 * 3_600_000;

/**
 * Typed reads of each flag. A bad value adds a problem and yields a placeholder (NaN, false, "")
 * so that reading can go on and report the other flags too; the placeholder never escapes, because
 * any problem means no Config is returned.
 */
class Values {
  readonly #sources: Map<RunFlagName, Source>;
  readonly #problems: string[];
  readonly #reported = new Set<RunFlagName>();

  constructor(sources: Map<RunFlagName, Source>, problems: string[]) {
    this.#sources = sources;
    this.#problems = problems;
  }

  isSet(flag: RunFlagName): boolean {
    return this.#sources.has(flag);
  }

  boolean(flag: RunFlagName): boolean {
    const last = this.#sources.get(flag)?.texts.at(-1) ?? flagSpec(flag).default ?? 'false';
    if (typeof last === 'boolean') return last;
    if (last === '') return true; // a bare `--flag` (empty environment variables never get here)
    if (goTrue.has(last)) return true;
    if (goFalse.has(last)) return false;
    this.#report(flag, `must be true or false, got ${quote(last)}`);
    return false;
  }

  optionalString(flag: RunFlagName): string | undefined {
    const text = this.#scalar(flag);
    return text === undefined || text === '' ? undefined : text;
  }

  list(flag: RunFlagName): string[] {
    const texts = this.#sources.get(flag)?.texts;
    if (texts === undefined) return splitList(flagSpec(flag).default);
    const chosen = flagSpec(flag).repeatable === true ? texts : texts.slice(-1);
    const entries: string[] = [];
    for (const text of chosen) {
      if (typeof text === 'boolean') this.#report(flag, `takes a value; --no-${flag} is not allowed`);
      else entries.push(...splitList(text));
    }
    return entries;
  }

  positiveNumber(flag: RunFlagName): number {
    const text = this.#scalar(flag) ?? '';
    const value = /^(\d+(\.\d*)?|\.\d+)$/.test(text) ? Number(text) : NaN;
    if (!(value > 0) || !Number.isFinite(value)) {
      this.#report(flag, `must be a positive number, got ${quote(text)}`);
      return NaN;
    }
    return value;
  }

  positiveInteger(flag: RunFlagName): number {
    const text = this.#scalar(flag) ?? '';
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(value) || value < 1) {
      this.#report(flag, `must be a positive whole number, got ${quote(text)}`);
      return NaN;
    }
    return value;
  }

  /** 0 means unset, as in kube-controller-manager; range rules belong to the cluster validator. */
  maskSize(flag: RunFlagName): number | undefined {
    const text = this.#scalar(flag);
    if (text === undefined) return undefined;
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(value)) {
      this.#report(flag, `must be a whole number of bits, got ${quote(text)}`);
      return undefined;
    }
    return value === 0 ? undefined : value;
  }

  duration(flag: RunFlagName): number {
    const text = this.#scalar(flag) ?? '';
    const ms = parseDuration(text);
    if (ms === undefined) {
      this.#report(flag, `must be a duration such as "15s", "1m30s" or "500ms", got ${quote(text)}`);
      return NaN;
    }
    if (ms > maxDurationMs) {
      this.#report(flag, `must be at most 596h (the longest timer Node.js supports), got ${quote(text)}`);
      return NaN;
    }
    return ms;
  }

  /** One of choices; anything else is reported and fallback returned. */
  oneOf<T extends string>(flag: RunFlagName, choices: readonly T[], fallback: T): T {
    const text = this.#scalar(flag) ?? '';
    const choice = choices.find((c) => c === text);
    if (choice !== undefined) return choice;
    this.#report(flag, `must be one of ${choices.join(', ')}, got ${quote(text)}`);
    return fallback;
  }

  url(flag: RunFlagName): string | undefined {
    const text = this.optionalString(flag);
    if (text === undefined) return undefined;
    if (!URL.canParse(text) || !['http:', 'https:'].includes(new URL(text).protocol)) {
      this.#report(flag, `must be an http:// or https:// URL, got ${quote(text)}`);
    }
    return text;
  }

  dnsName(flag: RunFlagName, kind: 'label' | 'subdomain'): string {
    const text = this.#scalar(flag) ?? '';
    const ok =
      kind === 'label'
        ? text.length <= 63 && dnsLabel.test(text)
        : text.length <= 253 && text.split('.').every((part) => part.length <= 63 && dnsLabel.test(part));
    if (!ok) {
      const rule = kind === 'label' ? 'a DNS label' : 'a DNS subdomain';
      this.#report(flag, `must be ${rule} (lower-case letters, digits and "-"), got ${quote(text)}`);
    }
    return text;
  }

  bindAddress(flag: RunFlagName): MetricsOptions {
    const text = this.#scalar(flag) ?? '';
    const result = parseHostPort(text);
    if (typeof result === 'string') {
      this.#report(flag, `${result}, got ${quote(text)}`);
      return { bindAddress: text, port: NaN };
    }
    return { bindAddress: text, ...result };
  }

  /** Single-valued flags: the last occurrence wins, as with Go's pflag. */
  #scalar(flag: RunFlagName): string | undefined {
    const last = this.#sources.get(flag)?.texts.at(-1);
    if (typeof last === 'boolean') {
      this.#report(flag, `takes a value; --no-${flag} is not allowed`);
      return '';
    }
    return last ?? flagSpec(flag).default;
  }

  #source(flag: RunFlagName): Source | undefined {
    return this.#sources.get(flag);
  }

  // One line per flag: the first rule a value breaks is the one worth reading.
  #report(flag: RunFlagName, rule: string): void {
    if (this.#reported.has(flag)) return;
    this.#reported.add(flag);
    const env = this.#source(flag)?.env;
    this.#problems.push(`--${flag}${env === undefined ? '' : ` (from ${env})`}: ${rule}`);
  }
}

function splitList(text: string | undefined): string[] {
  if (text === undefined || text === '') return [];
  return text.split(',').map((entry) => entry.trim());
}

function quote(text: string): string {
  return JSON.stringify(text);
}

/** "host:port", "[ipv6]:port" or ":port"; returns the rule broken when invalid. */
function parseHostPort(text: string): { host?: string; port: number } | string {
  const rule = 'must be host:port, [IPv6]:port or :port with a port from 0 to 65535';
  const bracketed = /^\[([^\]]*)\]:(\d+)$/.exec(text);
  const plain = /^([^:[\]]*):(\d+)$/.exec(text);
  const match = bracketed ?? plain;
  const host = match?.[1];
  const portText = match?.[2];
  if (host === undefined || portText === undefined) return rule;
  const port = Number(portText);
  if (!Number.isSafeInteger(port) || port > 65_535) return rule;
  if (bracketed !== null && isIP(host) !== 6) return 'must have an IPv6 address inside the brackets';
  if (bracketed === null && host !== '' && isIP(host) !== 4 && !(host.length <= 253 && hostName.test(host))) {
    return 'must name an IPv4 address, a [IPv6] address or a host name before the port';
  }
  return host === '' ? { port } : { host, port };
}
