import { describe, expect, it } from 'vitest';
import { checkSpec, parseToolFlags, planSpec, type ToolParseResult } from '../../../../src/cli/commands/flags.js';
import { parseRange } from '../../../../src/allocator/range-spec.js';
import { formatCidr } from '../../../../src/cidr/index.js';

function problems(result: ToolParseResult): readonly string[] {
  return 'problems' in result ? result.problems : [];
}

function config(result: ToolParseResult) {
  if ('problems' in result) throw new Error(result.problems.join('\n'));
  return result.config;
}

describe('parseToolFlags', () => {
  it('reads "--flag value" and "--flag=value" alike, and short aliases of the tool flags', () => {
    const spaced = config(
      parseToolFlags(['--cluster-cidr', '10.0.0.0/16', '--node-cidr-mask-size', '26', '-o', 'json', '-l', 'a=b'], {}, checkSpec),
    );
    const joined = config(
      parseToolFlags(['--cluster-cidr=10.0.0.0/16', '--node-cidr-mask-size=26', '--output=json', '--selector=a=b'], {}, checkSpec),
    );
    expect(spaced).toEqual(joined);
    expect(joined).toMatchObject({ ranges: [parseRange('10.0.0.0/16', 26)], output: 'json', selector: 'a=b' });
  });

  it('tells service ranges from excluded ones, from flags and environment alike', () => {
    const parsed = config(
      parseToolFlags(
        ['--cluster-cidr=10.0.0.0/16', '--exclude-cidr=10.0.1.0/24', '--exclude-cidr', '10.0.2.0/24'],
        { PODCIDR_ALLOCATOR_SERVICE_CLUSTER_IP_RANGE: '10.96.0.0/12', PODCIDR_ALLOCATOR_EXCLUDE_CIDR: '10.0.9.0/24' },
        planSpec,
      ),
    );
    // The command line wins over the environment, as for run.
    expect(parsed.reserved.map(formatCidr)).toEqual(['10.96.0.0/12', '10.0.1.0/24', '10.0.2.0/24']);
    expect(parsed.services.map(formatCidr)).toEqual(['10.96.0.0/12']);
  });

  it('ignores environment variables of flags the tool does not take', () => {
    const parsed = parseToolFlags(['--cluster-cidr=10.0.0.0/16'], { PODCIDR_ALLOCATOR_LOG_LEVEL: 'loud' }, planSpec);
    expect(problems(parsed)).toEqual([]);
  });

  it('refuses run flags the tool does not take, positional words and a missing --cluster-cidr, all at once', () => {
    // The word after an unknown flag is taken as its value, as yargs does for run.
    const parsed = parseToolFlags(['extra', '--leader-elect', 'true', '--kubeconfig=/x', '--bogus', 'value', '-x'], {}, planSpec);
    expect(problems(parsed)).toEqual([
      'unexpected argument "extra": plan takes flags only',
      '--leader-elect: unknown flag',
      '--kubeconfig: unknown flag',
      '--bogus: unknown flag',
      '-x: unknown flag',
      '--cluster-cidr: required',
    ]);
  });

  it("passes shared flags to run's parser, so its problem lines come back word for word", () => {
    const parsed = parseToolFlags(
      ['--cluster-cidr=10.0.0.0/16,10.1.0.0/16', '--node-cidr-mask-size=abc', '--no-exclude-cidr', '--output', 'yaml'],
      {},
      checkSpec,
    );
    expect(problems(parsed)).toEqual([
      '--node-cidr-mask-size: must be a whole number of bits, got "abc"',
      '--exclude-cidr: takes a value; --no-exclude-cidr is not allowed',
      '--cluster-cidr: len of ClusterCIDRs==2 and they are not configured as dual stack (at least one from each IPFamily',
      '--output: must be one of text, json, got "yaml"',
    ]);
  });

  it('takes --kubeconfig and --master for check only', () => {
    const parsed = config(parseToolFlags(['--cluster-cidr=10.0.0.0/16', '--kubeconfig', '/k', '--master=https://127.0.0.1:6443'], {}, checkSpec));
    expect(parsed.kube).toMatchObject({ kubeconfig: '/k', master: 'https://127.0.0.1:6443' });
  });
});
