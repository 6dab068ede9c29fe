// What holds the chart to the rest of the repository without running helm: its appVersion is the
// package's version, its copies of the monitoring and ClusterCIDR files are the kustomize ones, its schema
// takes the controller's own choices, and the helm that tests it is the pinned one.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chartDir, readSchema, schemaAt } from '../../../hack/docs/chart.js';
import { pinnedHelmVersion } from '../../../hack/lib/control-plane.js';
import { kubeContentTypes } from '../../../src/cli/config.js';
import { logLevels } from '../../../src/log.js';
import { manifestsDir, repoRoot } from './manifests.js';

const read = (path: string): string => readFileSync(path, 'utf8');

describe('the chart beside the repository', () => {
  it("is an apiVersion v2 chart whose appVersion is package.json's version", () => {
    const chart = read(join(chartDir, 'Chart.yaml'));
    const { version } = JSON.parse(read(join(repoRoot, 'package.json'))) as { version: string };
    expect(chart).toMatch(/^apiVersion: v2$/m);
    expect(/^appVersion: "(.+)"$/m.exec(chart)?.[1]).toBe(version);
  });

  it.each([
    ['files/dashboard.json', 'components/monitoring/dashboard.json'],
    ['files/prometheusrule.yaml', 'components/monitoring/prometheusrule.yaml'],
    ['files/clustercidr-crd.yaml', 'components/clustercidr/crd.yaml'],
  ])('ships %s as a copy of manifests/%s', (ours, theirs) => {
    expect(read(join(chartDir, ours)), `copy manifests/${theirs} to charts/podcidr-allocator/${ours}`).toBe(read(join(manifestsDir, theirs)));
  });

  it("offers the controller's log levels and content types, no more and no fewer", () => {
    const schema = readSchema();
    expect(schemaAt(schema, 'logLevel')?.enum).toEqual([null, ...logLevels]);
    expect(schemaAt(schema, 'kubeAPIContentType')?.enum).toEqual([null, ...kubeContentTypes]);
  });

  it('is tested with the helm that hack/helm/go.mod pins and versions.env names', () => {
    const goMod = read(join(repoRoot, 'hack/helm/go.mod'));
    expect(/^\thelm\.sh\/helm\/v3 (\S+)/m.exec(goMod)?.[1]).toBe(pinnedHelmVersion());
    expect(pinnedHelmVersion()).toMatch(/^v3\./);
  });
});
