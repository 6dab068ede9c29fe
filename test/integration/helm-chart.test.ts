// The Helm chart against a real kube-apiserver: what `helm template` renders passes a server-side dry run,
// with and without every optional object and without clusterCIDR, `helm install` prints the notes the unit
// tests read, and `helm uninstall` leaves only the CRD behind.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chartDir, chartTools, describeWithChartTools, helmNotes, helmTemplateText, key, rawObjects, type RawObject } from '../unit/deploy/chart.js';
import { repoRoot } from '../unit/deploy/manifests.js';
import { controlPlane, describeWithControlPlane } from './harness.js';

const run = promisify(execFile);
const monitoringCrds = join(repoRoot, 'test/fixtures/crds');
const clusterCidrCrd = 'customresourcedefinition/clustercidrs.networking.x-k8s.io';

/** Every optional object of the chart turned on. */
const everything = {
  clusterCIDR: ['10.233.64.0/18', 'fd00:10:233::/56'],
  serviceClusterIPRange: ['10.233.0.0/18', 'fd00:10:96::/112'],
  serviceMonitor: { enabled: true },
  prometheusRule: { enabled: true },
  dashboard: { enabled: true },
  crds: { enabled: true },
  apiServerOnHost: { enabled: true },
};

function kubeconfig(): string {
  const cp = controlPlane();
  if (!cp.available) throw new Error(`no control plane: ${cp.reason}`);
  return cp.kubeconfigPath;
}

async function exec(bin: string, args: string[], input?: string): Promise<string> {
  const child = run(bin, args, { maxBuffer: 32 * 1024 * 1024 });
  child.child.stdin?.end(input ?? '');
  try {
    return (await child).stdout;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`${bin.split('/').at(-1)} ${args.join(' ')} failed:\n${stdout}${stderr}`, { cause: error });
  }
}

const kubectl = (args: string[], input?: string): Promise<string> => exec(chartTools().kubectl, ['--kubeconfig', kubeconfig(), ...args], input);
const helm = (args: string[]): Promise<string> => exec(chartTools().helm, ['--kubeconfig', kubeconfig(), ...args]);

async function dryRun(yaml: string): Promise<RawObject[]> {
  const out = JSON.parse(await kubectl(['apply', '--dry-run=server', '-f', '-', '-o', 'json'], yaml)) as RawObject & { items?: RawObject[] };
  return out.items ?? [out];
}

describeWithControlPlane('the Helm chart on a real API server', () => {
  describeWithChartTools('rendered and installed', () => {
    let installed = false;

    beforeAll(async () => {
      await kubectl(['apply', '--server-side', '-f', monitoringCrds]);
      await kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', monitoringCrds]);
    });

    afterAll(async () => {
      if (installed) await helm(['uninstall', 'podcidr-allocator', '-n', 'kube-system', '--wait']).catch(() => undefined);
      // Waited for, so that the next file can create either CRD afresh.
      await kubectl(['delete', '--ignore-not-found', clusterCidrCrd]);
      await kubectl(['delete', '--ignore-not-found', '-f', monitoringCrds]);
    });

    it('is accepted as rendered with default values in a server-side dry run', async () => {
      const yaml = await helmTemplateText();
      expect((await dryRun(yaml)).map(key).sort()).toEqual((await rawObjects(yaml)).map(key).sort());
    });

    it('is accepted with every optional object turned on', async () => {
      const yaml = await helmTemplateText(everything);
      const accepted = (await dryRun(yaml)).map(key);
      expect(accepted.sort()).toEqual((await rawObjects(yaml)).map(key).sort());
      expect(accepted).toEqual(
        expect.arrayContaining([
          'CustomResourceDefinition/clustercidrs.networking.x-k8s.io', 'ServiceMonitor/podcidr-allocator',
          'PrometheusRule/podcidr-allocator', 'ConfigMap/podcidr-allocator-dashboard',
        ]),
      );
    });

    it('is accepted without clusterCIDR, ClusterCIDR objects alone serving nodes', async () => {
      const yaml = await helmTemplateText({ clusterCIDR: null, crds: { enabled: true } });
      expect(yaml).not.toContain('--cluster-cidr');
      expect((await dryRun(yaml)).map(key).sort()).toEqual((await rawObjects(yaml)).map(key).sort());
    });

    it('refuses a rendered Deployment with a port out of range, so the dry run is not a rubber stamp', async () => {
      const yaml = await helmTemplateText();
      const broken = yaml.replace('containerPort: 10262', 'containerPort: 70000');
      expect(broken).not.toBe(yaml);
      await expect(dryRun(broken)).rejects.toThrow(/containerPort/);
    });

    it('installs with helm, printing how to turn off the built-in allocator and check the result', async () => {
      const out = await helm([
        'install', 'podcidr-allocator', chartDir, '-n', 'kube-system', '--set', 'crds.enabled=true,clusterCIDR=10.233.64.0/18',
      ]);
      installed = true;
      expect(out).toMatch(/STATUS: deployed/);
      expect(out).toContain('--allocate-node-cidrs=false');
      expect(out).toContain('kubectl -n kube-system get lease podcidr-allocator');
      expect(out).toContain('podCIDR inside 10.233.64.0/18');
      // The unit tests read the notes through tpl; helm's own must be the same text.
      expect(out).toContain(`NOTES:\n${(await helmNotes({ crds: { enabled: true }, clusterCIDR: '10.233.64.0/18' })).trim()}\n`);
      const names = (await kubectl(['-n', 'kube-system', 'get', 'deploy,sa,role,rolebinding,pdb,svc', '-o', 'name'])).split('\n');
      expect(names).toEqual(
        expect.arrayContaining([
          'deployment.apps/podcidr-allocator', 'serviceaccount/podcidr-allocator', 'role.rbac.authorization.k8s.io/podcidr-allocator',
          'poddisruptionbudget.policy/podcidr-allocator', 'service/podcidr-allocator',
        ]),
      );
    });

    it('leaves the ClusterCIDR CRD and removes everything else on helm uninstall', async () => {
      expect(installed).toBe(true);
      const out = await helm(['uninstall', 'podcidr-allocator', '-n', 'kube-system', '--wait']);
      installed = false;
      expect(out).toMatch(/kept due to the resource policy:\s*\[CustomResourceDefinition\] clustercidrs\.networking\.x-k8s\.io/);
      expect(await kubectl(['get', clusterCidrCrd, '-o', 'jsonpath={.metadata.annotations}'])).toContain('"helm.sh/resource-policy":"keep"');
      const left = await kubectl(['get', 'deploy,sa,role,rolebinding,pdb,svc,clusterrole,clusterrolebinding', '-A', '-o', 'name']);
      expect(left.split('\n').filter((n) => n.endsWith('/podcidr-allocator') || n.endsWith('/podcidr-allocator-clustercidrs'))).toEqual([]);
    });
  });
});
