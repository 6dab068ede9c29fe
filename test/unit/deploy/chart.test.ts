// The Helm chart, rendered by the pinned helm: it lints, renders what kustomize renders for the same
// settings, refuses bad values, adds and removes objects with its toggles, and spells every flag as the
// controller's own parser reads it. The integration test sends the rendered chart to a real API server.

import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatCidr } from '../../../src/cidr/index.js';
import { parseRunConfig, type Config } from '../../../src/cli/config.js';
import { runFlagNames, type RunFlagName } from '../../../src/cli/flags.js';
import {
  byKey,
  chartDir,
  deploymentArgs,
  describeWithChartTools,
  findRaw,
  helm,
  helmNotes,
  helmTemplate,
  key,
  kustomize,
  kustomizeText,
  withoutStandardLabels,
  type RawObject,
} from './chart.js';
import { manifestsDir, repoRoot } from './manifests.js';

const appVersion = /^appVersion: "(.+)"$/m.exec(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8'))?.[1] ?? '';

/** The example overlay's settings, as chart values. */
const exampleValues = {
  clusterCIDR: '10.233.64.0/18',
  nodeCIDRMaskSize: 24,
  serviceClusterIPRange: '10.233.0.0/18',
  serviceMonitor: { enabled: true },
  prometheusRule: { enabled: true },
  dashboard: { enabled: true },
};

/** Paths where two JSON values differ, e.g. `spec.replicas`; empty when they are equal. */
function differences(a: unknown, b: unknown, path = ''): string[] {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) {
    return Object.is(a, b) ? [] : [path || '(root)'];
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (Array.isArray(a) && ka.length !== kb.length) return [`${path} (length ${ka.length} vs ${kb.length})`];
  const keys = [...new Set([...ka, ...kb])];
  return keys.flatMap((k) =>
    differences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path === '' ? k : `${path}.${k}`),
  );
}

/** Every difference between two renders, object by object, after the standard labels are gone. */
function renderDifferences(chart: readonly RawObject[], kustomized: readonly RawObject[]): string[] {
  const ours = byKey(withoutStandardLabels([...chart]));
  const theirs = byKey(withoutStandardLabels([...kustomized]));
  const problems: string[] = [];
  for (const k of theirs.keys()) if (!ours.has(k)) problems.push(`${k}: missing from the chart`);
  for (const k of ours.keys()) if (!theirs.has(k)) problems.push(`${k}: only in the chart`);
  for (const [k, object] of theirs) {
    const mine = ours.get(k);
    if (mine !== undefined) problems.push(...differences(mine, object).map((path) => `${k}: ${path}`));
  }
  return problems;
}

describeWithChartTools('the Helm chart', () => {
  let defaults: RawObject[];

  beforeAll(async () => {
    defaults = await helmTemplate();
  });

  describe('helm lint', () => {
    it('passes in strict mode with the default values', async () => {
      await expect(helm(['lint', '--strict', chartDir])).resolves.toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    });

    it('passes in strict mode with every optional object turned on', async () => {
      const set = 'serviceMonitor.enabled=true,prometheusRule.enabled=true,dashboard.enabled=true,crds.enabled=true,apiServerOnHost.enabled=true';
      await expect(helm(['lint', '--strict', chartDir, '--set', set])).resolves.toMatch(/0 chart\(s\) failed/);
    });
  });

  describe('against kubectl kustomize', () => {
    it('renders with default values what the base renders with the same image', async () => {
      const base = await kustomizeText((dir) =>
        [
          'apiVersion: kustomize.config.k8s.io/v1beta1',
          'kind: Kustomization',
          `resources: [${JSON.stringify(relative(dir, join(manifestsDir, 'base')))}]`,
          'images:',
          `  - {name: podcidr-allocator, newName: registry.example.com/podcidr-allocator, newTag: "${appVersion}"}`,
        ].join('\n'),
      );
      expect(base.map(key).sort()).toEqual([
        'ClusterRole/podcidr-allocator', 'ClusterRoleBinding/podcidr-allocator', 'Deployment/podcidr-allocator',
        'PodDisruptionBudget/podcidr-allocator', 'Role/podcidr-allocator', 'RoleBinding/podcidr-allocator',
        'Service/podcidr-allocator', 'ServiceAccount/podcidr-allocator',
      ]);
      expect(renderDifferences(defaults, base)).toEqual([]);
    });

    it("renders with the example overlay's settings what the example overlay renders, monitoring included", async () => {
      const overlay = await kustomize(join(manifestsDir, 'overlays', 'example'));
      expect(renderDifferences(await helmTemplate(exampleValues), overlay)).toEqual([]);
    });

    it('renders apiServerOnHost as the apiserver-on-host component', async () => {
      const all = await kustomize(join(repoRoot, 'test/fixtures/kustomize/all-components'));
      const chart = await helmTemplate({ ...exampleValues, apiServerOnHost: { enabled: true } });
      expect(renderDifferences(chart, all)).toEqual([]);
    });

    it('renders crds.enabled as the clustercidr component, the CRD kept on uninstall', async () => {
      const withCrd = await kustomize(join(repoRoot, 'test/fixtures/kustomize/clustercidr'));
      const chart = await helmTemplate({ ...exampleValues, crds: { enabled: true } });
      const crd = findRaw(chart, 'CustomResourceDefinition', 'clustercidrs.networking.x-k8s.io');
      // The one intended difference: Helm must not delete the CRD, and with it every ClusterCIDR.
      expect(crd.metadata.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
      delete crd.metadata.annotations;
      expect(renderDifferences(chart, withCrd)).toEqual([]);
    });

    it('reports a changed field, so that an empty list means equal', async () => {
      const base = await kustomize(join(manifestsDir, 'overlays', 'example'));
      const chart = await helmTemplate({ ...exampleValues, replicas: 3, tolerations: [] });
      expect(renderDifferences(chart, base)).toEqual([
        'Deployment/podcidr-allocator: spec.replicas',
        'Deployment/podcidr-allocator: spec.template.spec.tolerations',
      ]);
    });
  });

  describe('names and selectors', () => {
    it('names objects after a release that does not contain the chart name, and selects only its pods', async () => {
      const objects = await helmTemplate({}, { release: 'ipam' });
      expect(new Set(objects.map((o) => o.metadata.name))).toEqual(new Set(['ipam-podcidr-allocator']));
      const selectors = JSON.stringify(objects).match(/"app\.kubernetes\.io\/instance":"[^"]*"/g) ?? [];
      expect(new Set(selectors)).toEqual(new Set(['"app.kubernetes.io/instance":"ipam"']));
      const deployment = findRaw(objects, 'Deployment', 'ipam-podcidr-allocator');
      expect(JSON.stringify(deployment.spec)).toContain('"matchLabels":{"app.kubernetes.io/instance":"ipam","app.kubernetes.io/name":"podcidr-allocator"}');
    });

    it('puts the Role where the controller keeps its Lease and ConfigMaps: the release namespace, told by flag', async () => {
      const objects = await helmTemplate({}, { namespace: 'ipam' });
      expect(findRaw(objects, 'Role', 'podcidr-allocator').metadata.namespace).toBe('ipam');
      expect(findRaw(objects, 'RoleBinding', 'podcidr-allocator').metadata.namespace).toBe('ipam');
      expect(deploymentArgs(objects)).toContain('--leader-elect-resource-namespace=ipam');
      const inKubeSystem = deploymentArgs(defaults);
      expect(inKubeSystem.filter((a) => a.startsWith('--leader-elect-resource-namespace'))).toEqual([]);
    });

    it('grants the Lease under the name the controller is told', async () => {
      const objects = await helmTemplate({ leaderElection: { resourceName: 'ipam-lease', resourceNamespace: 'ipam-state' } });
      const role = findRaw(objects, 'Role', 'podcidr-allocator') as RawObject & { rules: { resourceNames?: string[] }[] };
      expect(role.metadata.namespace).toBe('ipam-state');
      expect(role.rules.map((r) => r.resourceNames ?? [])).toContainEqual(['ipam-lease']);
      expect(findRaw(objects, 'RoleBinding', 'podcidr-allocator').subjects).toEqual([
        { kind: 'ServiceAccount', name: 'podcidr-allocator', namespace: 'kube-system' },
      ]);
    });

    it('pulls by digest when one is given, and tags with appVersion otherwise', async () => {
      const digest = `sha256:${'ab'.repeat(32)}`;
      const image = async (values: object): Promise<unknown> =>
        (findRaw(await helmTemplate(values), 'Deployment', 'podcidr-allocator').spec as { template: { spec: { containers: { image: string }[] } } })
          .template.spec.containers[0]?.image;
      expect(await image({ image: { repository: 'r.example/p', digest } })).toBe(`r.example/p@${digest}`);
      expect(await image({ image: { repository: 'r.example/p', tag: 'v9' } })).toBe('r.example/p:v9');
      expect(await image({})).toBe(`registry.example.com/podcidr-allocator:${appVersion}`);
    });
  });

  describe('values.schema.json', () => {
    it.each<[string, object, RegExp]>([
      ['a prefix length past 32', { clusterCIDR: '10.0.0.0/33' }, /\/clusterCIDR/],
      ['a range that is no CIDR', { clusterCIDR: 'pods' }, /\/clusterCIDR/],
      ['three cluster ranges', { clusterCIDR: ['10.0.0.0/16', 'fd00::/56', '10.1.0.0/16'] }, /\/clusterCIDR/],
      ['an IPv4 node mask of 33', { nodeCIDRMaskSizeIPv4: 33 }, /\/nodeCIDRMaskSizeIPv4/],
      ['a mask size given as text', { nodeCIDRMaskSize: '24' }, /\/nodeCIDRMaskSize/],
      ['an excluded address without a prefix', { excludeCIDRs: ['10.0.0.1'] }, /\/excludeCIDRs\/0/],
      ['a quarantine in words', { releaseQuarantine: '5 minutes' }, /\/releaseQuarantine/],
      ['a QPS of 0', { kubeAPIQPS: 0 }, /\/kubeAPIQPS/],
      ['a fractional burst', { kubeAPIBurst: 1.5 }, /\/kubeAPIBurst/],
      ['an unknown content type', { kubeAPIContentType: 'application/yaml' }, /\/kubeAPIContentType/],
      ['an unknown log level', { logLevel: 'verbose' }, /\/logLevel/],
      ['a master that is not http(s)', { master: 'ftp://api' }, /\/master/],
      ['a metrics port of 0', { metricsBindAddress: '0.0.0.0:0' }, /\/metricsBindAddress/],
      ['a metrics address without a port', { metricsBindAddress: '10262' }, /\/metricsBindAddress/],
      ['a Lease namespace that is no DNS label', { leaderElection: { resourceNamespace: 'Kube_System' } }, /\/leaderElection\/resourceNamespace/],
      ['leader election as text', { leaderElection: { enabled: 'yes' } }, /\/leaderElection\/enabled/],
      ['negative replicas', { replicas: -1 }, /\/replicas/],
      ['an unknown pull policy', { image: { pullPolicy: 'Sometimes' } }, /\/image\/pullPolicy/],
      ['a short digest', { image: { digest: 'sha256:abc' } }, /\/image\/digest/],
      ['a misspelt value', { clusterCidr: '10.0.0.0/16' }, /additional properties 'clusterCidr'/],
      ['a misspelt toggle', { serviceMonitor: { enable: true } }, /additional properties 'enable'/],
      ['a percentage without %', { podDisruptionBudget: { minAvailable: '50' } }, /\/podDisruptionBudget\/minAvailable/],
      ['a probe with its own httpGet', { livenessProbe: { httpGet: { path: '/' } } }, /\/livenessProbe/],
    ])('refuses %s', async (_what, values, message) => {
      await expect(helmTemplate(values)).rejects.toThrow(message);
    });

    it.each<[string, object]>([
      ['a dual-stack range as one string', { clusterCIDR: '10.0.0.0/16,fd00:10::/56' }],
      ['a single IPv6 range with its mask', { clusterCIDR: ['fd00:10::/56'], nodeCIDRMaskSize: 64 }],
      ['a percentage budget', { podDisruptionBudget: { minAvailable: '50%' } }],
      ['an IPv6 metrics address', { metricsBindAddress: '[::1]:10262' }],
    ])('accepts %s', async (_what, values) => {
      await expect(helmTemplate(values)).resolves.toContainEqual(expect.objectContaining({ kind: 'Deployment' }));
    });
  });

  describe('toggles', () => {
    const crdObjects = ['CustomResourceDefinition/clustercidrs.networking.x-k8s.io'];
    const clusterCIDRAccess = ['ClusterRole/podcidr-allocator-clustercidrs', 'ClusterRoleBinding/podcidr-allocator-clustercidrs'];
    interface ToggleCase {
      readonly toggle: string;
      readonly values: object;
      /** Objects the toggle adds to the default render; none of them is there by default. */
      readonly adds: readonly string[];
      /** Objects of the default render the toggle takes away. */
      readonly removes: readonly string[];
    }
    const toggles: ToggleCase[] = [
      { toggle: 'serviceMonitor.enabled', values: { serviceMonitor: { enabled: true } }, adds: ['ServiceMonitor/podcidr-allocator'], removes: [] },
      { toggle: 'prometheusRule.enabled', values: { prometheusRule: { enabled: true } }, adds: ['PrometheusRule/podcidr-allocator'], removes: [] },
      { toggle: 'dashboard.enabled', values: { dashboard: { enabled: true } }, adds: ['ConfigMap/podcidr-allocator-dashboard'], removes: [] },
      { toggle: 'crds.enabled', values: { crds: { enabled: true } }, adds: [...clusterCIDRAccess, ...crdObjects], removes: [] },
      { toggle: 'rbac.clusterCIDRs', values: { rbac: { clusterCIDRs: true } }, adds: clusterCIDRAccess, removes: [] },
      { toggle: 'podDisruptionBudget.enabled off', values: { podDisruptionBudget: { enabled: false } }, adds: [], removes: ['PodDisruptionBudget/podcidr-allocator'] },
      { toggle: 'service.enabled off', values: { service: { enabled: false } }, adds: [], removes: ['Service/podcidr-allocator'] },
      { toggle: 'serviceAccount.create off', values: { serviceAccount: { create: false } }, adds: [], removes: ['ServiceAccount/podcidr-allocator'] },
      {
        toggle: 'rbac.create off',
        values: { rbac: { create: false } },
        adds: [],
        removes: ['ClusterRole/podcidr-allocator', 'ClusterRoleBinding/podcidr-allocator', 'Role/podcidr-allocator', 'RoleBinding/podcidr-allocator'],
      },
    ];

    it.each(toggles)('$toggle adds and removes its own objects and nothing else', async ({ values, adds, removes }) => {
      const keys = (await helmTemplate(values)).map(key);
      const before = defaults.map(key);
      expect(keys.filter((k) => !before.includes(k)).sort()).toEqual([...adds].sort());
      expect(before.filter((k) => !keys.includes(k)).sort()).toEqual([...removes].sort());
    });

    it('grants with rbac.clusterCIDRs the ClusterCIDR access that crds.enabled grants, without the CRD', async () => {
      const alone = await helmTemplate({ rbac: { clusterCIDRs: true } });
      const withCrd = await helmTemplate({ crds: { enabled: true } });
      for (const name of clusterCIDRAccess) {
        const [kind = '', objectName = ''] = name.split('/');
        expect(findRaw(alone, kind, objectName)).toEqual(findRaw(withCrd, kind, objectName));
      }
    });

    it('leaves the CRD to Helm to delete when crds.keep is off, and its RBAC out without rbac.create', async () => {
      const objects = await helmTemplate({ crds: { enabled: true, keep: false }, rbac: { create: false, clusterCIDRs: true } });
      expect(findRaw(objects, 'CustomResourceDefinition', 'clustercidrs.networking.x-k8s.io').metadata.annotations).toBeUndefined();
      expect(objects.map(key).filter((k) => k.includes('clustercidrs'))).toEqual(['CustomResourceDefinition/clustercidrs.networking.x-k8s.io']);
    });

    it('runs as the named ServiceAccount when it is not created here', async () => {
      const objects = await helmTemplate({ serviceAccount: { create: false, name: 'ipam' } });
      const pod = (findRaw(objects, 'Deployment', 'podcidr-allocator').spec as { template: { spec: { serviceAccountName: string } } }).template.spec;
      expect(pod.serviceAccountName).toBe('ipam');
      expect(findRaw(objects, 'RoleBinding', 'podcidr-allocator').subjects).toEqual([{ kind: 'ServiceAccount', name: 'ipam', namespace: 'kube-system' }]);
    });
  });

  describe('controller flags', () => {
    const dual = ['10.100.0.0/16', 'fd00:10::/56'];
    interface FlagCase {
      readonly flag: RunFlagName;
      readonly values: object;
      /** The value after `--flag=`. */
      readonly text: string;
      readonly read: (config: Config) => unknown;
      readonly want: unknown;
    }
    const cases: FlagCase[] = [
      { flag: 'allocate-node-cidrs', values: { allocateNodeCIDRs: false }, text: 'false', read: (c) => c.allocateNodeCIDRs, want: false },
      { flag: 'cluster-cidr', values: { clusterCIDR: dual }, text: dual.join(','), read: (c) => c.ranges.map((r) => formatCidr(r.clusterCIDR)), want: dual },
      { flag: 'node-cidr-mask-size', values: { nodeCIDRMaskSize: 26 }, text: '26', read: (c) => c.ranges[0]?.nodeMask, want: 26 },
      { flag: 'node-cidr-mask-size-ipv4', values: { clusterCIDR: dual, nodeCIDRMaskSizeIPv4: 25 }, text: '25', read: (c) => c.ranges[0]?.nodeMask, want: 25 },
      { flag: 'node-cidr-mask-size-ipv6', values: { clusterCIDR: dual, nodeCIDRMaskSizeIPv6: 62 }, text: '62', read: (c) => c.ranges[1]?.nodeMask, want: 62 },
      { flag: 'service-cluster-ip-range', values: { serviceClusterIPRange: ['10.96.0.0/12'] }, text: '10.96.0.0/12', read: (c) => c.reserved.map(formatCidr), want: ['10.96.0.0/12'] },
      {
        flag: 'exclude-cidr',
        values: { excludeCIDRs: ['10.244.1.0/24', '10.244.2.0/24'] },
        text: '10.244.1.0/24,10.244.2.0/24',
        read: (c) => c.reserved.map(formatCidr),
        want: ['10.244.1.0/24', '10.244.2.0/24'],
      },
      { flag: 'release-quarantine', values: { releaseQuarantine: '1m30s' }, text: '1m30s', read: (c) => c.releaseQuarantineMs, want: 90_000 },
      { flag: 'kubeconfig', values: { kubeconfig: '/etc/podcidr/kubeconfig' }, text: '/etc/podcidr/kubeconfig', read: (c) => c.kube.kubeconfig, want: '/etc/podcidr/kubeconfig' },
      { flag: 'master', values: { master: 'https://api.example.com:6443' }, text: 'https://api.example.com:6443', read: (c) => c.kube.master, want: 'https://api.example.com:6443' },
      // No exponent: 1e+06 is not a number the controller takes.
      { flag: 'kube-api-qps', values: { kubeAPIQPS: 1_000_000 }, text: '1000000', read: (c) => c.kube.qps, want: 1_000_000 },
      { flag: 'kube-api-burst', values: { kubeAPIBurst: 60 }, text: '60', read: (c) => c.kube.burst, want: 60 },
      { flag: 'kube-api-content-type', values: { kubeAPIContentType: 'application/json' }, text: 'application/json', read: (c) => c.kube.contentType, want: 'application/json' },
      { flag: 'concurrent-node-syncs', values: { concurrentNodeSyncs: 5 }, text: '5', read: (c) => c.concurrentNodeSyncs, want: 5 },
      { flag: 'audit-interval', values: { auditInterval: '0' }, text: '0', read: (c) => c.auditIntervalMs, want: 0 },
      { flag: 'handoff-interval', values: { handoffInterval: '30s' }, text: '30s', read: (c) => c.handoffIntervalMs, want: 30_000 },
      { flag: 'log-level', values: { logLevel: 'debug' }, text: 'debug', read: (c) => c.logLevel, want: 'debug' },
      { flag: 'metrics-bind-address', values: { metricsBindAddress: '127.0.0.1:10300' }, text: '127.0.0.1:10300', read: (c) => c.metrics.port, want: 10300 },
      { flag: 'leader-elect', values: { leaderElection: { enabled: false } }, text: 'false', read: (c) => c.leaderElection.enabled, want: false },
      { flag: 'leader-elect-lease-duration', values: { leaderElection: { leaseDuration: '20s' } }, text: '20s', read: (c) => c.leaderElection.leaseDurationMs, want: 20_000 },
      { flag: 'leader-elect-renew-deadline', values: { leaderElection: { renewDeadline: '12s' } }, text: '12s', read: (c) => c.leaderElection.renewDeadlineMs, want: 12_000 },
      { flag: 'leader-elect-retry-period', values: { leaderElection: { retryPeriod: '3s' } }, text: '3s', read: (c) => c.leaderElection.retryPeriodMs, want: 3_000 },
      { flag: 'leader-elect-resource-name', values: { leaderElection: { resourceName: 'ipam-lease' } }, text: 'ipam-lease', read: (c) => c.leaderElection.resourceName, want: 'ipam-lease' },
      {
        flag: 'leader-elect-resource-namespace',
        values: { leaderElection: { resourceNamespace: 'ipam' } },
        text: 'ipam',
        read: (c) => c.leaderElection.resourceNamespace,
        want: 'ipam',
      },
    ];

    it('has a value for every flag of the run command, and no flag the command lacks', () => {
      expect(cases.map((c) => c.flag).sort()).toEqual([...runFlagNames].sort());
    });

    it.each(cases)('renders the flag $flag as the controller parses it', async ({ flag, values, text, read, want }) => {
      const args = deploymentArgs(await helmTemplate(values));
      expect(args.filter((a) => a.startsWith(`--${flag}=`))).toEqual([`--${flag}=${text}`]);
      const parsed = parseRunConfig(args.slice(1), {});
      expect('problems' in parsed ? parsed.problems : []).toEqual([]);
      if ('config' in parsed) expect(read(parsed.config)).toEqual(want);
    });

    it('renders only the flags the kustomize base sets when no value is given', () => {
      expect(deploymentArgs(defaults)).toEqual([
        'run', '--allocate-node-cidrs=true', '--cluster-cidr=10.244.0.0/16', '--leader-elect=true', '--metrics-bind-address=0.0.0.0:10262',
      ]);
    });

    it('uses the port of metricsBindAddress for the container port the probes and the Service target', async () => {
      const objects = await helmTemplate({ metricsBindAddress: '[::]:10300' });
      const container = (findRaw(objects, 'Deployment', 'podcidr-allocator').spec as {
        template: { spec: { containers: { ports: { name: string; containerPort: number }[] }[] } };
      }).template.spec.containers[0];
      expect(container?.ports).toEqual([{ name: 'metrics', containerPort: 10300, protocol: 'TCP' }]);
      expect((findRaw(objects, 'Service', 'podcidr-allocator').spec as { ports: unknown[] }).ports).toEqual([
        { name: 'metrics', port: 10262, targetPort: 'metrics', protocol: 'TCP' },
      ]);
    });

    it('appends extraArgs after the flags it renders', async () => {
      const args = deploymentArgs(await helmTemplate({ extraArgs: ['--some-new-flag=1'] }));
      expect(args.at(-1)).toBe('--some-new-flag=1');
    });
  });

  describe('without clusterCIDR, ClusterCIDR objects alone', () => {
    const poolsOnly = { clusterCIDR: null, crds: { enabled: true } };

    it.each(['crds.enabled=true', 'rbac.clusterCIDRs=true', 'rbac.create=false'])('passes helm lint in strict mode with clusterCIDR=null,%s', async (set) => {
      await expect(helm(['lint', '--strict', chartDir, '--set', `clusterCIDR=null,${set}`])).resolves.toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    });

    it('renders no --cluster-cidr, and args the controller reads as no flag range', async () => {
      const args = deploymentArgs(await helmTemplate(poolsOnly));
      expect(args.filter((a) => a.startsWith('--cluster-cidr'))).toEqual([]);
      const parsed = parseRunConfig(args.slice(1), {});
      expect('problems' in parsed ? parsed.problems : []).toEqual([]);
      if ('config' in parsed) expect(parsed.config.ranges).toEqual([]);
    });

    // The controller cannot tell at start-up whether ClusterCIDRs exist or may be read, so it starts
    // without both (and logs that it serves none); the chart installs too, and its notes warn instead.
    it('installs with no ClusterCIDR access either, as the controller starts, and warns in the notes', async () => {
      const values = { clusterCIDR: null };
      const objects = await helmTemplate(values);
      expect(objects.map(key).filter((k) => k.includes('clustercidrs'))).toEqual([]);
      const parsed = parseRunConfig(deploymentArgs(objects).slice(1), {});
      expect('problems' in parsed ? parsed.problems : []).toEqual([]);
      expect(await helmNotes(values)).toContain('WARNING: clusterCIDR is unset and the controller may not read ClusterCIDRs');
    });

    it('refuses an empty clusterCIDR, which would render --cluster-cidr= and not unset it', async () => {
      await expect(helmTemplate({ clusterCIDR: '' })).rejects.toThrow(/\/clusterCIDR/);
      await expect(helmTemplate({ clusterCIDR: [] })).rejects.toThrow(/\/clusterCIDR/);
    });
  });

  describe('NOTES.txt', () => {
    const rangeOnly = 'Every node should show a podCIDR inside 10.233.64.0/18. ';
    const rangeAndPools = 'Every node should show a podCIDR inside 10.233.64.0/18 or, where a ClusterCIDR selects the node,';
    const poolsOnly = 'Every node that a ClusterCIDR selects should show a podCIDR inside that pool';
    const noAccess = 'WARNING: clusterCIDR is unset and the controller may not read ClusterCIDRs';
    const ownGrant = 'NOTE: rbac.create is false and clusterCIDR unset';
    const placeholder = "WARNING: clusterCIDR is the chart's placeholder";
    const all = [rangeOnly, rangeAndPools, poolsOnly, noAccess, ownGrant, placeholder];
    const range = '10.233.64.0/18';
    it.each<[string, object, string[]]>([
      ['a clusterCIDR alone', { clusterCIDR: range }, [rangeOnly]],
      ['the placeholder clusterCIDR', {}, ['Every node should show a podCIDR inside 10.244.0.0/16. ', placeholder]],
      ['a clusterCIDR with the CRD', { clusterCIDR: range, crds: { enabled: true } }, [rangeAndPools]],
      ['a clusterCIDR with ClusterCIDR access alone', { clusterCIDR: range, rbac: { clusterCIDRs: true } }, [rangeAndPools]],
      ['ClusterCIDRs alone, with the CRD', { clusterCIDR: null, crds: { enabled: true } }, [poolsOnly]],
      ['ClusterCIDRs alone, with access alone', { clusterCIDR: null, rbac: { clusterCIDRs: true } }, [poolsOnly]],
      ['ClusterCIDRs alone under RBAC of your own', { clusterCIDR: null, rbac: { create: false } }, [poolsOnly, ownGrant]],
      ['neither clusterCIDR nor ClusterCIDR access', { clusterCIDR: null }, ['No node can get a podCIDR', noAccess]],
    ])('with %s, says which range each node gets its podCIDR from, and no other case', async (_what, values, want) => {
      const notes = await helmNotes(values);
      for (const line of want) expect(notes).toContain(line);
      expect(all.filter((line) => !want.includes(line) && notes.includes(line))).toEqual([]);
    });

    it('names a dual-stack clusterCIDR in full', async () => {
      expect(await helmNotes({ clusterCIDR: ['10.233.64.0/18', 'fd00:10:233::/56'] })).toContain('podCIDR inside 10.233.64.0/18, fd00:10:233::/56.');
    });
  });
});
