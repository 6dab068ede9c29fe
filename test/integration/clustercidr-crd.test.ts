// The ClusterCIDR CRD of components/clustercidr on a real kube-apiserver, installed as kustomize renders
// it: node-ipam-controller's documented objects go in unchanged, every rule refuses what it should with
// its own message, and status is written through the status subresource only.

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import {
  bindingProblems,
  clusterCidrCrdProblems,
  clusterCidrRoleProblems,
  findObject,
  loadObjects,
  repoRoot,
} from '../unit/deploy/manifests.js';
import { TestScope, controlPlane, describeWithControlPlane, expectApiError, kubeClients, type KubeClients } from './harness.js';

const run = promisify(execFile);
const overlay = join(repoRoot, 'test/fixtures/kustomize/clustercidr');
const fixtures = join(repoRoot, 'test/integration/fixtures/clustercidr');
const crdName = 'clustercidrs.networking.x-k8s.io';
const roleName = 'podcidr-allocator-clustercidrs';
const resource = { group: 'networking.x-k8s.io', version: 'v1', plural: 'clustercidrs' } as const;
const serviceAccount = 'system:serviceaccount:kube-system:podcidr-allocator';
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

interface FamilyStatus {
  capacity: number;
  allocated: number;
  free: number;
}

interface ClusterCidr {
  apiVersion: string;
  kind: string;
  metadata: k8s.V1ObjectMeta;
  spec?: Record<string, unknown>;
  status?: { observedGeneration?: number; ipv4?: FamilyStatus; ipv6?: FamilyStatus; conditions?: k8s.V1Condition[] };
}

/** The control plane's own kubectl; rejects on a non-zero exit. */
async function kubectl(args: string[]): Promise<string> {
  const cp = controlPlane();
  if (!cp.available) throw new Error(`no control plane: ${cp.reason}`);
  const { stdout } = await run(join(cp.binDir, 'kubectl'), ['--kubeconfig', cp.kubeconfigPath, ...args], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

describeWithControlPlane('the ClusterCIDR CRD on a real API server', () => {
  let c: KubeClients;
  let apiext: k8s.ApiextensionsV1Api;
  let rbac: k8s.RbacAuthorizationV1Api;
  let custom: k8s.CustomObjectsApi;
  let rendered: k8s.KubernetesObject[];
  let installed = false;
  let established: k8s.V1CustomResourceDefinition;
  const scope = new TestScope('clustercidr-crd');

  /** A pool spec that every rule accepts: dual-stack, with a selector. */
  const dualPool = (): Record<string, unknown> => ({
    perNodeHostBits: 8,
    ipv4: '10.250.0.0/16',
    ipv6: 'fd00:250::/112',
    nodeSelector: {
      nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool.example.com/group', operator: 'In', values: ['a'] }] }],
    },
  });
  const ipv4Pool = (): Record<string, unknown> => ({ perNodeHostBits: 8, ipv4: '10.251.0.0/16' });

  function body(spec: Record<string, unknown> | undefined, extra: Partial<ClusterCidr> = {}): ClusterCidr {
    return {
      apiVersion: 'networking.x-k8s.io/v1',
      kind: 'ClusterCIDR',
      metadata: { name: scope.name('pool'), labels: { ...scope.labels } },
      ...(spec === undefined ? {} : { spec }),
      ...extra,
    };
  }

  async function create(object: ClusterCidr): Promise<ClusterCidr> {
    const created: unknown = await custom.createClusterCustomObject({ ...resource, body: object });
    return created as ClusterCidr;
  }

  async function read(name: string): Promise<ClusterCidr> {
    const got: unknown = await custom.getClusterCustomObject({ ...resource, name });
    return got as ClusterCidr;
  }

  async function replace(object: ClusterCidr): Promise<ClusterCidr> {
    const name = object.metadata.name ?? '';
    const replaced: unknown = await custom.replaceClusterCustomObject({ ...resource, name, body: object });
    return replaced as ClusterCidr;
  }

  async function replaceStatus(object: ClusterCidr): Promise<ClusterCidr> {
    const name = object.metadata.name ?? '';
    const replaced: unknown = await custom.replaceClusterCustomObjectStatus({ ...resource, name, body: object });
    return replaced as ClusterCidr;
  }

  async function remove(name: string): Promise<void> {
    await custom.deleteClusterCustomObject({ ...resource, name });
  }

  async function notFound(fn: () => Promise<unknown>): Promise<boolean> {
    try {
      await fn();
      return false;
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 404) return true;
      throw err;
    }
  }

  beforeAll(async () => {
    c = kubeClients();
    apiext = c.kc.makeApiClient(k8s.ApiextensionsV1Api);
    rbac = c.kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    custom = c.kc.makeApiClient(k8s.CustomObjectsApi);
    rendered = loadObjects(await kubectl(['kustomize', overlay]));
    // Installed here rather than in a test, so that any one test can run alone.
    await apiext.createCustomResourceDefinition({
      body: findObject<k8s.V1CustomResourceDefinition>(rendered, 'CustomResourceDefinition', crdName),
    });
    installed = true;
    established = await eventually(
      async () => {
        const got = await apiext.readCustomResourceDefinition({ name: crdName });
        return got.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') === true ? got : undefined;
      },
      { timeoutMs: 30_000, message: `${crdName} did not become Established` },
    );
    // Established means served; the first list proves the endpoint answers.
    await eventually(async () => (await custom.listClusterCustomObject({ ...resource })) as unknown, { timeoutMs: 10_000 });
  });

  afterAll(async () => {
    if (c === undefined) return;
    await rbac.deleteClusterRoleBinding({ name: roleName }).catch(() => undefined);
    await rbac.deleteClusterRole({ name: roleName }).catch(() => undefined);
    if (!installed) return;
    // Deleting the CRD deletes every ClusterCIDR with it; wait, so the next file finds no trace.
    await apiext.deleteCustomResourceDefinition({ name: crdName });
    await eventually(async () => ((await notFound(() => apiext.readCustomResourceDefinition({ name: crdName }))) ? true : undefined), {
      timeoutMs: 60_000,
      message: `CRD ${crdName} still there 60 s after its deletion`,
    });
  });

  it('renders through an overlay with the component and keeps every static check true', () => {
    const crd = findObject<k8s.V1CustomResourceDefinition>(rendered, 'CustomResourceDefinition', crdName);
    expect([
      ...clusterCidrCrdProblems(crd),
      ...clusterCidrRoleProblems(findObject(rendered, 'ClusterRole', roleName)),
      ...bindingProblems(findObject(rendered, 'ClusterRoleBinding', roleName), 'ClusterRole', roleName),
    ]).toEqual([]);
    expect(crd.metadata?.namespace).toBeUndefined();
  });

  it('installs and becomes Established with its names accepted', () => {
    expect(established.status?.conditions?.find((x) => x.type === 'Established')?.status).toBe('True');
    expect(established.status?.conditions?.find((x) => x.type === 'NamesAccepted')?.status).toBe('True');
    expect(established.status?.acceptedNames?.kind).toBe('ClusterCIDR');
    expect(established.spec.scope).toBe('Cluster');
  });

  describeWithControlPlane("node-ipam-controller's documented objects", () => {
    const files = [
      'peer-readme.yaml',
      'peer-ipv4.yaml',
      'peer-ipv6.yaml',
      'peer-dual.yaml',
      'peer-different-node-groups.yaml',
      'peer-different-ip-pools-for-same-node-group.yaml',
    ];

    it.each(files)('accepts every object of %s unchanged', async (file) => {
      const objects = loadObjects(readFileSync(join(fixtures, file), 'utf8')) as ClusterCidr[];
      expect(objects.length).toBeGreaterThan(0);
      const names: string[] = [];
      try {
        for (const object of objects) {
          const created = await create(object);
          names.push(created.metadata.name ?? '');
          expect(created.metadata.name).toBe(object.metadata.name);
          expect(created.spec).toEqual(object.spec);
          expect(created.status).toBeUndefined();
        }
      } finally {
        // Three of the peer's files share one name; each file goes before the next comes.
        for (const name of names) await remove(name);
      }
    });

    it('gives the six node groups six sizes out of one /16, as the peer shows', () => {
      const objects = loadObjects(readFileSync(join(fixtures, 'peer-different-node-groups.yaml'), 'utf8')) as ClusterCidr[];
      expect(objects.map((o) => o.spec?.perNodeHostBits)).toEqual([7, 6, 7, 8, 9, 10]);
      expect(new Set(objects.map((o) => o.spec?.ipv4))).toEqual(new Set(['10.244.0.0/16']));
    });
  });

  describeWithControlPlane('what the schema and its rules refuse', () => {
    const refused: [what: string, spec: Record<string, unknown> | undefined, message: string][] = [
      ['no spec at all', undefined, 'spec: Required value'],
      ['perNodeHostBits below 4', { perNodeHostBits: 3, ipv4: '10.244.0.0/16' }, 'spec.perNodeHostBits in body should be greater than or equal to 4'],
      ['no perNodeHostBits', { ipv4: '10.244.0.0/16' }, 'spec.perNodeHostBits: Required value'],
      ['neither ipv4 nor ipv6', { perNodeHostBits: 8 }, 'at least one of ipv4 and ipv6 must be given'],
      ['ipv4 and ipv6 both empty', { perNodeHostBits: 8, ipv4: '', ipv6: '' }, 'at least one of ipv4 and ipv6 must be given'],
      ['an IPv6 CIDR as ipv4', { perNodeHostBits: 8, ipv4: '2001:db8::/64' }, 'spec.ipv4: Invalid value: "string": ipv4 must be an IPv4 CIDR'],
      ['an IPv4 CIDR as ipv6', { perNodeHostBits: 8, ipv6: '10.244.0.0/16' }, 'spec.ipv6: Invalid value: "string": ipv6 must be an IPv6 CIDR'],
      ['an address without a prefix length as ipv4', { perNodeHostBits: 8, ipv4: '10.244.0.0' }, 'ipv4 must be an IPv4 CIDR'],
      [
        'node subnets larger than the IPv4 range',
        { perNodeHostBits: 9, ipv4: '10.244.0.0/24' },
        'spec.perNodeHostBits: Invalid value: "object": perNodeHostBits must not exceed the host bits of ipv4 (32 minus its prefix length)',
      ],
      [
        'node subnets larger than the IPv6 range',
        { perNodeHostBits: 20, ipv4: '10.244.0.0/8', ipv6: 'fd00::/112' },
        'perNodeHostBits must not exceed the host bits of ipv6 (128 minus its prefix length)',
      ],
      [
        'a selector operator outside In, NotIn, Exists, DoesNotExist, Gt and Lt',
        { perNodeHostBits: 8, ipv4: '10.244.0.0/16', nodeSelector: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'a', operator: 'Matches' }] }] } },
        'Unsupported value: "Matches"',
      ],
      [
        'a selector without nodeSelectorTerms',
        { perNodeHostBits: 8, ipv4: '10.244.0.0/16', nodeSelector: {} },
        'spec.nodeSelector.nodeSelectorTerms: Required value',
      ],
    ];

    it.each(refused)('refuses %s with 422 and the rule message', async (_what, spec, message) => {
      const err = await expectApiError(() => create(body(spec)));
      expect(err.code).toBe(422);
      expect(err.reason).toBe('Invalid');
      expect(err.message).toContain(message);
      // One message per broken rule: no rule may trip over a missing or malformed field.
      expect(err.message).not.toMatch(/no such key|no such overload|evaluation/);
    });

    it('accepts a range with host bits set, as the peer does, since its CEL only checks the family', async () => {
      const created = await create(body({ perNodeHostBits: 8, ipv4: '10.244.1.0/16' }));
      expect(created.spec?.ipv4).toBe('10.244.1.0/16');
    });

    it('accepts an empty ipv6 beside an ipv4, which the peer reads as no ipv6', async () => {
      const created = await create(body({ perNodeHostBits: 8, ipv4: '10.244.0.0/16', ipv6: '' }));
      expect(created.spec).toEqual({ perNodeHostBits: 8, ipv4: '10.244.0.0/16', ipv6: '' });
    });
  });

  describeWithControlPlane('edits of a pool', () => {
    const edits: [what: string, base: () => Record<string, unknown>, edit: (spec: Record<string, unknown>) => void, message: string][] = [
      ['changing perNodeHostBits', dualPool, (s) => (s.perNodeHostBits = 7), 'spec.perNodeHostBits: Invalid value: "integer": perNodeHostBits cannot be changed'],
      ['changing ipv4', dualPool, (s) => (s.ipv4 = '10.252.0.0/16'), 'spec.ipv4: Invalid value: "string": ipv4 cannot be changed'],
      ['changing ipv6', dualPool, (s) => (s.ipv6 = 'fd00:252::/112'), 'spec.ipv6: Invalid value: "string": ipv6 cannot be changed'],
      [
        'changing nodeSelector',
        dualPool,
        (s) => (s.nodeSelector = { nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool.example.com/group', operator: 'In', values: ['b'] }] }] }),
        'spec.nodeSelector: Invalid value: "object": nodeSelector cannot be changed',
      ],
      ['removing ipv4', dualPool, (s) => delete s.ipv4, 'spec.ipv4: Invalid value: "object": ipv4 cannot be added or removed'],
      ['removing ipv6', dualPool, (s) => delete s.ipv6, 'spec.ipv6: Invalid value: "object": ipv6 cannot be added or removed'],
      ['removing nodeSelector', dualPool, (s) => delete s.nodeSelector, 'nodeSelector cannot be added or removed'],
      ['adding ipv6 to an IPv4-only pool', ipv4Pool, (s) => (s.ipv6 = 'fd00:251::/112'), 'ipv6 cannot be added or removed'],
      [
        'adding a nodeSelector to a pool for every node',
        ipv4Pool,
        (s) => (s.nodeSelector = { nodeSelectorTerms: [{ matchExpressions: [{ key: 'a', operator: 'Exists' }] }] }),
        'nodeSelector cannot be added or removed',
      ],
    ];

    it.each(edits)('refuses %s and keeps the pool as it was', async (_what, base, edit, message) => {
      const created = await create(body(base()));
      const edited = structuredClone(created);
      edit(edited.spec ?? {});

      const err = await expectApiError(() => replace(edited));

      expect(err.code).toBe(422);
      expect(err.message).toContain(message);
      expect((await read(created.metadata.name ?? '')).spec).toEqual(base());
    });

    it('lets metadata change, so the controller can add and remove its finalizer', async () => {
      const created = await create(body(dualPool()));
      const name = created.metadata.name ?? '';
      const finalizer = 'networking.x-k8s.io/podcidr-allocator-test';
      const patch = (metadata: object): Promise<unknown> => custom.patchClusterCustomObject({ ...resource, name, body: { metadata } }, mergePatch);

      await patch({ finalizers: [finalizer], labels: { 'pool.example.com/tier': 'gold' } });
      const held = await read(name);
      await patch({ finalizers: null });

      expect(held.metadata.finalizers).toEqual([finalizer]);
      expect(held.metadata.labels?.['pool.example.com/tier']).toBe('gold');
      expect(held.metadata.generation).toBe(created.metadata.generation);
      expect((await read(name)).metadata.finalizers).toBeUndefined();
    });
  });

  describeWithControlPlane('status', () => {
    const status = (generation: number): NonNullable<ClusterCidr['status']> => ({
      observedGeneration: generation,
      ipv4: { capacity: 256, allocated: 3, free: 253 },
      ipv6: { capacity: 256, allocated: 3, free: 253 },
      conditions: [
        {
          type: 'NearlyFull',
          status: 'False',
          reason: 'BelowThreshold',
          message: '3 of 256 node subnets allocated',
          lastTransitionTime: new Date('2026-01-02T03:04:05Z'),
          observedGeneration: generation,
        },
        {
          type: 'Exhausted',
          status: 'False',
          reason: 'SubnetsFree',
          message: '253 node subnets free',
          lastTransitionTime: new Date('2026-01-02T03:04:05Z'),
          observedGeneration: generation,
        },
      ],
    });

    it('drops a status sent with the create', async () => {
      const created = await create(body(dualPool(), { status: status(1) }));
      expect(created.status).toBeUndefined();
    });

    it('takes status through the status subresource and ignores a spec change sent with it', async () => {
      const created = await create(body(dualPool()));
      const generation = created.metadata.generation ?? 0;
      const update = { ...structuredClone(created), status: status(generation) };
      update.spec = { ...update.spec, perNodeHostBits: 6 };

      const written = await replaceStatus(update);

      expect(written.status?.ipv4).toEqual({ capacity: 256, allocated: 3, free: 253 });
      expect(written.status?.observedGeneration).toBe(generation);
      expect(written.status?.conditions?.map((x) => `${x.type}=${x.status}`)).toEqual(['NearlyFull=False', 'Exhausted=False']);
      expect(written.spec?.perNodeHostBits).toBe(8);
      expect(written.metadata.generation).toBe(generation);
    });

    it('ignores a status sent through the main resource with an edit there', async () => {
      const created = await create(body(dualPool()));
      const generation = created.metadata.generation ?? 0;
      const withStatus = await replaceStatus({ ...created, status: status(generation) });
      const edit = structuredClone(withStatus);
      edit.metadata.labels = { ...edit.metadata.labels, 'pool.example.com/tier': 'silver' };
      edit.status = { ...status(generation), ipv4: { capacity: 256, allocated: 200, free: 56 } };

      const replaced = await replace(edit);

      expect(replaced.metadata.labels?.['pool.example.com/tier']).toBe('silver');
      expect(replaced.status).toEqual(withStatus.status);
    });

    it('refuses a condition outside True, False and Unknown, and a negative count', async () => {
      const created = await create(body(dualPool()));
      const bad = status(1);
      const [first] = bad.conditions ?? [];
      if (first === undefined) throw new Error('no condition');
      first.status = 'Maybe';
      if (bad.ipv6 !== undefined) bad.ipv6.free = -1;

      const err = await expectApiError(() => replaceStatus({ ...created, status: bad }));

      expect(err.code).toBe(422);
      expect(err.message).toContain('status.conditions[0].status: Unsupported value: "Maybe"');
      expect(err.message).toContain('status.ipv6.free: Invalid value: -1');
    });

    it('shows perNodeHostBits, both ranges, the allocated counts and the age in kubectl get -o wide', async () => {
      const created = await create(body(dualPool()));
      const name = created.metadata.name ?? '';
      await replaceStatus({ ...created, status: status(created.metadata.generation ?? 1) });

      const [header = '', row = ''] = (await kubectl(['get', 'clustercidrs', name, '-o', 'wide'])).trim().split('\n');

      expect(header.split(/\s+/)).toEqual(['NAME', 'PERNODEHOSTBITS', 'IPV4', 'IPV6', 'IPV4-ALLOCATED', 'IPV6-ALLOCATED', 'AGE']);
      expect(row.split(/\s+/).slice(0, 6)).toEqual([name, '8', '10.250.0.0/16', 'fd00:250::/112', '3', '3']);
      expect((await kubectl(['get', 'clustercidrs', name])).split('\n')[0]?.split(/\s+/)).toEqual([
        'NAME', 'PERNODEHOSTBITS', 'IPV4', 'IPV6', 'AGE',
      ]);
    });
  });

  describeWithControlPlane("the component's RBAC, applied for real", () => {
    beforeAll(async () => {
      await rbac.createClusterRole({ body: findObject(rendered, 'ClusterRole', roleName) });
      await rbac.createClusterRoleBinding({ body: findObject(rendered, 'ClusterRoleBinding', roleName) });
    });

    async function allowed(attrs: k8s.V1ResourceAttributes): Promise<boolean> {
      const authz = c.kc.makeApiClient(k8s.AuthorizationV1Api);
      const review = await authz.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: serviceAccount,
            groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
            resourceAttributes: { group: 'networking.x-k8s.io', resource: 'clustercidrs', ...attrs },
          },
        },
      });
      return review.status?.allowed === true;
    }

    const may: [string, k8s.V1ResourceAttributes][] = [
      ['get a pool', { verb: 'get', name: 'default' }],
      ['list pools', { verb: 'list' }],
      ['watch pools', { verb: 'watch' }],
      ['patch a pool (its finalizer)', { verb: 'patch', name: 'default' }],
      ['update a pool status', { verb: 'update', subresource: 'status', name: 'default' }],
      ['patch a pool status', { verb: 'patch', subresource: 'status', name: 'default' }],
      ['update a pool finalizers', { verb: 'update', subresource: 'finalizers', name: 'default' }],
    ];
    const mayNot: [string, k8s.V1ResourceAttributes][] = [
      ['create a pool', { verb: 'create' }],
      ['update a pool', { verb: 'update', name: 'default' }],
      ['delete a pool', { verb: 'delete', name: 'default' }],
      ['delete every pool', { verb: 'deletecollection' }],
    ];

    it.each(may)('lets the ServiceAccount %s', async (_what, attrs) => {
      expect(await allowed(attrs)).toBe(true);
    });

    it.each(mayNot)('does not let the ServiceAccount %s', async (_what, attrs) => {
      expect(await allowed(attrs)).toBe(false);
    });
  });
});
