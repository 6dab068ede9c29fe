import { describe, expect, it } from 'vitest';
import type { ClusterCIDRObject, NodeInfo } from '../../../../src/controller/ports.js';
import { CHECK_EXIT, checkCommand, type PoolListing } from '../../../../src/cli/commands/check.js';
import type { CheckJson } from '../../../../src/cli/commands/report.js';

function node(name: string, podCIDRs: string[], labels: Record<string, string> = {}): NodeInfo {
  return { name, uid: `${name}-uid`, resourceVersion: '1', podCIDRs, labels };
}

function clusterCIDR(name: string, spec: unknown): ClusterCIDRObject {
  return { name, uid: `${name}-uid`, resourceVersion: '1', generation: 1, finalizers: [], spec };
}

const gpu = clusterCIDR('gpu', {
  perNodeHostBits: 6,
  ipv4: '10.1.0.0/24',
  nodeSelector: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool', operator: 'In', values: ['gpu'] }] }] },
});
const wide = clusterCIDR('wide', { perNodeHostBits: 8, ipv4: '10.1.0.0/16' });

/** check against fixed nodes and a fixed ClusterCIDR listing (undefined: pools are not read). */
async function check(nodes: NodeInfo[], listing: PoolListing | undefined, ...args: string[]) {
  return checkWith(['--cluster-cidr=10.0.0.0/20', ...args], nodes, listing);
}

async function checkWith(args: string[], nodes: NodeInfo[], listing: PoolListing | undefined) {
  const io = { stdout: '', stderr: '', out: (t: string) => void (io.stdout += t), err: (t: string) => void (io.stderr += t) };
  const code = await checkCommand(args, {}, io, {
    nodeSource: () => ({ list: () => Promise.resolve({ nodes, resourceVersion: '1' }) }),
    ...(listing !== undefined && { clusterCIDRs: () => Promise.resolve(listing) }),
  });
  return { code, ...io };
}

const nodes = [
  node('a', ['10.0.0.0/24']),
  node('b', ['10.1.0.0/26'], { pool: 'gpu' }),
  node('c', ['10.1.5.0/24']),
  node('d', ['10.9.0.0/24']),
];

describe('check with ClusterCIDR pools', () => {
  it('checks a cluster served by ClusterCIDRs alone, without --cluster-cidr', async () => {
    const { code, stdout } = await checkWith(['-o', 'json'], nodes.slice(1), { objects: [gpu, wide] });
    const report = JSON.parse(stdout) as CheckJson;
    expect(report.problems.map((p) => [p.kind, p.node])).toEqual([['out-of-range', 'd']]);
    expect(report.pools?.ranges.map((r) => [r.pool, r.nodes])).toEqual([
      ['gpu', 1],
      ['wide', 2],
    ]);
    expect(code).toBe(CHECK_EXIT.problems);
  });

  it('asks for --cluster-cidr when the cluster has no ClusterCIDR either', async () => {
    for (const listing of [{ objects: [] }, { unavailable: 'the ClusterCIDR API is not installed' }]) {
      const { code, stderr } = await checkWith([], nodes, listing);
      expect(code).toBe(CHECK_EXIT.usage);
      expect(stderr).toMatch(/^--cluster-cidr: required: /);
    }
  });

  it('counts podCIDRs in any pool as in range and names the nodes outside every pool and flag range', async () => {
    const { code, stdout } = await check(nodes, { objects: [gpu, wide] }, '-o', 'json');
    expect(code).toBe(CHECK_EXIT.problems);
    const report = JSON.parse(stdout) as CheckJson;
    expect(report.problems.map((p) => [p.kind, p.node])).toEqual([['out-of-range', 'd']]);
    expect(report.pools?.outside).toEqual([{ node: 'd', podCIDRs: ['10.9.0.0/24'] }]);
    expect(report.pools?.ranges.map((r) => [r.pool, r.clusterCIDR, r.nodes])).toEqual([
      ['--cluster-cidr', '10.0.0.0/20', 1],
      ['gpu', '10.1.0.0/24', 1],
      ['wide', '10.1.0.0/16', 2],
    ]);
    // The flags' RANGE figures are the flags' own, as without pools.
    expect(report.ranges.map((r) => [r.clusterCIDR, r.byNodes])).toEqual([['10.0.0.0/20', 1]]);
  });

  it('prints a table per pool and the nodes in no pool', async () => {
    const { stdout } = await check(nodes, { objects: [gpu, wide] });
    expect(stdout).toMatch(/^POOL\s+RANGE\s+MASK\s+NODES\s+FREE\s+CAPACITY$/m);
    expect(stdout).toMatch(/^gpu\s+10\.1\.0\.0\/24\s+\/26\s+1\s+/m);
    expect(stdout).toMatch(/^wide\s+10\.1\.0\.0\/16\s+\/24\s+2\s+/m);
    expect(stdout).toContain('Nodes with a podCIDR in no pool and no --cluster-cidr range (1):\n  d: 10.9.0.0/24');
    expect(stdout.trimEnd().split('\n').at(-1)).toBe('Check complete; found 1 problem.');
  });

  it('reports the same podCIDRs out of range without pools, and prints no pools section', async () => {
    const withPools = await check(nodes, { objects: [] });
    const without = await check(nodes, undefined);
    expect(without.code).toBe(CHECK_EXIT.problems);
    expect(withPools.stdout).toBe(without.stdout);
    expect(without.stdout).not.toContain('POOL');
    expect(without.stdout).toContain('Problems (3):');
  });

  it('skips pools with a note when the CRD is not installed, and keeps the exit code', async () => {
    const clean = [node('a', ['10.0.0.0/24'])];
    const { code, stdout, stderr } = await check(clean, { unavailable: 'the ClusterCIDR CRD is not installed' });
    expect(stderr).toBe('');
    expect(code).toBe(CHECK_EXIT.clean);
    expect(stdout).toContain('\nClusterCIDR pools not read: the ClusterCIDR CRD is not installed.\n');
    const json = JSON.parse((await check(clean, { unavailable: 'x' }, '-o', 'json')).stdout) as CheckJson;
    expect(json.pools).toEqual({ unavailable: 'x', ranges: [], invalid: [], outside: [] });
  });

  it('leaves out a ClusterCIDR the controller refuses, and says why', async () => {
    const bad = clusterCIDR('bad', { perNodeHostBits: 2, ipv4: '10.1.0.0/16' });
    const { code, stdout } = await check(nodes, { objects: [bad, gpu] });
    expect(code).toBe(CHECK_EXIT.problems);
    expect(stdout).toContain('ClusterCIDRs left out, as the controller leaves them out (1):\n  bad: spec.perNodeHostBits:');
    // Without `wide`, node c is outside every range.
    expect(stdout).toContain('(2):\n  c: 10.1.5.0/24\n  d: 10.9.0.0/24');
  });

  it('exits 3 when ClusterCIDRs cannot be listed for another reason', async () => {
    const io = { stdout: '', stderr: '', out: (t: string) => void (io.stdout += t), err: (t: string) => void (io.stderr += t) };
    const code = await checkCommand(['--cluster-cidr=10.0.0.0/20'], {}, io, {
      nodeSource: () => ({ list: () => Promise.resolve({ nodes: [], resourceVersion: '1' }) }),
      clusterCIDRs: () => Promise.reject(new Error('HTTP 500')),
    });
    expect(code).toBe(CHECK_EXIT.unreachable);
    expect(io.stderr).toBe('check: cannot list ClusterCIDRs from the API server: HTTP 500\n');
  });
});
