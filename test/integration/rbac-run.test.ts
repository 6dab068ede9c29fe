// The controller itself, run as a child process with only the ServiceAccount token that manifests/base grants.
// If the RBAC lacked anything the controller needs (lease, nodes, events, its two ConfigMaps), a test here fails.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { repoRoot } from '../unit/deploy/manifests.js';
import { eventually } from '../support/eventually.js';
import { TestScope, describeWithControlPlane, kubeClients, type KubeClients } from './harness.js';
import {
  applyShippedRbac,
  deleteShippedRbac,
  serviceAccountKubeconfig,
  type ServiceAccountKubeconfig,
} from './service-account.js';

const run = promisify(execFile);
const node24 = join(repoRoot, 'node_modules/.bin/node');
const main = join(repoRoot, 'src/cli/main.ts');
/** The production lease: the only one the Role lets the ServiceAccount update. */
const LEASE = { namespace: 'kube-system', name: 'podcidr-allocator' };
/** Two /24 node subnets: the third node finds the range exhausted. */
const CLUSTER_CIDR = '10.251.0.0/23';
const OUT_OF_RANGE = '10.99.7.0/24';
/** Appended at run time through the range ConfigMap. */
const APPENDED = '10.251.2.0/24';
const CONFIG_MAP = 'podcidr-allocator-config';
const STATE_MAP = 'podcidr-allocator-state';

/** The controller as a child process; every line it writes is kept for assertions. */
class ControllerProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  readonly #child: ChildProcess;

  constructor(args: string[], env: Record<string, string>) {
    this.#child = spawn(node24, ['--import', 'tsx', main, ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [this.#child.stdout, this.#child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => this.lines.push(line));
    }
    this.exited = new Promise((resolve) => this.#child.once('exit', (code) => resolve(code)));
  }

  /** Parsed JSON log records (pino); other lines (e.g. a usage error) are skipped. */
  records(): Record<string, unknown>[] {
    return this.lines.flatMap((line) => {
      try {
        const parsed: unknown = JSON.parse(line);
        return typeof parsed === 'object' && parsed !== null ? [parsed as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
  }

  logged(msg: string): Record<string, unknown> | undefined {
    return this.records().find((r) => r.msg === msg);
  }

  signal(name: NodeJS.Signals): void {
    this.#child.kill(name);
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }
}

describeWithControlPlane('the controller running as the manifests ServiceAccount', () => {
  const scope = new TestScope('rbac-run');
  const podName = `${scope.id}-pod`;
  let c: KubeClients;
  let rbacYaml: string;
  let sa: ServiceAccountKubeconfig;
  let controller: ControllerProcess | undefined;
  /** The replica that takes over after the first one stops. */
  let successor: ControllerProcess | undefined;
  let address: string;

  async function readLease(): Promise<k8s.V1Lease | undefined> {
    try {
      return await c.coordination.readNamespacedLease(LEASE);
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  async function podCIDRsOf(name: string): Promise<string[] | undefined> {
    const node = await c.core.readNode({ name });
    const cidrs = node.spec?.podCIDRs ?? [];
    return cidrs.length > 0 ? cidrs : undefined;
  }

  /** Events the controller wrote about this scope's nodes (they land in default, like upstream's). */
  async function eventsAbout(node: string): Promise<k8s.EventsV1Event[]> {
    const list = await c.events.listNamespacedEvent({ namespace: 'default' });
    return list.items.filter((e) => e.regarding?.name === node && e.reportingController === 'podcidr-allocator');
  }

  /** Events the controller wrote about its range ConfigMap (in the lease namespace). */
  async function configMapEvents(): Promise<k8s.EventsV1Event[]> {
    const list = await c.events.listNamespacedEvent({ namespace: LEASE.namespace });
    return list.items.filter((e) => e.regarding?.kind === 'ConfigMap' && e.reportingInstance?.startsWith(`${podName}_`) === true);
  }

  async function readConfigMap(name: string): Promise<k8s.V1ConfigMap | undefined> {
    try {
      return await c.core.readNamespacedConfigMap({ namespace: LEASE.namespace, name });
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  async function deleteControllerObjects(): Promise<void> {
    await c.coordination.deleteNamespacedLease(LEASE).catch(() => undefined);
    for (const name of [CONFIG_MAP, STATE_MAP]) {
      await c.core.deleteNamespacedConfigMap({ namespace: LEASE.namespace, name }).catch(() => undefined);
    }
  }

  function startController(): ControllerProcess {
    return new ControllerProcess(
      [
        'run',
        '--kubeconfig', sa.path,
        `--cluster-cidr=${CLUSTER_CIDR}`,
        '--node-cidr-mask-size=24',
        '--leader-elect=true',
        `--leader-elect-resource-namespace=${LEASE.namespace}`,
        `--leader-elect-resource-name=${LEASE.name}`,
        '--metrics-bind-address=127.0.0.1:0',
        '--log-level=debug',
      ],
      // POD_NAME is what the Deployment sets; the identity is it plus a random suffix.
      { POD_NAME: podName },
    );
  }

  async function serving(process: ControllerProcess): Promise<string> {
    const record = await eventually(async () => {
      if (!process.running) throw new Error(`controller exited:\n${process.lines.join('\n')}`);
      return process.logged('serving health and metrics');
    }, { timeoutMs: 60_000 });
    return String(record.address);
  }

  async function get(path: string): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://${address}${path}`);
    return { status: res.status, body: await res.text() };
  }

  beforeAll(async () => {
    c = kubeClients();
    // The other allocations in this file assume no foreign node is waiting for a podCIDR: it would
    // compete for the two subnets of CLUSTER_CIDR.
    const waiting = (await c.core.listNode()).items.filter((n) => (n.spec?.podCIDRs ?? []).length === 0);
    expect(waiting.map((n) => n.metadata?.name), 'nodes left without podCIDR by another test file').toEqual([]);

    rbacYaml = await applyShippedRbac();
    sa = await serviceAccountKubeconfig(c, { namespace: 'kube-system', name: 'podcidr-allocator' });
    // A lease left by an earlier run would make this controller wait out its duration first, and a
    // stored quarantine or appended range would change what it hands out.
    await deleteControllerObjects();
    controller = startController();
    address = await serving(controller);
  });

  afterAll(async () => {
    for (const process of [controller, successor]) {
      if (process?.running) {
        process.signal('SIGKILL');
        await process.exited;
      }
    }
    await scope.cleanup(c, ['default']);
    for (const namespace of ['default', LEASE.namespace]) {
      for (const e of (await c.events.listNamespacedEvent({ namespace })).items) {
        const ours = e.reportingInstance?.startsWith(`${podName}_`) === true || e.regarding?.name?.startsWith(scope.id) === true;
        if (ours && e.metadata?.name !== undefined) await c.events.deleteNamespacedEvent({ namespace, name: e.metadata.name });
      }
    }
    await deleteControllerObjects();
    await sa?.remove();
    if (rbacYaml !== undefined) await deleteShippedRbac(rbacYaml);
  });

  it('authenticates only as the ServiceAccount, not as an admin', async () => {
    const core = sa.kc.makeApiClient(k8s.CoreV1Api);
    await expect(core.listNamespacedSecret({ namespace: 'kube-system' })).rejects.toMatchObject({ code: 403 });
  });

  it('becomes leader: the production lease is held by its identity', async () => {
    const lease = await eventually(async () => {
      const l = await readLease();
      return l?.spec?.holderIdentity?.startsWith(`${podName}_`) === true ? l : undefined;
    });
    expect(lease.spec?.leaseDurationSeconds).toBe(15);
    await eventually(async () => controller?.logged('started leading'));
    await eventually(async () => ((await get('/metrics')).body.match(/^podcidr_allocator_leader 1$/m) ? true : undefined));
  });

  it('reports ready and healthy once its node cache has synced', async () => {
    await eventually(async () => ((await get('/readyz')).status === 200 ? true : undefined));
    expect((await get('/healthz')).status).toBe(200);
  });

  it('gives new nodes distinct podCIDRs from the cluster CIDR', async () => {
    const first = await c.core.createNode({ body: scope.node('worker') });
    const second = await c.core.createNode({ body: scope.node('worker') });
    const a = await eventually(() => podCIDRsOf(first.metadata?.name ?? ''));
    const b = await eventually(() => podCIDRsOf(second.metadata?.name ?? ''));
    expect([...a, ...b].sort()).toEqual(['10.251.0.0/24', '10.251.1.0/24']);
    const node = await c.core.readNode({ name: first.metadata?.name ?? '' });
    expect(node.metadata?.managedFields?.some((f) => f.manager === 'podcidr-allocator')).toBe(true);
  });

  it('records a CIDRNotAvailable event when the range is exhausted', async () => {
    const third = await c.core.createNode({ body: scope.node('worker') });
    const name = third.metadata?.name ?? '';
    const event = await eventually(async () => (await eventsAbout(name)).find((e) => e.reason === 'CIDRNotAvailable'));
    expect(event.type).toBe('Warning');
    expect(event.reportingInstance).toMatch(new RegExp(`^${podName}_`));
    expect(event.note).toContain(`Node ${name} status is now: CIDRNotAvailable`);
    expect(await podCIDRsOf(name)).toBeUndefined();
  });

  it('records a PodCIDROutOfRange event for a node created with a foreign podCIDR, and leaves it alone', async () => {
    const body = scope.node('foreign');
    body.spec = { podCIDR: OUT_OF_RANGE, podCIDRs: [OUT_OF_RANGE] };
    const node = await c.core.createNode({ body });
    const name = node.metadata?.name ?? '';
    const event = await eventually(async () => (await eventsAbout(name)).find((e) => e.reason === 'PodCIDROutOfRange'));
    expect(event.note).toContain(OUT_OF_RANGE);
    expect(await podCIDRsOf(name)).toEqual([OUT_OF_RANGE]);
  });

  it('lets the check command audit the nodes with the same kubeconfig, finding the out-of-range podCIDR', async () => {
    const result = await run(
      node24,
      ['--import', 'tsx', main, 'check', '--kubeconfig', sa.path, `--cluster-cidr=${CLUSTER_CIDR}`,
        '--node-cidr-mask-size=24', '--selector', scope.selector, '--output', 'json'],
      { cwd: repoRoot },
    ).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (err: unknown) => ({ code: (err as { code?: number }).code, stdout: String((err as { stdout?: string }).stdout) }),
    );
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as { nodes: unknown[]; problems: { kind: string; cidr: string | null }[] };
    expect(report.nodes).toHaveLength(4);
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'out-of-range', cidr: OUT_OF_RANGE }));
  });

  it('serves a range appended to its ConfigMap at run time, watched by name', async () => {
    const waiting = (await c.core.listNode({ labelSelector: scope.selector })).items.find((n) => (n.spec?.podCIDRs ?? []).length === 0);
    expect(waiting).toBeDefined();
    await c.core.createNamespacedConfigMap({
      namespace: LEASE.namespace,
      body: { metadata: { name: CONFIG_MAP, labels: { ...scope.labels } }, data: { clusterCIDRs: `${CLUSTER_CIDR},${APPENDED}` } },
    });
    expect(await eventually(() => podCIDRsOf(waiting?.metadata?.name ?? ''))).toEqual([APPENDED]);
    const event = await eventually(async () => (await configMapEvents()).find((e) => e.reason === 'PodCIDRRangesAppended'));
    expect(event.note).toContain(APPENDED);
  });

  it('stores the release quarantine in its state ConfigMap, so a freed subnet is not reissued at once', async () => {
    const nodes = (await c.core.listNode({ labelSelector: scope.selector })).items;
    const holder = nodes.find((n) => n.spec?.podCIDRs?.[0] === '10.251.0.0/24');
    expect(holder).toBeDefined();
    await c.core.deleteNode({ name: holder?.metadata?.name ?? '' });
    const state = await eventually(async () => {
      const cm = await readConfigMap(STATE_MAP);
      return cm?.data?.['quarantine.json']?.includes('10.251.0.0/24') === true ? cm : undefined;
    });
    expect(state.metadata?.namespace).toBe(LEASE.namespace);

    const late = await c.core.createNode({ body: scope.node('late') });
    const name = late.metadata?.name ?? '';
    const event = await eventually(async () => (await eventsAbout(name)).find((e) => e.reason === 'CIDRNotAvailable'));
    expect(event.note).toMatch(/released CIDR\(s\) still in quarantine/);
  });

  it('never meets a forbidden answer from the API server', () => {
    const forbidden = controller?.lines.filter((line) => /forbidden/i.test(line)) ?? [];
    expect(forbidden).toEqual([]);
    expect(controller?.logged('could not record event')).toBeUndefined();
  });

  it('stops on SIGTERM with exit code 0 and releases the lease for a standby', async () => {
    controller?.signal('SIGTERM');
    expect(await controller?.exited).toBe(0);
    const lease = await readLease();
    expect(lease?.spec?.holderIdentity ?? '').toBe('');
    expect(controller?.logged('released leader lease')).toBeDefined();
    expect(controller?.lines.filter((line) => /forbidden/i.test(line))).toEqual([]);
  });

  it('hands over to a new replica that loads the stored quarantine and keeps the appended range', async () => {
    const next = startController();
    successor = next;
    address = await serving(next);
    const loaded = await eventually(async () => next.logged('loaded the stored release quarantine'));
    expect(loaded.entries).toBeGreaterThanOrEqual(1);
    // The appended range came from the ConfigMap: its node is occupied, not reported out of range.
    const rebuilt = await eventually(async () => next.logged('rebuilt podCIDR allocations from nodes'));
    expect(rebuilt.conflicts).toMatchObject({ 'out-of-range': 1 });
    // The released subnet is still quarantined for this replica too, so the late node keeps waiting.
    const exhausted = await eventually(async () => next.logged('cluster CIDR exhausted; nodes wait for a release'));
    expect(String(exhausted.err)).toContain('still in quarantine');
    await eventually(async () => ((await readLease())?.spec?.holderIdentity?.startsWith(`${podName}_`) === true ? true : undefined));
    await eventually(async () => ((await get('/metrics')).body.match(/^podcidr_allocator_leader 1$/m) ? true : undefined));
    expect(next.lines.filter((line) => /forbidden/i.test(line))).toEqual([]);
    next.signal('SIGTERM');
    expect(await next.exited).toBe(0);
  });
});
