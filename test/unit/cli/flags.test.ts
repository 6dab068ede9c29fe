import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../../src/cli/config.js';
import { envVarName, flagSpec, helpOptions, runFlagNames } from '../../../src/cli/flags.js';

describe('runFlags', () => {
  it('spells every flag in kebab case, with an environment variable of the same name', () => {
    for (const name of runFlagNames) {
      expect(name).toMatch(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/);
      expect(envVarName(name)).toBe(`PODCIDR_ALLOCATOR_${name.replaceAll('-', '_').toUpperCase()}`);
    }
  });

  it('keeps kube-controller-manager defaults for the flags both programs share', () => {
    const defaults = Object.fromEntries(runFlagNames.map((n) => [n, flagSpec(n).default]));
    expect(defaults).toMatchObject({
      'kube-api-qps': '20',
      'kube-api-burst': '30',
      'leader-elect': 'true',
      'leader-elect-lease-duration': '15s',
      'leader-elect-renew-deadline': '10s',
      'leader-elect-retry-period': '2s',
      'leader-elect-resource-namespace': 'kube-system',
    });
  });

  it('has defaults that pass its own validation', () => {
    const result = parseRunConfig(['--allocate-node-cidrs=false'], {});
    expect(result).toHaveProperty('config');
  });

  it('gives yargs typed defaults for the help text', () => {
    const options = helpOptions();
    expect(options['kube-api-qps']).toMatchObject({ type: 'number', default: 20 });
    expect(options['leader-elect']).toMatchObject({ type: 'boolean', default: true });
    expect(options['exclude-cidr']).toMatchObject({ type: 'string', array: true });
    expect(options['cluster-cidr']).not.toHaveProperty('default');
  });
});
