// Reads the kustomize tree under manifests/ and checks the rendered objects against what the controller needs.
// Every check returns a list of problems (empty = fine), so unit tests run them on the raw base files and
// the integration test on `kubectl kustomize` output.

import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const manifestsDir = join(repoRoot, 'manifests');

/** The parts of a kustomization.yaml (or Component) these checks follow. */
export interface Kustomization {
  readonly kind?: string;
  readonly namespace?: string;
  readonly resources?: readonly string[];
  readonly components?: readonly string[];
  readonly patches?: readonly { readonly path?: string }[];
  readonly images?: readonly { readonly name: string; readonly newName?: string; readonly newTag?: string }[];
  readonly configMapGenerator?: readonly {
    readonly name: string;
    readonly files?: readonly string[];
    readonly options?: { readonly labels?: Readonly<Record<string, string>> };
  }[];
}

export function loadObjects(text: string): k8s.KubernetesObject[] {
  // loadAllYaml types its result as any[]; every document it returns is at least a KubernetesObject.
  const docs: unknown[] = k8s.loadAllYaml(text);
  return docs.filter((d): d is k8s.KubernetesObject => typeof d === 'object' && d !== null);
}

export function loadFile(path: string): k8s.KubernetesObject[] {
  return loadObjects(readFileSync(path, 'utf8'));
}

export function loadKustomization(dir: string): Kustomization {
  const [doc] = loadFile(join(dir, 'kustomization.yaml'));
  if (doc === undefined) throw new Error(`${dir}/kustomization.yaml is empty`);
  return doc as Kustomization;
}

/** The objects a kustomization lists under `resources`, as written (no patches, no namespace). */
export function loadResources(dir: string): k8s.KubernetesObject[] {
  return (loadKustomization(dir).resources ?? []).flatMap((file) => loadFile(join(dir, file)));
}

export function findObject<T extends k8s.KubernetesObject>(
  objects: readonly k8s.KubernetesObject[],
  kind: string,
  name: string,
): T {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name}`);
  return found as T;
}

export function controllerContainer(deployment: k8s.V1Deployment): k8s.V1Container {
  const container = deployment.spec?.template.spec?.containers.find((c) => c.name === 'podcidr-allocator');
  if (container === undefined) throw new Error('the Deployment has no podcidr-allocator container');
  return container;
}

/** The pod must come up on a node that has no pod network yet, and must not be evicted from it. */
export function schedulingProblems(deployment: k8s.V1Deployment): string[] {
  const problems: string[] = [];
  const pod = deployment.spec?.template.spec;
  if (pod === undefined) return ['the Deployment has no pod spec'];
  if (deployment.spec?.replicas !== 2) problems.push(`replicas is ${String(deployment.spec?.replicas)}, want 2`);
  if (pod.hostNetwork !== true) problems.push('hostNetwork is not true');
  if (pod.dnsPolicy !== 'Default') problems.push(`dnsPolicy is ${String(pod.dnsPolicy)}, want Default`);
  if (pod.priorityClassName !== 'system-cluster-critical') problems.push('priorityClassName is not system-cluster-critical');
  if (pod.serviceAccountName !== 'podcidr-allocator') problems.push('serviceAccountName is not podcidr-allocator');
  const tolerations = pod.tolerations ?? [];
  const tolerates = (key: string, effect: string): boolean =>
    tolerations.some(
      (t) =>
        (t.key === key || (t.key === undefined && t.operator === 'Exists')) &&
        t.operator === 'Exists' &&
        (t.effect === undefined || t.effect === effect) &&
        (effect !== 'NoExecute' || t.tolerationSeconds === undefined),
    );
  for (const [key, effect] of [
    ['node.kubernetes.io/not-ready', 'NoSchedule'],
    ['node.kubernetes.io/not-ready', 'NoExecute'],
    ['node.kubernetes.io/network-unavailable', 'NoSchedule'],
    ['node-role.kubernetes.io/control-plane', 'NoSchedule'],
    ['node.cloudprovider.kubernetes.io/uninitialized', 'NoSchedule'],
  ] as const) {
    if (!tolerates(key, effect)) problems.push(`does not tolerate ${key}:${effect} indefinitely`);
  }
  const spread = [
    ...(pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((w) => w.podAffinityTerm),
    ...(pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []),
  ];
  if (!spread.some((t) => t.topologyKey === 'kubernetes.io/hostname')) problems.push('no pod anti-affinity on hostname');
  const prefersControlPlane = [
    ...(pod.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((p) => p.preference),
    ...(pod.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []),
  ].some((term) => term.matchExpressions?.some((e) => e.key === 'node-role.kubernetes.io/control-plane'));
  if (!prefersControlPlane) problems.push('no node affinity for control-plane nodes');
  return problems;
}

/** Restricted-profile container hardening, as far as a host-network pod can have it. */
export function securityProblems(deployment: k8s.V1Deployment): string[] {
  const problems: string[] = [];
  const podContext = deployment.spec?.template.spec?.securityContext;
  const context = controllerContainer(deployment).securityContext;
  if (podContext?.runAsNonRoot !== true) problems.push('runAsNonRoot is not true');
  if ((context?.runAsUser ?? podContext?.runAsUser) !== 65532) problems.push('does not run as uid 65532');
  const seccomp = context?.seccompProfile?.type ?? podContext?.seccompProfile?.type;
  if (seccomp !== 'RuntimeDefault') problems.push(`seccomp profile is ${String(seccomp)}, want RuntimeDefault`);
  if (context?.readOnlyRootFilesystem !== true) problems.push('root filesystem is writable');
  if (context?.allowPrivilegeEscalation !== false) problems.push('privilege escalation is allowed');
  if (context?.privileged === true) problems.push('container is privileged');
  const dropped = context?.capabilities?.drop ?? [];
  if (!dropped.includes('ALL')) problems.push('capabilities are not all dropped');
  if ((context?.capabilities?.add ?? []).length > 0) problems.push('capabilities are added');
  return problems;
}

/** Probes, port, resources and the downward-API identity the Lease needs. */
export function containerProblems(deployment: k8s.V1Deployment): string[] {
  const problems: string[] = [];
  const container = controllerContainer(deployment);
  const metrics = container.ports?.find((p) => p.name === 'metrics');
  if (metrics === undefined) problems.push('no container port named metrics');
  for (const [probeName, probe, path] of [
    ['liveness', container.livenessProbe, '/healthz'],
    ['readiness', container.readinessProbe, '/readyz'],
  ] as const) {
    if (probe?.httpGet?.path !== path) problems.push(`${probeName} probe does not GET ${path}`);
    if (probe?.httpGet?.port !== 'metrics') problems.push(`${probeName} probe does not use the metrics port by name`);
  }
  const boundPort = metricsBindPort(container.args ?? []);
  if (metrics !== undefined && boundPort !== undefined && boundPort !== metrics.containerPort) {
    problems.push(`--metrics-bind-address port ${boundPort} is not the container port ${metrics.containerPort}`);
  }
  const requests = container.resources?.requests ?? {};
  const limits = container.resources?.limits ?? {};
  if (requests.cpu === undefined || requests.memory === undefined) problems.push('no cpu and memory requests');
  if (limits.memory === undefined) problems.push('no memory limit');
  if (limits.cpu !== undefined) problems.push('a cpu limit throttles lease renewals; set none');
  const podName = container.env?.find((e) => e.name === 'POD_NAME');
  if (podName?.valueFrom?.fieldRef?.fieldPath !== 'metadata.name') problems.push('POD_NAME does not come from metadata.name');
  return problems;
}

/** The port of `--metrics-bind-address=host:port`, if the flag is given. */
export function metricsBindPort(args: readonly string[]): number | undefined {
  const value = flagValues(args).get('metrics-bind-address');
  if (value === undefined) return undefined;
  const port = Number(value.slice(value.lastIndexOf(':') + 1));
  return Number.isInteger(port) ? port : undefined;
}

/** `--name=value` / `--name` / `--no-name` arguments after the subcommand, by flag name (last one wins). */
export function flagValues(args: readonly string[]): Map<string, string> {
  const values = new Map<string, string>();
  for (const arg of args.slice(1)) {
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    if (match?.[1] === undefined) continue;
    const name = match[1].startsWith('no-') && match[2] === undefined ? match[1].slice(3) : match[1];
    values.set(name, match[2] ?? String(!match[1].startsWith('no-')));
  }
  return values;
}

/**
 * The Deployment's arguments: the `run` subcommand, then only `--flag=value` forms of flags the CLI
 * defines. The `=` form is required so a value can never be taken for the next flag.
 */
export function argumentProblems(args: readonly string[], knownFlags: ReadonlySet<string>, command = 'run'): string[] {
  const problems: string[] = [];
  if (args[0] !== command) problems.push(`first argument is ${String(args[0])}, want ${command}`);
  for (const arg of args.slice(1)) {
    const match = /^--([a-z0-9-]+)=(.+)$/.exec(arg);
    if (match?.[1] === undefined) {
      problems.push(`argument ${arg} is not in --flag=value form`);
      continue;
    }
    if (!knownFlags.has(match[1])) problems.push(`--${match[1]} is not a flag of \`${command}\``);
  }
  const names = args.slice(1).map((a) => /^--([a-z0-9-]+)/.exec(a)?.[1]);
  const repeated = names.filter((n, i) => n !== undefined && names.indexOf(n) !== i);
  if (repeated.length > 0) problems.push(`flags given twice: ${repeated.join(', ')}`);
  if (!flagValues(args).has('cluster-cidr')) problems.push('--cluster-cidr is missing');
  return problems;
}

/** A rule as the API returns it; the model classes leave every field optional. */
type Rule = k8s.V1PolicyRule;

function ruleGrants(rules: readonly Rule[], group: string, resource: string, verb: string, name?: string): boolean {
  return rules.some(
    (r) =>
      (r.apiGroups ?? []).some((g) => g === group || g === '*') &&
      (r.resources ?? []).some((res) => res === resource || res === '*') &&
      r.verbs.some((v) => v === verb || v === '*') &&
      (r.resourceNames === undefined || r.resourceNames.length === 0 || (name !== undefined && r.resourceNames.includes(name))),
  );
}

/** Exactly the cluster-wide access the controller uses, and nothing that could widen it. */
export function clusterRoleProblems(role: k8s.V1ClusterRole): string[] {
  return exactGrantProblems(role.rules ?? [], [
    '/nodes/get', '/nodes/list', '/nodes/watch', '/nodes/patch',
    'events.k8s.io/events/create', 'events.k8s.io/events/patch',
    '/events/create', '/events/patch',
  ]);
}

/**
 * The ClusterCIDR component's role: read every pool, write its status and its finalizer, nothing else.
 * patch on the pool itself is for the finalizer in metadata; the CRD refuses any change of spec.
 */
export function clusterCidrRoleProblems(role: k8s.V1ClusterRole): string[] {
  return exactGrantProblems(role.rules ?? [], [
    'networking.x-k8s.io/clustercidrs/get', 'networking.x-k8s.io/clustercidrs/list',
    'networking.x-k8s.io/clustercidrs/watch', 'networking.x-k8s.io/clustercidrs/patch',
    'networking.x-k8s.io/clustercidrs/status/update', 'networking.x-k8s.io/clustercidrs/status/patch',
    'networking.x-k8s.io/clustercidrs/finalizers/update',
  ]);
}

/** Every `group/resource/verb` in `wanted` is granted, and nothing else is. */
function exactGrantProblems(rules: readonly Rule[], wanted: readonly string[]): string[] {
  const problems: string[] = [];
  const allowed = new Set(wanted);
  for (const rule of rules) {
    if (rule.nonResourceURLs !== undefined && rule.nonResourceURLs.length > 0) problems.push('grants non-resource URLs');
    for (const group of rule.apiGroups ?? []) {
      for (const resource of rule.resources ?? []) {
        for (const verb of rule.verbs) {
          const key = `${group}/${resource}/${verb}`;
          if (!allowed.has(key)) problems.push(`grants ${key}`);
        }
      }
    }
  }
  for (const key of allowed) {
    // group/resource/verb, where resource may carry a subresource: clustercidrs/status.
    const parts = key.split('/');
    const [group = '', verb = ''] = [parts[0], parts.at(-1)];
    const resource = parts.slice(1, -1).join('/');
    if (!ruleGrants(rules, group, resource, verb)) problems.push(`does not grant ${key}`);
  }
  return problems;
}

/** Namespaced access: pinned to our own Lease and ConfigMaps wherever the verb carries a name. */
export function roleProblems(role: k8s.V1Role): string[] {
  const problems: string[] = [];
  const rules = role.rules ?? [];
  const wanted: [group: string, resource: string, verb: string, name: string | undefined][] = [
    ['coordination.k8s.io', 'leases', 'create', undefined],
    ['coordination.k8s.io', 'leases', 'get', 'podcidr-allocator'],
    ['coordination.k8s.io', 'leases', 'update', 'podcidr-allocator'],
    ['', 'configmaps', 'get', 'podcidr-allocator-config'],
    ['', 'configmaps', 'list', 'podcidr-allocator-config'],
    ['', 'configmaps', 'watch', 'podcidr-allocator-config'],
    ['', 'configmaps', 'create', undefined],
    ['', 'configmaps', 'get', 'podcidr-allocator-state'],
    ['', 'configmaps', 'update', 'podcidr-allocator-state'],
    ['', 'configmaps', 'patch', 'podcidr-allocator-state'],
    ['', 'configmaps', 'get', 'podcidr-allocator-handoff'],
    ['', 'configmaps', 'update', 'podcidr-allocator-handoff'],
  ];
  for (const [group, resource, verb, name] of wanted) {
    if (!ruleGrants(rules, group, resource, verb, name)) problems.push(`does not grant ${verb} ${resource} ${name ?? ''}`);
  }
  for (const rule of rules) {
    const named = rule.resourceNames !== undefined && rule.resourceNames.length > 0;
    const unnamedVerbs = rule.verbs.filter((v) => v !== 'create');
    if (!named && unnamedVerbs.length > 0) problems.push(`grants ${unnamedVerbs.join(',')} on every ${String(rule.resources)}`);
    if (rule.verbs.includes('*') || (rule.resources ?? []).includes('*') || (rule.apiGroups ?? []).includes('*')) {
      problems.push('uses a wildcard');
    }
    if (rule.verbs.includes('delete') || rule.verbs.includes('deletecollection')) problems.push('grants delete');
  }
  return problems;
}

/** Each binding points its role at the controller's ServiceAccount in kube-system. */
export function bindingProblems(
  binding: k8s.V1RoleBinding | k8s.V1ClusterRoleBinding,
  roleKind: string,
  roleName = 'podcidr-allocator',
): string[] {
  const problems: string[] = [];
  if (binding.roleRef.kind !== roleKind || binding.roleRef.name !== roleName) {
    problems.push(`${binding.kind ?? 'binding'} refers to ${binding.roleRef.kind} ${binding.roleRef.name}`);
  }
  const subjects = binding.subjects ?? [];
  const ours = subjects.length === 1 && subjects[0]?.kind === 'ServiceAccount' && subjects[0].name === 'podcidr-allocator';
  if (!ours) problems.push(`${binding.kind ?? 'binding'} is not bound to the podcidr-allocator ServiceAccount alone`);
  if (subjects[0]?.namespace !== 'kube-system') problems.push(`${binding.kind ?? 'binding'} subject is not in kube-system`);
  return problems;
}

/**
 * A CRD schema node. loadObjects() converts a CRD into the client's model, which spells the keys
 * x_kubernetes_validations and _enum, but leaves everything under `items` (typed any) as written.
 */
interface SchemaNode {
  readonly type?: string;
  readonly minimum?: number;
  readonly required?: readonly string[];
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly items?: SchemaNode;
  readonly enum?: readonly unknown[];
  readonly _enum?: readonly unknown[];
  readonly 'x-kubernetes-validations'?: readonly { readonly rule: string }[];
  readonly x_kubernetes_validations?: readonly { readonly rule: string }[];
}

/** The CEL rules attached to one node of a CRD schema. */
function celRules(schema: SchemaNode | undefined): string[] {
  return (schema?.x_kubernetes_validations ?? schema?.['x-kubernetes-validations'] ?? []).map((v) => v.rule);
}

function enumValues(schema: SchemaNode | undefined): string[] {
  return (schema?._enum ?? schema?.enum ?? []).map(String);
}

/**
 * The ClusterCIDR CRD as node-ipam-controller's users apply it: the group, version, names and scope of
 * networking.x-k8s.io/v1, its spec fields immutable, and a status only the status subresource writes.
 */
export function clusterCidrCrdProblems(crd: k8s.V1CustomResourceDefinition): string[] {
  const problems: string[] = [];
  const { spec } = crd;
  if (crd.metadata?.name !== 'clustercidrs.networking.x-k8s.io') problems.push(`named ${String(crd.metadata?.name)}`);
  if (spec.group !== 'networking.x-k8s.io') problems.push(`group is ${spec.group}`);
  if (spec.scope !== 'Cluster') problems.push(`scope is ${spec.scope}, want Cluster`);
  const names = [spec.names.kind, spec.names.plural, spec.names.singular, spec.names.listKind].map(String).join('/');
  if (names !== 'ClusterCIDR/clustercidrs/clustercidr/ClusterCIDRList') problems.push(`names are ${names}`);
  const versions = spec.versions.map((v) => `${v.name}:${String(v.served)}:${String(v.storage)}`).join(',');
  if (versions !== 'v1:true:true') problems.push(`versions are ${versions}, want v1 served and stored`);
  const [v1] = spec.versions;
  if (v1 === undefined) return problems;
  if (v1.subresources?.status === undefined) problems.push('no status subresource');
  const root: SchemaNode | undefined = v1.schema?.openAPIV3Schema;
  const specSchema = root?.properties?.spec;
  const fields = specSchema?.properties ?? {};
  if (!(root?.required ?? []).includes('spec')) problems.push('spec is not required');
  if (!(specSchema?.required ?? []).includes('perNodeHostBits')) problems.push('perNodeHostBits is not required');
  if (fields.perNodeHostBits?.type !== 'integer' || fields.perNodeHostBits.minimum !== 4) {
    problems.push('perNodeHostBits is not an integer of at least 4');
  }
  for (const name of ['perNodeHostBits', 'ipv4', 'ipv6', 'nodeSelector']) {
    if (!celRules(fields[name]).includes('self == oldSelf')) problems.push(`${name} is not immutable`);
  }
  for (const [name, family] of [['ipv4', 4], ['ipv6', 6]] as const) {
    if (fields[name]?.type !== 'string') problems.push(`${name} is not a string`);
    if (!celRules(fields[name]).some((r) => r.includes('isCIDR(self)') && r.includes(`family() == ${family}`))) {
      problems.push(`${name} is not checked to be an IPv${family} CIDR`);
    }
  }
  const term = fields.nodeSelector?.properties?.nodeSelectorTerms?.items;
  for (const list of ['matchExpressions', 'matchFields']) {
    const operators = enumValues(term?.properties?.[list]?.items?.properties?.operator).sort().join(',');
    if (operators !== 'DoesNotExist,Exists,Gt,In,Lt,NotIn') problems.push(`nodeSelector ${list} operators are [${operators}]`);
  }
  const status = root?.properties?.status?.properties ?? {};
  for (const family of ['ipv4', 'ipv6']) {
    const counts = Object.keys(status[family]?.properties ?? {}).sort().join(',');
    if (counts !== 'allocated,capacity,free') problems.push(`status.${family} has [${counts}]`);
  }
  if (status.observedGeneration?.type !== 'integer') problems.push('status has no observedGeneration');
  const conditionFields = [...(status.conditions?.items?.required ?? [])].sort().join(',');
  if (conditionFields !== 'lastTransitionTime,message,reason,status,type') {
    problems.push(`status.conditions require [${conditionFields}], not the metav1.Condition fields`);
  }
  const columns = (v1.additionalPrinterColumns ?? []).map((c) => c.jsonPath);
  for (const path of ['.spec.perNodeHostBits', '.spec.ipv4', '.spec.ipv6', '.metadata.creationTimestamp']) {
    if (!columns.includes(path)) problems.push(`no printer column for ${path}`);
  }
  return problems;
}
