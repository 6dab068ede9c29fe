import { describe, expect, it } from 'vitest';
import { planCommand } from '../../../../src/cli/commands/plan.js';
import type { PoolsPlanJson } from '../../../../src/cli/commands/report.js';

/** `plan` run on a command line, -f reading `file` instead of the disk. */
function plan(file: string, ...args: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = planCommand(['-f', 'pools.yaml', ...args], {}, { out: (t) => void (out += t), err: (t) => void (err += t) }, {
    readFile: () => file,
  });
  return { code, out, err };
}

function planJsonOf(file: string, ...args: string[]): PoolsPlanJson & { maxNodes: number | null; ranges: unknown[] } {
  const { code, out, err } = plan(file, '-o', 'json', ...args);
  expect(err).toBe('');
  expect(code).toBe(0);
  return JSON.parse(out) as PoolsPlanJson & { maxNodes: number | null; ranges: unknown[] };
}

/** One ClusterCIDR document; `spec` is spliced in as YAML flow mapping text. */
function clusterCIDR(name: string, spec: string): string {
  return `apiVersion: networking.x-k8s.io/v1\nkind: ClusterCIDR\nmetadata: {name: ${name}}\nspec: {${spec}}\n`;
}

const gpu = clusterCIDR(
  'gpu',
  'perNodeHostBits: 8, ipv4: 10.1.0.0/16, ipv6: "fd00:10::/112", ' +
    'nodeSelector: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In, values: [gpu]}]}]}',
);
const small = clusterCIDR('small', 'perNodeHostBits: 6, ipv4: 10.1.0.0/20');
const apart = clusterCIDR('apart', 'perNodeHostBits: 4, ipv4: 192.168.0.0/24');

describe('plan -f', () => {
  it.each<[string, number, string, number, number, string]>([
    ['IPv4 /16 with 8 host bits', 8, '10.1.0.0/16', 24, 256, '254'],
    ['IPv4 /20 with 6 host bits', 6, '10.2.0.0/20', 26, 64, '62'],
    ['IPv4 /24 with the least host bits, 4', 4, '10.3.0.0/24', 28, 16, '14'],
    ['IPv6 /112 with 8 host bits', 8, 'fd00::/112', 120, 256, '255'],
    ['IPv6 /96 with 16 host bits', 16, 'fd00:1:2:3::/96', 112, 65_536, '65535'],
  ])('counts a pool of %s', (_case, hostBits, range, mask, subnets, pods) => {
    const field = range.includes(':') ? 'ipv6' : 'ipv4';
    const json = planJsonOf(clusterCIDR('p', `perNodeHostBits: ${hostBits}, ${field}: "${range}"`));
    expect(json.pools).toEqual([
      {
        name: 'p',
        selector: null,
        ranges: [
          {
            family: field === 'ipv4' ? 'IPv4' : 'IPv6',
            clusterCIDR: range,
            nodeMask: mask,
            nodeSubnets: subnets,
            reservedSubnets: 0,
            podAddressesPerNode: pods,
          },
        ],
        sharesWith: [],
      },
    ]);
    expect(json.sharedRanges).toEqual([]);
    expect(json.ranges).toEqual([]);
    expect(json.maxNodes).toBeNull();
  });

  it('reads several documents, a List and a ClusterCIDRList, and skips empty documents', () => {
    const file = [
      gpu,
      `apiVersion: v1\nkind: List\nitems:\n${indent(small)}`,
      `apiVersion: networking.x-k8s.io/v1\nkind: ClusterCIDRList\nitems:\n${indent(apart)}`,
      '',
    ].join('---\n');
    expect(planJsonOf(file).pools.map((p) => p.name)).toEqual(['gpu', 'small', 'apart']);
  });

  it('says which pools share addresses, and what a shared range holds at each node size', () => {
    const json = planJsonOf([gpu, small, apart].join('---\n'), '--cluster-cidr=10.0.0.0/8', '--node-cidr-mask-size=24');
    const shares = Object.fromEntries(json.pools.map((p) => [p.name, p.sharesWith.map((w) => `${w.pool} ${w.cidr}`)]));
    expect(shares).toEqual({
      gpu: ['small 10.1.0.0/20', '--cluster-cidr 10.1.0.0/16'],
      small: ['gpu 10.1.0.0/20', '--cluster-cidr 10.1.0.0/20'],
      apart: [],
      '--cluster-cidr': ['gpu 10.1.0.0/16', 'small 10.1.0.0/20'],
    });
    expect(json.sharedRanges).toEqual([
      {
        family: 'IPv4',
        clusterCIDR: '10.0.0.0/8',
        pools: ['gpu', 'small', '--cluster-cidr'],
        sizes: [
          { nodeMask: 24, nodes: '65536' },
          { nodeMask: 26, nodes: '262144' },
        ],
      },
    ]);
    // The flags' own plan is kept beside the pools.
    expect(json.maxNodes).toBe(65_536);
  });

  it('plans the flags as the last pool, blocked by the service range as the controller blocks it', () => {
    const json = planJsonOf(small, '--cluster-cidr=10.1.0.0/16', '--service-cluster-ip-range=10.1.0.0/22');
    expect(json.pools.map((p) => [p.name, p.ranges[0]?.nodeSubnets, p.ranges[0]?.reservedSubnets])).toEqual([
      ['small', 64, 16],
      ['--cluster-cidr', 256, 4],
    ]);
  });

  it('prints each pool with its node size, capacity, addresses per node and the pools it competes with', () => {
    const { code, out } = plan([gpu, small].join('---\n'));
    expect(code).toBe(0);
    expect(out).toContain('Pool gpu: pool in (gpu); node subnets IPv4 /24, IPv6 /120');
    expect(out).toMatch(/^ {2}IPv4 node subnets {8}256$/m);
    expect(out).toMatch(/^ {2}IPv6 addresses per node {2}255 \(/m);
    expect(out).toMatch(/^ {2}shares addresses with {4}small \(10\.1\.0\.0\/20\)$/m);
    expect(out).toContain('Pool small: every node; node subnets IPv4 /26');
    expect(out).toContain('  IPv4 10.1.0.0/16: gpu, small\n    /24 node subnets: at most 256 nodes\n    /26 node subnets: at most 1,024 nodes');
    expect(out).not.toContain('Flags (--cluster-cidr');
  });

  it.each<[string, string, string]>([
    ['no perNodeHostBits', clusterCIDR('a', 'ipv4: 10.0.0.0/16'), 'pools.yaml: ClusterCIDR "a": spec.perNodeHostBits: must be an integer of at least 4, got undefined'],
    ['perNodeHostBits below 4', clusterCIDR('b', 'perNodeHostBits: 3, ipv4: 10.0.0.0/16'), 'pools.yaml: ClusterCIDR "b": spec.perNodeHostBits: must be an integer of at least 4, got 3'],
    ['an IPv4 range that is no CIDR', clusterCIDR('c', 'perNodeHostBits: 8, ipv4: 10.0.0.0/33'), 'pools.yaml: ClusterCIDR "c": spec.ipv4: "10.0.0.0/33" is not an IPv4 CIDR with its host bits clear'],
    ['an IPv6 range in the ipv4 field', clusterCIDR('d', 'perNodeHostBits: 8, ipv4: "fd00::/112"'), 'pools.yaml: ClusterCIDR "d": spec.ipv4: "fd00::/112" is not an IPv4 CIDR with its host bits clear'],
    ['no family', clusterCIDR('e', 'perNodeHostBits: 8'), 'pools.yaml: ClusterCIDR "e": spec: one of ipv4 or ipv6 is required'],
    ['host bits exceeding the range', clusterCIDR('f', 'perNodeHostBits: 10, ipv4: 10.0.0.0/24'), 'pools.yaml: ClusterCIDR "f": spec.ipv4: 10.0.0.0/24 with perNodeHostBits 10: '],
    ['more node subnets than one range supports', clusterCIDR('i', 'perNodeHostBits: 16, ipv6: "fd00::/64"'), 'pools.yaml: ClusterCIDR "i": spec.ipv6: fd00::/64 with perNodeHostBits 16: the node CIDR size is too big'],
    ['no name', 'apiVersion: networking.x-k8s.io/v1\nkind: ClusterCIDR\nspec: {perNodeHostBits: 8, ipv4: 10.0.0.0/16}\n', 'pools.yaml: object 1: metadata.name: required'],
    ['another kind', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: g}\n', 'pools.yaml: object "g": kind: must be ClusterCIDR, got "ConfigMap"'],
    ['another apiVersion', 'apiVersion: networking.k8s.io/v1alpha1\nkind: ClusterCIDR\nmetadata: {name: h}\nspec: {perNodeHostBits: 8, ipv4: 10.0.0.0/16}\n', 'pools.yaml: ClusterCIDR "h": apiVersion: must be networking.x-k8s.io/v1, got "networking.k8s.io/v1alpha1"'],
    ['a name given twice', [small, small].join('---\n'), 'pools.yaml: ClusterCIDR "small": metadata.name: appears twice'],
    ['text that is not YAML', 'a: [', 'pools.yaml: not YAML: '],
    ['no objects at all', '---\n', 'pools.yaml: no ClusterCIDR objects'],
  ])('refuses %s with the object and the field, exit 2 and no stack trace', (_case, file, line) => {
    const { code, out, err } = plan(file);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err.split('\n').filter(Boolean).some((l) => l.startsWith(line))).toBe(true);
    expect(err).not.toMatch(/\n\s+at /);
  });

  it('reports every bad object at once, and none of the good ones', () => {
    const file = [clusterCIDR('x', 'perNodeHostBits: 2'), small, clusterCIDR('y', 'perNodeHostBits: 8, ipv6: 10.0.0.0/8')].join('---\n');
    const { code, err } = plan(file);
    expect(code).toBe(2);
    expect(err.split('\n').filter(Boolean)).toEqual([
      'pools.yaml: ClusterCIDR "x": spec.perNodeHostBits: must be an integer of at least 4, got 2',
      'pools.yaml: ClusterCIDR "x": spec: one of ipv4 or ipv6 is required',
      'pools.yaml: ClusterCIDR "y": spec.ipv6: "10.0.0.0/8" is not an IPv6 CIDR with its host bits clear',
    ]);
  });

  it('names stdin for -f - and says when the file cannot be read', () => {
    let err = '';
    const io = { out: () => undefined, err: (t: string) => void (err += t) };
    const missing = planCommand(['--filename=/nowhere/pools.yaml'], {}, io, {
      readFile: () => {
        throw new Error('ENOENT: no such file or directory');
      },
    });
    expect(missing).toBe(2);
    expect(err).toBe('--filename: cannot read /nowhere/pools.yaml: ENOENT: no such file or directory\n');
    err = '';
    expect(planCommand(['-f', '-'], {}, io, { readFile: () => 'kind: Secret\nmetadata: {name: s}\n' })).toBe(2);
    expect(err).toBe('stdin: object "s": kind: must be ClusterCIDR, got "Secret"\n');
  });

  it('still wants --cluster-cidr when no file is given', () => {
    let err = '';
    const code = planCommand([], {}, { out: () => undefined, err: (t) => void (err += t) });
    expect(code).toBe(2);
    expect(err).toContain('--cluster-cidr: required');
  });
});

function indent(doc: string): string {
  return doc
    .trimEnd()
    .split('\n')
    .map((line, i) => (i === 0 ? `- ${line}` : `  ${line}`))
    .join('\n')
    .concat('\n');
}
