import { describe, expect, it } from 'vitest';
import { PatchError, type PatchFailure } from '../../../src/controller/ports.js';
import { ApiError } from '../../../src/kube/errors.js';
import { KubeNodeWriter, patchFailure } from '../../../src/kube/node-writer.js';
import { RequestTimeoutError } from '../../../src/kube/transport.js';
import { FakeRest, json, status } from './fake-rest.js';

function apiError(code: number, reason: string, message = 'msg'): ApiError {
  return new ApiError(code, JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code }));
}

function fetchFailed(code: string): TypeError {
  return new TypeError('fetch failed', { cause: Object.assign(new Error(code), { code }) });
}

/** The API server's side: answers patches and reads, or fails them with a Status. */
class FakeNodeApi extends FakeRest {
  patchError: { code: number; reason: string; message?: string } | undefined;
  readError: { code: number; reason: string; message?: string } | undefined;
  node: unknown = { metadata: { name: 'n1', uid: 'u1', resourceVersion: '7' } };

  constructor() {
    super();
    this.answer = (call) => {
      const error = call.method === 'PATCH' ? this.patchError : this.readError;
      if (error !== undefined) return status(error.code, error.reason, error.message);
      return json(200, this.node);
    };
  }

  get patches() {
    return this.calls.filter((c) => c.method === 'PATCH');
  }
}

describe('KubeNodeWriter.patchPodCIDRs', () => {
  it('sends one strategic-merge patch of podCIDR and podCIDRs under our field manager', async () => {
    const fake = new FakeNodeApi();
    await new KubeNodeWriter(fake).patchPodCIDRs('n1', ['10.0.1.0/24', 'fd00:0:0:1::/64']);
    expect(fake.patches).toHaveLength(1);
    const call = fake.patches[0];
    expect(call?.path).toBe('/api/v1/nodes/n1');
    expect(call?.request.query).toEqual({ fieldManager: 'podcidr-allocator' });
    expect(fake.body(0)).toEqual({ spec: { podCIDR: '10.0.1.0/24', podCIDRs: ['10.0.1.0/24', 'fd00:0:0:1::/64'] } });
    expect(call?.request.contentType).toBe('application/strategic-merge-patch+json');
    // Answered with metadata only: the whole Node is not needed.
    expect(call?.request.accept).toBe('application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1');
  });

  it('uses the field manager it is given', async () => {
    const fake = new FakeNodeApi();
    await new KubeNodeWriter(fake, { fieldManager: 'nodeipam' }).patchPodCIDRs('n1', ['10.0.0.0/24']);
    expect(fake.patches[0]?.request.query?.fieldManager).toBe('nodeipam');
  });

  it('refuses an empty CIDR list without calling the API server', async () => {
    const fake = new FakeNodeApi();
    await expect(new KubeNodeWriter(fake).patchPodCIDRs('n1', [])).rejects.toMatchObject({ failure: 'failed' });
    expect(fake.patches).toHaveLength(0);
  });

  it('throws a PatchError with status and reason but without headers in the message', async () => {
    const fake = new FakeNodeApi();
    fake.patchError = { code: 422, reason: 'Invalid', message: 'spec.podCIDRs: Forbidden: node updates may not change podCIDR' };
    const err = await new KubeNodeWriter(fake).patchPodCIDRs('n1', ['10.0.1.0/24']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PatchError);
    expect(err).toMatchObject({
      failure: 'conflict',
      message:
        'patch node n1 podCIDRs [10.0.1.0/24]: HTTP 422 Invalid: spec.podCIDRs: Forbidden: node updates may not change podCIDR',
    });
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
    const err = new ApiError(502, '<html>');
    expect(patchFailure(err)).toBe('failed');
    expect(err.message).toBe('HTTP 502');
  });
});

describe('KubeNodeWriter.getNode', () => {
  it('returns the fresh Node as NodeInfo', async () => {
    const fake = new FakeNodeApi();
    fake.node = { metadata: { name: 'n1', uid: 'u1', resourceVersion: '9' }, spec: { podCIDR: '10.0.0.0/24' } };
    expect(await new KubeNodeWriter(fake).getNode('n1')).toMatchObject({
      name: 'n1',
      resourceVersion: '9',
      podCIDRs: ['10.0.0.0/24'],
    });
    expect(fake.calls[0]).toMatchObject({ method: 'GET', path: '/api/v1/nodes/n1' });
  });

  it('returns undefined for a Node that does not exist', async () => {
    const fake = new FakeNodeApi();
    fake.readError = { code: 404, reason: 'NotFound' };
    expect(await new KubeNodeWriter(fake).getNode('gone')).toBeUndefined();
  });

  it('throws other failures with a one-line message', async () => {
    const fake = new FakeNodeApi();
    fake.readError = { code: 403, reason: 'Forbidden', message: 'nodes "n1" is forbidden' };
    await expect(new KubeNodeWriter(fake).getNode('n1')).rejects.toThrow(
      'read node n1: HTTP 403 Forbidden: nodes "n1" is forbidden',
    );
  });
});
