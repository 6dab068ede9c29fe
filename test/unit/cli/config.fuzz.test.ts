import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../../src/cli/config.js';
import { envVarName, runFlagNames } from '../../../src/cli/flags.js';

const fixed = { hostname: () => 'h', randomSuffix: () => '00000000' };
const flag = fc.constantFrom(...runFlagNames);
const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.constantFrom('', '-', '--', '0', '-1', '1e3', 'NaN', '15s', '10.0.0.0/8'));

/** One command-line fragment: a flag with a value in either spelling, a negation, or a stray token. */
const fragment = fc.oneof(
  fc.tuple(flag, text).map(([f, v]) => [`--${f}=${v}`]),
  fc.tuple(flag, text).map(([f, v]) => [`--${f}`, v]),
  flag.map((f) => [`--no-${f}`]),
  text.map((t) => [t]),
);
const argvArb = fc.array(fragment, { maxLength: 8 }).map((parts) => parts.flat());
const envArb = fc.dictionary(flag.map(envVarName), text, { maxKeys: 5 });

describe('parseRunConfig with arbitrary input', () => {
  it('returns a config or one-line problems and never throws', () => {
    fc.assert(
      fc.property(argvArb, envArb, (argv, env) => {
        const result = parseRunConfig(argv, env, fixed);
        if ('problems' in result) {
          expect(result.problems.length).toBeGreaterThan(0);
          for (const problem of result.problems) {
            expect(problem).not.toMatch(/[\r\n]/);
            expect(problem).toMatch(/^(--?\S|unexpected argument|cannot parse)/);
          }
        } else if (result.config.allocateNodeCIDRs && argv.some((a) => a.startsWith('--cluster-cidr'))) {
          expect(result.config.ranges.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('accepts a QPS exactly when it is a positive decimal number, and keeps its value', () => {
    fc.assert(
      fc.property(fc.oneof(text, fc.double({ min: 0, max: 1e6, noNaN: true }).map(String)), (qps) => {
        const result = parseRunConfig(['--cluster-cidr=10.244.0.0/16', `--kube-api-qps=${qps}`], {}, fixed);
        const valid = /^(\d+(\.\d*)?|\.\d+)$/.test(qps) && Number(qps) > 0 && Number.isFinite(Number(qps));
        if (valid) expect(result).toMatchObject({ config: { kube: { qps: Number(qps) } } });
        else expect(result).toEqual({ problems: [expect.stringMatching(/^--kube-api-qps: must be a positive number/)] });
      }),
      { numRuns: 300 },
    );
  });
});
