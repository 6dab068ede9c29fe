// Runs the real entry point in a child process (through tsx, so a half-built tree elsewhere cannot
// break it) and checks what an operator sees: exit codes, stderr lines, help and version.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { envVarName, runFlagNames, runFlags } from '../../../src/cli/flags.js';

import { repo, runCli as cli } from '../../cli-process.js';

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

const ok = '--cluster-cidr=10.244.0.0/16';

describe('podcidr-allocator usage errors', () => {
  it.each<[string, string[], string, Record<string, string>?]>([
    ['an unknown flag of run', ['run', ok, '--bogus=1'], '--bogus'],
    ['a mistyped negated flag of run, as typed', ['run', ok, '--no-such-flag'], '--no-such-flag'],
    ['an unknown flag before any command', ['--bogus'], 'bogus'],
    ['an unknown command', ['allocate'], 'allocate'],
    ['no command at all', [], 'command'],
    ['bad CIDR syntax', ['run', '--cluster-cidr=10.244.0/16'], '--cluster-cidr'],
    ['host bits set in the cluster CIDR', ['run', '--cluster-cidr=10.244.1.0/16'], '--cluster-cidr'],
    ['an IPv4 prefix of /33', ['run', '--cluster-cidr=10.244.0.0/33'], '--cluster-cidr'],
    ['an IPv6 prefix over 128', ['run', '--cluster-cidr=fd00:10:244::/129'], '--cluster-cidr'],
    ['three cluster CIDRs', ['run', '--cluster-cidr=10.244.0.0/16,fd00:10:244::/56,10.245.0.0/16'], '--cluster-cidr'],
    ['two IPv4 cluster CIDRs', ['run', '--cluster-cidr=10.244.0.0/16,10.245.0.0/16'], '--cluster-cidr'],
    ['a node mask shorter than the cluster prefix', ['run', ok, '--node-cidr-mask-size=8'], '--cluster-cidr'],
    [
      'the generic mask flag on a dual-stack cluster',
      ['run', '--cluster-cidr=10.244.0.0/16,fd00:10:244::/56', '--node-cidr-mask-size=24'],
      '--node-cidr-mask-size',
    ],
    [
      'the generic mask flag together with a family one',
      ['run', ok, '--node-cidr-mask-size=24', '--node-cidr-mask-size-ipv4=24'],
      '--node-cidr-mask-size',
    ],
    [
      'the IPv4 mask flag on an IPv6-only cluster',
      ['run', '--cluster-cidr=fd00:10:244::/56', '--node-cidr-mask-size-ipv4=24'],
      '--node-cidr-mask-size-ipv4',
    ],
    ['too many node subnets in one range', ['run', '--cluster-cidr=fd00:10::/32'], '--cluster-cidr'],
    ['three service ranges', ['run', ok, '--service-cluster-ip-range=10.96.0.0/12,fd00::/108,10.97.0.0/16'], '--service-cluster-ip-range'],
    ['a negative QPS', ['run', ok, '--kube-api-qps=-5'], '--kube-api-qps'],
    ['a non-numeric QPS', ['run', ok, '--kube-api-qps=abc'], '--kube-api-qps'],
    ['a negative burst', ['run', ok, '--kube-api-burst', '-1'], '--kube-api-burst'],
    ['a non-numeric number of node syncs', ['run', ok, '--concurrent-node-syncs=lots'], '--concurrent-node-syncs'],
    ['zero node syncs', ['run', ok, '--concurrent-node-syncs=0'], '--concurrent-node-syncs'],
    ['a duration without a unit', ['run', ok, '--release-quarantine=30'], '--release-quarantine'],
    [
      'a lease duration not above the renew deadline',
      ['run', ok, '--leader-elect-lease-duration=10s', '--leader-elect-renew-deadline=10s'],
      '--leader-elect-lease-duration',
    ],
    ['a renew deadline within 1.2 retry periods', ['run', ok, '--leader-elect-retry-period=9s'], '--leader-elect-renew-deadline'],
    ['an unknown log level', ['run', ok, '--log-level=verbose'], '--log-level'],
    ['a bind address without a port', ['run', ok, '--metrics-bind-address=0.0.0.0'], '--metrics-bind-address'],
    ['a boolean that is neither true nor false', ['run', ok, '--allocate-node-cidrs=yes'], '--allocate-node-cidrs'],
    ['a bad value from the environment', ['run', ok], '--kube-api-burst', { PODCIDR_ALLOCATOR_KUBE_API_BURST: 'lots' }],
  ])('exits 2 on %s, naming the flag without a stack trace', async (_case, args, flag, env) => {
    const { code, stdout, stderr } = await cli(args, env);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain(flag);
    if (flag.startsWith('--')) {
      // A problem from `run` starts with the flag it is about (and not a longer flag sharing its prefix).
      expect(lines(stderr).some((line) => line.startsWith(flag) && /^[^-a-z0-9]/.test(line.slice(flag.length)))).toBe(true);
    }
    expect(stderr).not.toMatch(/^\s+at /m);
    expect(stderr.endsWith('\n')).toBe(true);
    expect(stderr).not.toMatch(/\n\n/);
  });

  it('reports every problem at once, one line each', async () => {
    const { code, stderr } = await cli([
      'run',
      '--cluster-cidr=10.244.0.0/33',
      '--kube-api-qps=abc',
      '--release-quarantine=soon',
      '--bogus',
    ]);
    expect(code).toBe(2);
    const reported = lines(stderr);
    expect(reported).toHaveLength(4);
    for (const flag of ['--cluster-cidr', '--kube-api-qps', '--release-quarantine', '--bogus']) {
      expect(reported.filter((line) => line.startsWith(flag))).toHaveLength(1);
    }
  });
});

describe('podcidr-allocator help and version', () => {
  it('lists every run flag with its default and environment variable in run --help', async () => {
    const { code, stdout } = await cli(['run', '--help']);
    expect(code).toBe(0);
    const help = stdout.replace(/\s+/g, ' ');
    for (const name of runFlagNames) {
      expect(help).toContain(`--${name}`);
      expect(help).toContain(envVarName(name));
    }
    expect(help).toContain('[default: 20]');
    expect(help).toContain('[default: "15s"]');
    expect(help).toContain('[default: "0.0.0.0:10262"]');
    expect(help).toContain('[default: 24 (IPv4) or 64 (IPv6)]');
    const withDefault = Object.values(runFlags).filter((f) => 'default' in f || 'defaultDescription' in f);
    expect(help.match(/\[default: /g)).toHaveLength(withDefault.length);
  });

  it('prints the package version for --version', async () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', `file://${repo}`), 'utf8')) as { version: string };
    const { code, stdout } = await cli(['--version']);
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(pkg.version);
  });
});

describe('podcidr-allocator run', () => {
  it('hands a valid configuration to the controller, logs it as JSON and stops cleanly on SIGTERM', async () => {
    const { code, stdout, stderr } = await cli(
      ['run', ok, '--allocate-node-cidrs=false', '--log-level=debug', '--metrics-bind-address=127.0.0.1:0'],
      { POD_NAME: 'allocator-0' },
      { stopWhen: (out) => out.includes('"msg":"serving health and metrics"') },
    );
    expect(stderr).toBe('');
    const records = lines(stdout).map((line) => JSON.parse(line) as Record<string, unknown>);
    const configRecord = records.find((r) => r.msg === 'configuration');
    expect(configRecord).toMatchObject({
      name: 'podcidr-allocator',
      component: 'run',
      config: { allocateNodeCIDRs: false, logLevel: 'debug', leaderElection: { identity: expect.stringMatching(/^allocator-0_[0-9a-f]{8}$/) } },
    });
    expect(records.map((r) => r.msg)).toContain(
      'allocation is disabled (--allocate-node-cidrs=false); serving health and metrics only',
    );
    expect(records.at(-1)).toMatchObject({ level: 'info', msg: 'stopped' });
    expect(code).toBe(0);
  });
});
