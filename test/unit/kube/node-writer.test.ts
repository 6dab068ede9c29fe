import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { PatchError, type PatchFailure } from '../../../src/controller/types.js';
import { KubeNodeWriter, type NodeApi, patchFailure } from '../../../src/kube/node-writer.js';
import { RequestTimeoutError } from '../../../src/kube/transport.js';

function apiError(code: number, reason: string, message = 'msg'): k8s.ApiException<string> {
  const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code });
  return new k8s.ApiException(code, 'Unknown API Status Code!', body, { authorization: 'Bearer secret-token' });
}

function fetchFailed(code: string): TypeError {
  return new TypeError('fetch failed', { cause: Object.assign(new Error(code), { code }) });
}

interface PatchCall {
  readonly param: k8s.CoreV1ApiPatchNodeRequest;
  readonly options: k8s.ConfigurationOptions | undefined;
}

class FakeNodeApi {
  readonly patches: PatchCall[] = [];
  patchError: unknown;
  readError: unknown;
  node: k8s.V1Node = { metadata: { name: 'n1', uid: 'u1', resourceVersion: '7' } };

  readonly api: NodeApi = {
    patchNode: async (param, options) => {
      this.patches.push({ param, options: options as k8s.ConfigurationOptions | undefined });
      if (this.patchError !== undefined) throw this.patchError;
      return this.node;
    },
    readNode: async () => {
      if (this.readError !== undefined) throw this.readError;
      return this.node;
    },
  };
}

/** Runs the per-call middleware on a request and returns the headers it ends up with. */
async function headersAfter(options: k8s.ConfigurationOptions | undefined): Promise<Record<string, string>> {
  const request = new k8s.RequestContext('https://api.example/api/v1/nodes/n1', k8s.HttpMethod.PATCH);
  request.setHeaderParam('Content-Type', 'application/json-patch+json');
  let current = request;
  for (const middleware of options?.middleware ?? []) current = await middleware.pre(current).toPromise();
  return current.getHeaders();
}

describe('KubeNodeWriter.patchPodCIDRs', () => {
  it('sends one strategic-merge patch of podCIDR and podCIDRs under our field manager', async () => {
    const fake = new FakeNodeApi();
    await new KubeNodeWriter(fake.api).patchPodCIDRs('n1', ['10.0.1.0/24', 'fd00:0:0:1::/64']);
    expect(fake.patches).toHaveLength(1);
    const call = fake.patches[0];
    expect(call?.param).toEqual({
      name: 'n1',
      body: { spec: { podCIDR: '10.0.1.0/24', podCIDRs: ['10.0.1.0/24', 'fd00:0:0:1::/64'] } },
      fieldManager: 'podcidr-allocator',
    });
    expect((await headersAfter(call?.options))['Content-Type']).toBe('application/strategic-merge-patch+json');
    expect(call?.options?.middlewareMergeStrategy).toBe('append');
  });

  it('uses the field manager it is given', async () => {
    const fake = new FakeNodeApi();
    await new KubeNodeWriter(fake.api, { fieldManager: 'nodeipam' }).patchPodCIDRs('n1', ['10.0.0.0/24']);
    expect(fake.patches[0]?.param.fieldManager).toBe('nodeipam');
  });

  it('refuses an empty CIDR list without calling the API server', async () => {
    const fake = new FakeNodeApi();
    await expect(new KubeNodeWriter(fake.api).patchPodCIDRs('n1', [])).rejects.toMatchObject({ failure: 'failed' });
    expect(fake.patches).toHaveLength(0);
  });

  it('throws a PatchError with status and reason but without headers in the message', async () => {
    const fake = new FakeNodeApi();
    fake.patchError = apiError(422, 'Invalid', 'spec.podCIDRs: Forbidden: node updates may not change podCIDR');
    const err = await new KubeNodeWriter(fake.api).patchPodCIDRs('n1', ['10.0.1.0/24']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PatchError);
    expect(err).toMatchObject({
      failure: 'conflict',
      message:
        'patch node n1 podCIDRs [10.0.1.0/24]: HTTP 422 Invalid: spec.podCIDRs: Forbidden: node updates may not change podCIDR',
    });
    expect((err as Error).message).not.toContain('secret-token');
  });
});

describe('patchFailure', () => {
  it.each<[string, unknown, PatchFailure]>([
    ['422 Invalid', apiError(422, 'Invalid'), 'conflict'],
    ['409 Conflict', apiError(409, 'Conflict'), 'conflict'],
    ['404 NotFound', apiError(404, 'NotFound'), 'not-found'],
    ['504 Timeout', apiError(504, 'Timeout'), 'timeout'],
    ['500 ServerTimeout', apiError(500, 'ServerTimeout'), 'timeout'],
    ['500 InternalError', apiError(500, 'InternalError'), 'failed'],
    ['503 ServiceUnavailable', apiError(503, 'ServiceUnavailable'), 'failed'],
    ['403 Forbidden', apiError(403, 'Forbidden'), 'failed'],
    ['429 after retries', apiError(429, 'TooManyRequests'), 'failed'],
    ['our request timeout', new RequestTimeoutError(1000), 'timeout'],
    ['an abort', new DOMException('aborted', 'AbortError'), 'timeout'],
    ['a connection reset', fetchFailed('ECONNRESET'), 'timeout'],
    ['a socket closed by the server', fetchFailed('UND_ERR_SOCKET'), 'timeout'],
    ['a refused connection', fetchFailed('ECONNREFUSED'), 'failed'],
    ['an unknown host', fetchFailed('ENOTFOUND'), 'failed'],
    ['a plain error', new Error('boom'), 'failed'],
  ])('maps %s to %s', (_what, err, failure) => {
    expect(patchFailure(err)).toBe(failure);
  });

  it('reads the reason when the body is not JSON', () => {
    const err = new k8s.ApiException(502, 'bad gateway', '<html>', {});
    expect(patchFailure(err)).toBe('failed');
  });
});

describe('KubeNodeWriter.getNode', () => {
  it('returns the fresh Node as NodeInfo', async () => {
    const fake = new FakeNodeApi();
    fake.node = { metadata: { name: 'n1', uid: 'u1', resourceVersion: '9' }, spec: { podCIDR: '10.0.0.0/24' } };
    expect(await new KubeNodeWriter(fake.api).getNode('n1')).toMatchObject({
      name: 'n1',
      resourceVersion: '9',
      podCIDRs: ['10.0.0.0/24'],
    });
  });

  it('returns undefined for a Node that does not exist', async () => {
    const fake = new FakeNodeApi();
    fake.readError = apiError(404, 'NotFound');
    expect(await new KubeNodeWriter(fake.api).getNode('gone')).toBeUndefined();
  });

  it('throws other failures with a one-line message', async () => {
    const fake = new FakeNodeApi();
    fake.readError = apiError(403, 'Forbidden', 'nodes "n1" is forbidden');
    await expect(new KubeNodeWriter(fake.api).getNode('n1')).rejects.toThrow(
      'read node n1: HTTP 403 Forbidden: nodes "n1" is forbidden',
    );
  });
});
