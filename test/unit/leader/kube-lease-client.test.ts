import { describe, expect, it } from 'vitest';
import type { KubeRequest, RawResponse, RestClient } from '../../../src/kube/client.js';
import type { HttpMethod } from '../../../src/kube/transport.js';
import { createKubeLeaseClient, type LeaseObject } from '../../../src/leader/kube-lease-client.js';
import { LeaseError } from '../../../src/leader/lease-client.js';
import { json, status } from '../kube/fake-rest.js';

const ref = { namespace: 'kube-system', name: 'podcidr-allocator' };

type Call = { verb: string; path: string; body?: LeaseObject; signal: AbortSignal | undefined };

const VERBS: Partial<Record<HttpMethod, string>> = { GET: 'read', POST: 'create', PUT: 'replace' };

/** Plays the API server: records what it was sent and answers with a scripted Lease or response. */
class ScriptedApi implements RestClient {
  readonly calls: Call[] = [];
  answer: (call: Call) => Promise<LeaseObject | RawResponse> = () => Promise.reject(new Error('no answer'));

  async request(method: HttpMethod, path: string, request: KubeRequest = {}): Promise<RawResponse> {
    const body = typeof request.body === 'string' ? (JSON.parse(request.body) as LeaseObject) : (request.body as LeaseObject | undefined);
    const call: Call = { verb: VERBS[method] ?? method, path, signal: request.signal, ...(body !== undefined ? { body } : {}) };
    this.calls.push(call);
    const answer = await this.answer(call);
    return 'contentType' in answer ? answer : json(200, answer);
  }
}

/** What the server sends back: MicroTimes arrive as strings. */
function served(spec: Record<string, unknown>, resourceVersion = '42', labels?: Record<string, string>): LeaseObject {
  return { metadata: { ...ref, resourceVersion, labels }, spec } as LeaseObject;
}

describe('the CoordinationV1Api lease client', () => {
  it('writes acquireTime and renewTime as MicroTime with six fractional digits', async () => {
    const api = new ScriptedApi();
    api.answer = (call) => Promise.resolve({ ...call.body, metadata: { ...call.body?.metadata, resourceVersion: '1' } });
    const client = createKubeLeaseClient(api, { requestTimeoutMs: 5_000 });
    const at = new Date('2025-03-04T05:06:07.891Z');

    await client.create(ref, {
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      acquireTime: at,
      renewTime: at,
      leaseTransitions: 0,
    });

    const wire = JSON.parse(JSON.stringify(api.calls[0]?.body)) as { spec: Record<string, unknown>; metadata: unknown };
    expect(wire.spec).toEqual({
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      acquireTime: '2025-03-04T05:06:07.891000Z',
      renewTime: '2025-03-04T05:06:07.891000Z',
      leaseTransitions: 0,
    });
    expect(wire.metadata).toEqual(ref);
    expect(api.calls[0]).toMatchObject({ verb: 'create', path: '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases' });
  });

  it('reads MicroTime strings, keeping them verbatim in the raw record', async () => {
    const api = new ScriptedApi();
    api.answer = () =>
      Promise.resolve(
        served({
          holderIdentity: 'b',
          leaseDurationSeconds: 15,
          acquireTime: '2025-03-04T05:06:07.123456Z',
          renewTime: '2025-03-04T05:06:09.654321Z',
          leaseTransitions: 3,
        }),
      );
    const lease = await createKubeLeaseClient(api, { requestTimeoutMs: 5_000 }).get(ref);

    expect(lease.resourceVersion).toBe('42');
    expect(lease.record).toEqual({
      holderIdentity: 'b',
      leaseDurationSeconds: 15,
      acquireTime: new Date('2025-03-04T05:06:07.123Z'),
      renewTime: new Date('2025-03-04T05:06:09.654Z'),
      leaseTransitions: 3,
    });
    expect(lease.raw).toContain('"2025-03-04T05:06:09.654321Z"');
  });

  it('reads an empty spec as a lease nobody holds', async () => {
    const api = new ScriptedApi();
    api.answer = () => Promise.resolve(served({}));
    const lease = await createKubeLeaseClient(api, { requestTimeoutMs: 5_000 }).get(ref);
    expect(lease.record).toEqual({
      holderIdentity: '',
      leaseDurationSeconds: 0,
      acquireTime: undefined,
      renewTime: undefined,
      leaseTransitions: 0,
    });
  });

  it('replaces with the given resourceVersion, keeping the labels it last read', async () => {
    const api = new ScriptedApi();
    api.answer = () => Promise.resolve(served({ holderIdentity: 'a' }, '7', { team: 'net' }));
    const client = createKubeLeaseClient(api, { requestTimeoutMs: 5_000 });
    await client.get(ref);
    await client.update(
      ref,
      { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: undefined, renewTime: undefined, leaseTransitions: 2 },
      '7',
    );

    expect(api.calls.map((c) => `${c.verb} ${c.path}`)).toEqual([
      'read /apis/coordination.k8s.io/v1/namespaces/kube-system/leases/podcidr-allocator',
      'replace /apis/coordination.k8s.io/v1/namespaces/kube-system/leases/podcidr-allocator',
    ]);
    const sent = api.calls[1]?.body;
    expect(sent?.metadata).toMatchObject({ ...ref, resourceVersion: '7', labels: { team: 'net' } });
    expect(sent?.spec).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 2 });
  });

  it.each([
    [404, 'NotFound', 'not-found'],
    [409, 'Conflict', 'conflict'],
    [409, 'AlreadyExists', 'conflict'],
    [403, 'Forbidden', 'failed'],
    [500, 'InternalError', 'failed'],
  ] as const)('maps HTTP %i %s to a %s LeaseError', async (code, reason, failure) => {
    const api = new ScriptedApi();
    api.answer = () => Promise.resolve(status(code, reason));
    const error = await createKubeLeaseClient(api, { requestTimeoutMs: 5_000 })
      .get(ref)
      .catch((err: unknown) => err);

    expect(error).toBeInstanceOf(LeaseError);
    expect(error).toMatchObject({ failure, message: `get lease kube-system/podcidr-allocator: HTTP ${code} ${reason}` });
  });

  it('gives every request an abort signal that also follows the caller’s', async () => {
    const api = new ScriptedApi();
    api.answer = (call) =>
      new Promise((_resolve, reject) => {
        call.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
      });
    const caller = new AbortController();
    const pending = createKubeLeaseClient(api, { requestTimeoutMs: 60_000 })
      .get(ref, caller.signal)
      .catch((err: unknown) => err);
    expect(api.calls[0]?.signal?.aborted).toBe(false);

    caller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(LeaseError);
    expect(error).toMatchObject({ failure: 'timeout' });
  });

  it('reports a network failure as failed', async () => {
    const api = new ScriptedApi();
    api.answer = () => Promise.reject(new TypeError('fetch failed'));
    const error = await createKubeLeaseClient(api, { requestTimeoutMs: 5_000 })
      .get(ref)
      .catch((err: unknown) => err);
    expect(error).toMatchObject({ failure: 'failed', message: 'get lease kube-system/podcidr-allocator: fetch failed' });
  });

  it('refuses a non-positive request timeout', () => {
    expect(() => createKubeLeaseClient(new ScriptedApi(), { requestTimeoutMs: 0 })).toThrow(RangeError);
  });
});
