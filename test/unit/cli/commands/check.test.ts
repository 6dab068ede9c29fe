import { describe, expect, it } from 'vitest';
import {
  type NodeInfo,
  type NodeListOptions,
  type NodePage,
  ResourceExpiredError,
} from '../../../../src/controller/ports.js';
import { CHECK_EXIT, checkCommand } from '../../../../src/cli/commands/check.js';
import type { ToolConfig, ToolIO } from '../../../../src/cli/commands/flags.js';
import type { CheckJson } from '../../../../src/cli/commands/report.js';
import { parseRange } from '../../../../src/allocator/range-spec.js';
import { cidrs } from '../../../support/cidrs.js';

function node(name: string, podCIDRs: string[] = []): NodeInfo {
  return { name, uid: `${name}-uid`, resourceVersion: '1', podCIDRs };
}

function capture(): ToolIO & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    out: (text: string) => void (io.stdout += text),
    err: (text: string) => void (io.stderr += text),
  };
  return io;
}

/** A NodeSource over a fixed list, paged by `limit`, that records what it was asked. */
class PagedNodes {
  readonly requests: { limit: number; continueToken?: string }[] = [];
  readonly configs: ToolConfig[] = [];
  /** Continue tokens that answer 410 once, as an expired token does. */
  readonly expireOnce = new Set<string>();

  constructor(readonly nodes: readonly NodeInfo[]) {}

  source = (config: ToolConfig) => {
    this.configs.push(config);
    return { list: (options: NodeListOptions) => this.list(options) };
  };

  async list(options: NodeListOptions): Promise<NodePage> {
    await Promise.resolve();
    const token = options.continueToken;
    this.requests.push({ limit: options.limit, ...(token !== undefined ? { continueToken: token } : {}) });
    if (token !== undefined && this.expireOnce.delete(token)) throw new ResourceExpiredError('continue token expired');
    const start = token === undefined ? 0 : Number(token);
    const end = start + options.limit;
    return {
      nodes: this.nodes.slice(start, end),
      resourceVersion: '42',
      ...(end < this.nodes.length ? { continueToken: String(end) } : {}),
    };
  }
}

const RANGE = '--cluster-cidr=10.0.0.0/20';

describe('checkCommand', () => {
  it('exits 0 and reports no problems for a clean cluster, listing every page', async () => {
    const nodes = Array.from({ length: 7 }, (_, i) => node(`n${i}`, [`10.0.${i}.0/24`]));
    const api = new PagedNodes(nodes);
    const io = capture();

    const code = await checkCommand([RANGE], {}, io, { nodeSource: api.source, pageSize: 3 });

    expect(code).toBe(CHECK_EXIT.clean);
    expect(api.requests).toEqual([{ limit: 3 }, { limit: 3, continueToken: '3' }, { limit: 3, continueToken: '6' }]);
    expect(io.stdout).toContain('n6    10.0.6.0/24  ok');
    expect(io.stdout).toMatch(/Check complete; found 0 problems\.\n$/);
    expect(io.stderr).toBe('');
  });

  it('exits 1 when problems are found', async () => {
    const api = new PagedNodes([node('a', ['10.0.0.0/24']), node('b', ['10.0.0.0/24']), node('c')]);
    const io = capture();

    const code = await checkCommand([RANGE], {}, io, { nodeSource: api.source });

    expect(code).toBe(CHECK_EXIT.problems);
    expect(io.stdout).toMatch(/Check complete; found 2 problems\.\n$/);
  });

  it('starts the list over when a continue token expires', async () => {
    const api = new PagedNodes([node('a', ['10.0.0.0/24']), node('b', ['10.0.1.0/24']), node('c', ['10.0.2.0/24'])]);
    api.expireOnce.add('2');
    const io = capture();

    const code = await checkCommand([RANGE, '-o', 'json'], {}, io, { nodeSource: api.source, pageSize: 2 });

    expect(code).toBe(CHECK_EXIT.clean);
    expect(api.requests.map((r) => r.continueToken)).toEqual([undefined, '2', undefined, '2']);
    const report = JSON.parse(io.stdout) as CheckJson;
    expect(report.nodes.map((n) => n.name)).toEqual(['a', 'b', 'c']);
  });

  it('exits 3 with one line when nodes cannot be listed', async () => {
    const io = capture();
    const failing = () => ({
      list: () => Promise.reject(new Error('list nodes: TypeError ECONNREFUSED: fetch failed')),
    });

    const code = await checkCommand([RANGE], {}, io, { nodeSource: failing });

    expect(code).toBe(CHECK_EXIT.unreachable);
    expect(io.stdout).toBe('');
    expect(io.stderr).toBe('check: cannot list nodes from the API server: list nodes: TypeError ECONNREFUSED: fetch failed\n');
  });

  it('hands the range flags, the selector and the environment to the audit', async () => {
    const api = new PagedNodes([]);
    const io = capture();

    const code = await checkCommand(
      ['--selector', 'pool=gpu', '--output=json'],
      { PODCIDR_ALLOCATOR_CLUSTER_CIDR: '10.0.0.0/20', PODCIDR_ALLOCATOR_SERVICE_CLUSTER_IP_RANGE: '10.96.0.0/12' },
      io,
      { nodeSource: api.source },
    );

    expect(code).toBe(CHECK_EXIT.clean);
    expect(api.configs[0]).toMatchObject({
      ranges: [parseRange('10.0.0.0/20', 24)],
      reserved: cidrs('10.96.0.0/12'),
      services: cidrs('10.96.0.0/12'),
      selector: 'pool=gpu',
      output: 'json',
    });
    expect(JSON.parse(io.stdout)).toMatchObject({ report: 'check', selector: 'pool=gpu', problemCount: 0, nodes: [] });
  });

  it('exits 2 on bad flags without asking the API server anything', async () => {
    const api = new PagedNodes([]);
    const io = capture();

    const code = await checkCommand(['--cluster-cidr=10.0.0.0/33', '--leader-elect=false'], {}, io, { nodeSource: api.source });

    expect(code).toBe(CHECK_EXIT.usage);
    expect(api.configs).toEqual([]);
    expect(io.stderr.split('\n').filter(Boolean)).toEqual([
      '--leader-elect: unknown flag',
      '--cluster-cidr: invalid CIDR "10.0.0.0/33": prefix length 33 is longer than the 32 bits of an IPv4 address',
    ]);
  });

  it('exits 2 when the kubeconfig cannot be read', async () => {
    const io = capture();

    const code = await checkCommand([RANGE, '--kubeconfig=/nonexistent/kubeconfig'], {}, io);

    expect(code).toBe(CHECK_EXIT.usage);
    expect(io.stderr).toBe('check: cannot read kubeconfig /nonexistent/kubeconfig (from --kubeconfig): no such file\n');
  });
});
