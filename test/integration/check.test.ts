// `podcidr-allocator check` as an operator runs it: a child process against the real kube-apiserver,
// scoped with --selector to this file's nodes. Also pins which bad podCIDRs the API server lets in.
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CheckJson } from '../../src/cli/commands/report.js';
import { runCli, type Outcome } from '../cli-process.js';
import { CLUSTER_CIDR_RESOURCE, installClusterCidrCrd, removeClusterCidrCrd } from './clustercidr-api.js';
import {
  TestScope,
  controlPlane,
  describeWithControlPlane,
  expectApiError,
  kubeClients,
  type KubeClients,
} from './harness.js';

const RANGES = ['--cluster-cidr=10.233.64.0/18', '--node-cidr-mask-size=24', '--service-cluster-ip-range=10.233.0.0/18'];

function check(args: readonly string[]): Promise<Outcome> {
  const cp = controlPlane();
  if (!cp.available) throw new Error(cp.reason);
  return runCli(['check', ...RANGES, `--kubeconfig=${cp.kubeconfigPath}`, ...args]);
}

describeWithControlPlane('podcidr-allocator check on a real API server', () => {
  let c: KubeClients;
  const scope = new TestScope('check');

  beforeAll(() => {
    c = kubeClients();
  });
  afterAll(async () => {
    await scope.cleanup(c);
  });

  /** Creates a node of this scope, its podCIDRs written by `manager` (the field manager of the create). */
  async function createNode(base: string, podCIDRs: string[], manager = 'kube-controller-manager'): Promise<string> {
    const body: k8s.V1Node = scope.node(base);
    if (podCIDRs.length > 0) body.spec = { podCIDR: podCIDRs[0], podCIDRs };
    const node = await c.core.createNode({ body, fieldManager: manager });
    const name = node.metadata?.name;
    if (name === undefined) throw new Error('created node has no name');
    return name;
  }

  it('is refused podCIDRs that are not CIDRs at all, so check meets only subtler damage', async () => {
    const err = await expectApiError(() => createNode('garbage', ['not-a-cidr']));
    expect(err.code).toBe(422);
    expect(err.message).toContain('spec.podCIDRs[0]');
  });

  it('reports duplicates, out-of-range, host bits, reserved and missing podCIDRs (exit 1), and exit 0 once they are gone', async () => {
    const good = await createNode('good', ['10.233.64.0/24'], 'podcidr-allocator');
    const dup = await createNode('dup', ['10.233.64.0/24']);
    const outside = await createNode('outside', ['10.99.0.0/24']);
    // The API server reads CIDRs as Go's ParseCIDRSloppy does: host bits set are let through.
    const hostBits = await createNode('hostbits', ['10.233.66.7/24']);
    const service = await createNode('service', ['10.233.1.0/24']);
    const missing = await createNode('missing', []);
    const fine = await createNode('fine', ['10.233.67.0/24']);

    const json = await check(['--selector', scope.selector, '-o', 'json']);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as CheckJson;
    expect(report.selector).toBe(scope.selector);
    expect(report.nodes.map((n) => n.name).sort()).toEqual([dup, fine, good, hostBits, missing, outside, service].sort());
    expect(report.problems.map((p) => [p.kind, p.node, p.cidr]).sort()).toEqual(
      [
        ['duplicate', dup, '10.233.64.0/24'],
        ['out-of-range', outside, '10.99.0.0/24'],
        ['malformed', hostBits, '10.233.66.7/24'],
        ['out-of-range', service, '10.233.1.0/24'],
        ['reserved', service, '10.233.1.0/24'],
        ['missing', missing, null],
      ].sort(),
    );
    // The node podcidr-allocator patched keeps the range, whatever the names' order.
    expect(report.problems.find((p) => p.kind === 'duplicate')?.holders).toEqual([{ node: good, cidr: '10.233.64.0/24' }]);
    expect(report.problemCount).toBe(6);
    expect(report.foreignManagers.map((f) => [f.node, f.manager]).sort()).toEqual(
      [dup, fine, hostBits, outside, service].map((n) => [n, 'kube-controller-manager']).sort(),
    );
    expect(report.ranges).toEqual([
      expect.objectContaining({ clusterCIDR: '10.233.64.0/18', capacity: 64, reserved: 0 }),
    ]);

    const text = await check([`--selector=${scope.selector}`]);
    expect(text.code).toBe(1);
    expect(text.stdout.split('\n')[0]).toMatch(/^NODE\s+PODCIDRS\s+STATUS$/);
    expect(text.stdout).toMatch(new RegExp(`^${missing}\\s+<none>\\s+no podCIDR$`, 'm'));
    expect(text.stdout).toMatch(new RegExp(`^${good}\\s+10\\.233\\.64\\.0/24\\s+ok$`, 'm'));
    expect(text.stdout.trimEnd().split('\n').at(-1)).toBe('Check complete; found 6 problems.');

    for (const name of [dup, outside, hostBits, service, missing]) await c.core.deleteNode({ name });
    const clean = await check([`--selector=${scope.selector}`]);
    expect(clean.stderr).toBe('');
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(/^RANGE\s+MASK\s+NODES\s+RESERVED\s+FREE\s+CAPACITY\s+USED\n10\.233\.64\.0\/18\s+\/24\s+2\s+0\s+62\s+64\s+3\.1%$/m);
    expect(clean.stdout.trimEnd().split('\n').at(-1)).toBe('Check complete; found 0 problems.');
  });

  it('exits 2 with one line when the API server rejects the label selector', async () => {
    const { code, stdout, stderr } = await check(['--selector=a in (']);
    expect(stdout).toBe('');
    expect(code).toBe(2);
    expect(stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(stderr).toMatch(/^check: --selector: rejected by the API server: list nodes: HTTP 400/);
  });
});

const resource = CLUSTER_CIDR_RESOURCE;

describeWithControlPlane('podcidr-allocator check with ClusterCIDR pools on a real API server', () => {
  let c: KubeClients;
  let custom: k8s.CustomObjectsApi;
  let installed = false;
  const pools: string[] = [];
  const scope = new TestScope('check-pools');

  beforeAll(() => {
    c = kubeClients();
    custom = c.kc.makeApiClient(k8s.CustomObjectsApi);
  });
  afterAll(async () => {
    await scope.cleanup(c);
    for (const name of pools) await custom.deleteClusterCustomObject({ ...resource, name }).catch(() => undefined);
    if (installed) await removeClusterCidrCrd(c.kc);
  });

  async function installCrd(): Promise<void> {
    await installClusterCidrCrd(c.kc);
    installed = true;
  }

  async function createNode(base: string, podCIDRs: string[]): Promise<string> {
    const body: k8s.V1Node = scope.node(base);
    body.spec = { podCIDR: podCIDRs[0], podCIDRs };
    const node = await c.core.createNode({ body, fieldManager: 'podcidr-allocator' });
    const name = node.metadata?.name;
    if (name === undefined) throw new Error('created node has no name');
    return name;
  }

  it('notes that no pools were read while the ClusterCIDR CRD is absent, and keeps exit 0', async () => {
    await createNode('flags', ['10.233.70.0/24']);
    const { code, stdout, stderr } = await check([`--selector=${scope.selector}`]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('\nClusterCIDR pools not read: the ClusterCIDR CRD is not installed.\n');
  });

  it('counts a podCIDR inside a ClusterCIDR as in range and reports the nodes outside every range', async () => {
    await installCrd();
    pools.push('check-gpu');
    const body = {
      apiVersion: 'networking.x-k8s.io/v1',
      kind: 'ClusterCIDR',
      metadata: { name: 'check-gpu' },
      spec: { perNodeHostBits: 8, ipv4: '10.234.0.0/16' },
    };
    await custom.createClusterCustomObject({ ...resource, body });
    const inPool = await createNode('pool', ['10.234.1.0/24']);
    const nowhere = await createNode('nowhere', ['10.99.5.0/24']);

    const json = await check(['--selector', scope.selector, '-o', 'json']);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as CheckJson;
    expect(report.problems.map((p) => [p.kind, p.node, p.cidr])).toEqual([['out-of-range', nowhere, '10.99.5.0/24']]);
    expect(report.pools?.unavailable).toBeNull();
    expect(report.pools?.outside).toEqual([{ node: nowhere, podCIDRs: ['10.99.5.0/24'] }]);
    expect(report.pools?.ranges.map((r) => [r.pool, r.clusterCIDR, r.nodes, r.capacity])).toEqual([
      ['--cluster-cidr', '10.233.64.0/18', 1, 64],
      ['check-gpu', '10.234.0.0/16', 1, 256],
    ]);
    expect(report.nodes.find((n) => n.name === inPool)?.status).toBe('ok');

    const text = await check([`--selector=${scope.selector}`]);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^check-gpu\s+10\.234\.0\.0\/16\s+\/24\s+1\s+255\s+256$/m);
    expect(text.stdout).toContain(`Nodes with a podCIDR in no pool and no --cluster-cidr range (1):\n  ${nowhere}: 10.99.5.0/24`);
  });
});
