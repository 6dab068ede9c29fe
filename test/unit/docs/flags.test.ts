// The README's generated tables: they match what the code declares (run `npm run docs:flags` when not),
// and the marker splicing they rely on touches nothing outside its markers.

import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { renderFlagsTable } from '../../../hack/docs/flags.js';
import { renderMetricsTable } from '../../../hack/docs/metrics.js';
import { MarkerError, between, cell, readmePath, splice } from '../../../hack/docs/readme.js';
import { envVarName, runFlagNames } from '../../../src/cli/flags.js';
import { describeMetrics } from '../../../src/metrics/describe.js';
import { createMetrics } from '../../../src/metrics/metrics.js';

const readme = readFileSync(readmePath, 'utf8');
const stale = 'README.md is stale: run `npm run docs:flags`';

describe('the README flag table', () => {
  it('is the table rendered from runFlags', () => {
    expect(between(readme, 'flags'), stale).toBe(renderFlagsTable());
  });

  it('sits under the Flags heading', () => {
    const section = readme.slice(readme.indexOf('\n## Flags\n'));
    expect(section.indexOf('<!-- flags:start -->')).toBeGreaterThan(0);
    expect(section.indexOf('<!-- flags:start -->')).toBeLessThan(section.indexOf('\n## ', 1));
  });

  it('has one row per flag, naming its environment variable', () => {
    const rows = renderFlagsTable().split('\n').slice(2);
    expect(rows).toHaveLength(runFlagNames.length);
    runFlagNames.forEach((name, i) => {
      expect(rows[i]).toMatch(new RegExp(`^\\| \`--${name}\`[^|]* \\| \`${envVarName(name)}\` \\|`));
    });
  });

  it('shows the kind of valued flags, the default as typed and the described default', () => {
    const rows = renderFlagsTable().split('\n');
    expect(rows).toContainEqual(expect.stringMatching(/^\| `--release-quarantine` \*duration\* \| [^|]+ \| `1m` \|/));
    expect(rows).toContainEqual(expect.stringMatching(/^\| `--exclude-cidr` \*list, repeatable\* \|/));
    expect(rows).toContainEqual(expect.stringMatching(/^\| `--leader-elect` \| [^|]+ \| `true` \|/));
    expect(rows).toContainEqual(expect.stringMatching(/^\| `--kubeconfig` \*string\* \| [^|]+ \| in-cluster configuration \|/));
  });
});

describe('the README metric table', () => {
  it('is the table rendered from the registry createMetrics fills', () => {
    expect(between(readme, 'metrics'), stale).toBe(renderMetricsTable());
  });

  it('sits under the Metrics heading', () => {
    const section = readme.slice(readme.indexOf('\n## Metrics\n'));
    expect(section.indexOf('<!-- metrics:start -->')).toBeGreaterThan(0);
    expect(section.indexOf('<!-- metrics:start -->')).toBeLessThan(section.indexOf('\n## ', 1));
  });

  it('lists every series of ours and none of the platform-dependent defaults', () => {
    const registry = new Registry();
    createMetrics(registry, { usage: () => [], nodesWithoutPodCIDR: () => 0, conflicts: () => ({}), isLeader: () => false });
    const ours = describeMetrics(registry)
      .map((m) => m.name)
      .filter((n) => !/^(process|nodejs)_/.test(n));
    const listed = [...renderMetricsTable(registry).matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
    expect(listed).toEqual(ours);
  });

  it("shows upstream's tries buckets and the labels of each series", () => {
    const table = renderMetricsTable();
    expect(table).toContain(
      '| `node_ipam_controller_cidrset_allocation_tries_per_request` | histogram (1, 5, 25, 125, 625) | `clusterCIDR` |',
    );
    expect(table).toContain('| `podcidr_allocator_api_requests_total` | counter | `verb`, `code` |');
  });
});

describe('marker splicing', () => {
  const text = 'intro\n<!-- t:start -->\nold\n<!-- t:end -->\noutro\n';

  it('replaces only the text between the markers', () => {
    expect(splice(text, 't', 'new\nrows')).toBe('intro\n<!-- t:start -->\nnew\nrows\n<!-- t:end -->\noutro\n');
    expect(between(splice(text, 't', 'new'), 't')).toBe('new');
  });

  it('gives the same text when spliced twice', () => {
    expect(splice(splice(text, 't', 'x'), 't', 'x')).toBe(splice(text, 't', 'x'));
  });

  it.each([
    ['a missing end marker', 'a\n<!-- t:start -->\nb\n', /missing/],
    ['a doubled start marker', '<!-- t:start -->\n<!-- t:start -->\n<!-- t:end -->\n', /doubled/],
    ['markers in the wrong order', '<!-- t:end -->\n<!-- t:start -->\n', /out of order/],
  ])('refuses %s', (_what, broken, message) => {
    expect(() => splice(broken, 't', 'x')).toThrow(MarkerError);
    expect(() => between(broken, 't')).toThrow(message);
  });

  it('escapes what would break a table cell', () => {
    expect(cell('a | b <error>\nc')).toBe('a \\| b &lt;error> c');
  });
});
