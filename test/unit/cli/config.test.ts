import { describe, expect, it } from 'vitest';
import { parseRunConfig, type Config, type Env, type ParseResult } from '../../../src/cli/config.js';
import { envVarName, runFlagNames } from '../../../src/cli/flags.js';
import { parseRange } from '../../../src/allocator/range-spec.js';
import { formatCidr } from '../../../src/cidr/index.js';

const fixed = { hostname: () => 'cp-1', randomSuffix: () => '0a1b2c3d' };
const cidr = ['--cluster-cidr=10.244.0.0/16'];

function parse(argv: string[], env: Env = {}): ParseResult {
  return parseRunConfig(argv, env, fixed);
}

function configOf(argv: string[], env: Env = {}): Config {
  const result = parse(argv, env);
  if ('problems' in result) throw new Error(`unexpected problems:\n${result.problems.join('\n')}`);
  return result.config;
}

function problemsOf(argv: string[], env: Env = {}): readonly string[] {
  const result = parse(argv, env);
  if ('config' in result) throw new Error('expected problems, got a config');
  return result.problems;
}

describe('parseRunConfig defaults', () => {
  it('fills every setting from the defaults when only --cluster-cidr is given', () => {
    const config = configOf(cidr);
    expect(config).toMatchObject({
      allocateNodeCIDRs: true,
      ranges: [parseRange('10.244.0.0/16', 24)],
      kube: { qps: 20, burst: 30 },
      concurrentNodeSyncs: 30,
      releaseQuarantineMs: 60_000,
      logLevel: 'info',
      metrics: { bindAddress: '0.0.0.0:10262', host: '0.0.0.0', port: 10262 },
      leaderElection: {
        enabled: true,
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
        resourceName: 'podcidr-allocator',
        resourceNamespace: 'kube-system',
      },
    });
    expect(config.kube.kubeconfig).toBeUndefined();
    expect(config.kube.master).toBeUndefined();
  });

  it('needs no --cluster-cidr when allocation is switched off', () => {
    const config = configOf(['--allocate-node-cidrs=false']);
    expect(config.allocateNodeCIDRs).toBe(false);
    expect(config.ranges).toEqual([]);
  });

  it('allocates from ClusterCIDR objects alone without --cluster-cidr', () => {
    expect(configOf([]).ranges).toEqual([]);
  });

  it('still reserves the service and excluded ranges without --cluster-cidr, in every pool', () => {
    const config = configOf(['--service-cluster-ip-range=10.96.0.0/12', '--exclude-cidr=10.244.8.0/21']);
    expect(config.reserved.map(formatCidr)).toEqual(['10.96.0.0/12', '10.244.8.0/21']);
  });

  it('refuses a bad service range without --cluster-cidr too, naming the flag', () => {
    expect(problemsOf(['--service-cluster-ip-range=10.96.0.0/33']).some((p) => p.startsWith('--service-cluster-ip-range: '))).toBe(true);
  });
});

describe('parseRunConfig flags', () => {
  it('reads every kind of flag from the command line', () => {
    const config = configOf([
      '--cluster-cidr=10.244.0.0/16,fd00:10:244::/56',
      '--node-cidr-mask-size-ipv4',
      '25',
      '--node-cidr-mask-size-ipv6=64',
      '--kubeconfig=/etc/kubernetes/allocator.conf',
      '--master=https://10.0.0.1:6443',
      '--kube-api-qps=7.5',
      '--kube-api-burst=11',
      '--kube-api-content-type=application/json',
      '--concurrent-node-syncs=4',
      '--release-quarantine=1m30s',
      '--log-level=debug',
      '--metrics-bind-address=[::1]:9090',
      '--no-leader-elect',
      '--leader-elect-resource-name=ipam.example.com',
      '--leader-elect-resource-namespace=ipam',
    ]);
    expect(config.ranges).toEqual([
      parseRange('10.244.0.0/16', 25),
      parseRange('fd00:10:244::/56', 64),
    ]);
    expect(config.kube).toEqual({
      kubeconfig: '/etc/kubernetes/allocator.conf',
      master: 'https://10.0.0.1:6443',
      qps: 7.5,
      burst: 11,
      contentType: 'application/json',
    });
    expect(config.concurrentNodeSyncs).toBe(4);
    expect(config.releaseQuarantineMs).toBe(90_000);
    expect(config.logLevel).toBe('debug');
    expect(config.metrics).toEqual({ bindAddress: '[::1]:9090', host: '::1', port: 9090 });
    expect(config.leaderElection).toMatchObject({ enabled: false, resourceName: 'ipam.example.com', resourceNamespace: 'ipam' });
  });

  it('asks for protobuf Node lists and watches unless told otherwise, like kube-controller-manager', () => {
    expect(configOf(cidr).kube.contentType).toBe('application/vnd.kubernetes.protobuf');
  });

  it('listens on every interface when the bind address has no host', () => {
    expect(configOf([...cidr, '--metrics-bind-address=:0']).metrics).toEqual({ bindAddress: ':0', port: 0 });
  });

  it.each([
    ['--leader-elect', true],
    ['--leader-elect=false', false],
    ['--leader-elect=0', false],
    ['--leader-elect=True', true],
    ['--no-leader-elect', false],
  ])('reads the boolean %s as %s', (flag, expected) => {
    expect(configOf([...cidr, flag]).leaderElection.enabled).toBe(expected);
  });

  it('lets the last occurrence of a single-valued flag win', () => {
    expect(configOf([...cidr, '--kube-api-qps=1', '--kube-api-qps=2']).kube.qps).toBe(2);
  });

  it('treats a node mask of 0 as unset, like kube-controller-manager', () => {
    expect(configOf([...cidr, '--node-cidr-mask-size=0']).ranges).toEqual([
      parseRange('10.244.0.0/16', 24),
    ]);
  });

  it('reports every bad flag at once, one line each', () => {
    const problems = problemsOf([
      ...cidr,
      '--kube-api-qps=abc',
      '--kube-api-burst=-1',
      '--concurrent-node-syncs=1.5',
      '--release-quarantine=5',
      '--log-level=verbose',
      '--metrics-bind-address=localhost',
      '--leader-elect=maybe',
      '--kube-api-content-type=application/yaml',
    ]);
    expect(problems).toEqual([
      '--kube-api-qps: must be a positive number, got "abc"',
      '--kube-api-burst: must be a positive whole number, got "-1"',
      '--kube-api-content-type: must be one of application/vnd.kubernetes.protobuf, application/json, got "application/yaml"',
      '--concurrent-node-syncs: must be a positive whole number, got "1.5"',
      '--release-quarantine: must be a duration such as "15s", "1m30s" or "500ms", got "5"',
      '--log-level: must be one of trace, debug, info, warn, error, fatal, got "verbose"',
      '--metrics-bind-address: must be host:port, [IPv6]:port or :port with a port from 0 to 65535, got "localhost"',
      '--leader-elect: must be true or false, got "maybe"',
    ]);
  });

  it.each([
    [['--bogus'], '--bogus: unknown flag'],
    [['--bogus=1'], '--bogus: unknown flag'],
    [['-x'], '-x: unknown flag'],
    [['--no-such-flag'], '--no-such-flag: unknown flag'],
    [['--no-such-flag=false'], '--no-such-flag: unknown flag'],
    [['- '], 'unexpected argument "- ": not a flag name'],
    [['--kubeApiQps=3'], '--kubeApiQps: unknown flag'],
    [['stray'], 'unexpected argument "stray": run takes flags only'],
    [['--no-kube-api-qps'], '--kube-api-qps: takes a value; --no-kube-api-qps is not allowed'],
    [['--master=10.0.0.1:6443'], '--master: must be an http:// or https:// URL, got "10.0.0.1:6443"'],
    [['--metrics-bind-address=[10.0.0.1]:80'], '--metrics-bind-address: must have an IPv6 address inside the brackets, got "[10.0.0.1]:80"'],
    [['--metrics-bind-address=:65536'], '--metrics-bind-address: must be host:port, [IPv6]:port or :port with a port from 0 to 65535, got ":65536"'],
    [['--leader-elect-resource-namespace=Kube_System'], '--leader-elect-resource-namespace: must be a DNS label (lower-case letters, digits and "-"), got "Kube_System"'],
    [['--node-cidr-mask-size=big'], '--node-cidr-mask-size: must be a whole number of bits, got "big"'],
    [['--release-quarantine=-5s'], '--release-quarantine: must be a duration such as "15s", "1m30s" or "500ms", got "-5s"'],
    [['--release-quarantine=1000h'], '--release-quarantine: must be at most 596h (the longest timer Node.js supports), got "1000h"'],
  ])('reports %j as one problem', (argv, problem) => {
    expect(problemsOf([...cidr, ...argv])).toEqual([problem]);
  });
});

describe('parseRunConfig leader election', () => {
  it('accepts client-go defaults and reports inconsistent lease durations', () => {
    expect(configOf([...cidr, '--leader-elect-lease-duration=11s']).leaderElection.leaseDurationMs).toBe(11_000);
    const problems = problemsOf([...cidr, '--leader-elect-lease-duration=10s', '--leader-elect-retry-period=9s']);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^--leader-elect-lease-duration.*--leader-elect-renew-deadline/);
    expect(problems[1]).toMatch(/^--leader-elect-renew-deadline.*--leader-elect-retry-period/);
  });

  it('reports a zero duration without comparing it with the others', () => {
    const problems = problemsOf([...cidr, '--leader-elect-retry-period=0']);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^--leader-elect-retry-period.*greater than zero/);
  });

  it('does not check lease durations when leader election is off', () => {
    const config = configOf([...cidr, '--leader-elect=false', '--leader-elect-lease-duration=1s']);
    expect(config.leaderElection.enabled).toBe(false);
  });

  it('reports an unparsable duration once, not again as an inconsistency', () => {
    expect(problemsOf([...cidr, '--leader-elect-renew-deadline=soon'])).toEqual([
      '--leader-elect-renew-deadline: must be a duration such as "15s", "1m30s" or "500ms", got "soon"',
    ]);
  });

  it('builds the identity from POD_NAME and a random suffix', () => {
    expect(configOf(cidr, { POD_NAME: 'allocator-7d9f' }).leaderElection.identity).toBe('allocator-7d9f_0a1b2c3d');
  });

  it('falls back to the hostname when POD_NAME is unset or empty', () => {
    expect(configOf(cidr).leaderElection.identity).toBe('cp-1_0a1b2c3d');
    expect(configOf(cidr, { POD_NAME: '' }).leaderElection.identity).toBe('cp-1_0a1b2c3d');
  });

  it('draws a fresh 8-hex-digit suffix for every process by default', () => {
    const identities = new Set(
      Array.from({ length: 5 }, () => {
        const result = parseRunConfig(cidr, { POD_NAME: 'p' });
        if ('problems' in result) throw new Error(result.problems.join('\n'));
        return result.config.leaderElection.identity;
      }),
    );
    for (const identity of identities) expect(identity).toMatch(/^p_[0-9a-f]{8}$/);
    expect(identities.size).toBeGreaterThan(1);
  });
});

describe('parseRunConfig environment', () => {
  it('names one environment variable per flag, in upper snake case', () => {
    expect(envVarName('kube-api-qps')).toBe('PODCIDR_ALLOCATOR_KUBE_API_QPS');
    expect(new Set(runFlagNames.map(envVarName)).size).toBe(runFlagNames.length);
  });

  it('reads flags from PODCIDR_ALLOCATOR_* variables', () => {
    const config = configOf([], {
      PODCIDR_ALLOCATOR_CLUSTER_CIDR: '10.244.0.0/16',
      PODCIDR_ALLOCATOR_KUBE_API_QPS: '50',
      PODCIDR_ALLOCATOR_LEADER_ELECT: 'false',
      PODCIDR_ALLOCATOR_LEADER_ELECT_RENEW_DEADLINE: '12s',
      PODCIDR_ALLOCATOR_LOG_LEVEL: 'warn',
    });
    expect(config.ranges).toEqual([parseRange('10.244.0.0/16', 24)]);
    expect(config.kube.qps).toBe(50);
    expect(config.leaderElection.enabled).toBe(false);
    expect(config.leaderElection.renewDeadlineMs).toBe(12_000);
    expect(config.logLevel).toBe('warn');
  });

  it('splits list variables on commas', () => {
    const config = configOf([], { PODCIDR_ALLOCATOR_CLUSTER_CIDR: '10.244.0.0/16, fd00:10:244::/56' });
    expect(config.ranges.map((r) => formatCidr(r.clusterCIDR))).toEqual(['10.244.0.0/16', 'fd00:10:244::/56']);
  });

  it('lets the command line win over the environment, and the environment over defaults', () => {
    const env = { PODCIDR_ALLOCATOR_KUBE_API_QPS: '50', PODCIDR_ALLOCATOR_KUBE_API_BURST: '60' };
    const config = configOf([...cidr, '--kube-api-qps=5'], env);
    expect(config.kube.qps).toBe(5);
    expect(config.kube.burst).toBe(60);
    expect(config.concurrentNodeSyncs).toBe(30);
  });

  it('does not merge a list from the environment with the same list on the command line', () => {
    const env = { PODCIDR_ALLOCATOR_CLUSTER_CIDR: '10.0.0.0/8' };
    expect(configOf(cidr, env).ranges.map((r) => formatCidr(r.clusterCIDR))).toEqual(['10.244.0.0/16']);
  });

  it('treats an empty variable as unset', () => {
    expect(configOf(cidr, { PODCIDR_ALLOCATOR_KUBE_API_QPS: '' }).kube.qps).toBe(20);
  });

  it('names the variable when its value is bad', () => {
    expect(problemsOf(cidr, { PODCIDR_ALLOCATOR_CONCURRENT_NODE_SYNCS: 'many' })).toEqual([
      '--concurrent-node-syncs (from PODCIDR_ALLOCATOR_CONCURRENT_NODE_SYNCS): must be a positive whole number, got "many"',
    ]);
  });

  it('ignores unknown variables, such as the service links Kubernetes injects under the same prefix', () => {
    expect(configOf(cidr, { KUBE_API_QPS: 'x', PODCIDR_ALLOCATOR_SERVICE_HOST: '10.96.0.9', PODCIDR_ALLOCATOR_PORT: 'tcp://10.96.0.9:10262' }).kube.qps).toBe(20);
  });
});
