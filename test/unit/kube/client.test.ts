import { describe, expect, it } from 'vitest';
import { type ClusterAccess, fixedAccess } from '../../../src/kube/access.js';
import { createKubeClient } from '../../../src/kube/client.js';
import type { HttpRequest, HttpResponse } from '../../../src/kube/transport.js';

function reply(status: number, text = '{}'): HttpResponse {
  return {
    status,
    headers: { 'content-type': 'application/json' },
    body: {
      text: async () => text,
      bytes: async () => Buffer.from(text),
      stream: async function* () {
        yield Buffer.from(text);
      },
    },
  };
}

/** Credentials that change once renewed: token-1, then token-2. */
function rotatingAccess(): ClusterAccess & { renewals: number } {
  let token = 'token-1';
  const access = {
    server: 'https://api.example:6443/',
    renewals: 0,
    credentials: async () => ({ tls: {}, headers: { Authorization: `Bearer ${token}` } }),
    renew: async () => {
      access.renewals += 1;
      token = 'token-2';
      return true;
    },
  };
  return access;
}

/** A client with a bearer token and User-Agent test/1 whose every request is recorded and answered 200 with body. */
function recordingClient(server: string, body: string) {
  const sent: HttpRequest[] = [];
  const client = createKubeClient(fixedAccess(server, { tls: {}, headers: { Authorization: 'Bearer t' } }), {
    qps: 100,
    burst: 100,
    userAgent: 'test/1',
    send: async (request) => {
      sent.push(request);
      return reply(200, body);
    },
  });
  return { client, sent };
}

/** A client whose every request is answered 401; calls.sent counts them. */
function unauthorizedClient(access: ClusterAccess) {
  const calls = { sent: 0 };
  const client = createKubeClient(access, {
    qps: 100,
    burst: 100,
    send: async () => {
      calls.sent += 1;
      return reply(401);
    },
  });
  return { client, calls };
}

describe('createKubeClient', () => {
  it('sends method, URL, query, JSON body and headers', async () => {
    const { client, sent } = recordingClient('https://api.example:6443', '{"ok":true}');
    const response = await client.request('PATCH', '/api/v1/nodes/n1', {
      query: { fieldManager: 'fm', skipped: undefined },
      body: { spec: {} },
      contentType: 'application/merge-patch+json',
    });
    expect(response).toEqual({ status: 200, contentType: 'application/json', body: Buffer.from('{"ok":true}') });
    expect(sent[0]).toMatchObject({
      method: 'PATCH',
      url: 'https://api.example:6443/api/v1/nodes/n1?fieldManager=fm',
      body: '{"spec":{}}',
      headers: {
        Authorization: 'Bearer t',
        Accept: 'application/json',
        'Accept-Encoding': 'identity',
        'Content-Type': 'application/merge-patch+json',
        'User-Agent': 'test/1',
      },
    });
    await client.close();
  });

  it('renews the credential after a 401 and sends the request once more with it', async () => {
    const access = rotatingAccess();
    const seen: string[] = [];
    const client = createKubeClient(access, {
      qps: 100,
      burst: 100,
      send: async (request) => {
        seen.push(request.headers.Authorization ?? '');
        return reply(request.headers.Authorization === 'Bearer token-2' ? 200 : 401);
      },
    });
    expect((await client.request('GET', '/api/v1/nodes/n1')).status).toBe(200);
    expect(seen).toEqual(['Bearer token-1', 'Bearer token-2']);
    expect(access.renewals).toBe(1);
    await client.close();
  });

  it('returns a second 401 rather than renewing again', async () => {
    const access = rotatingAccess();
    const { client, calls } = unauthorizedClient(access);
    expect((await client.request('GET', '/api/v1/nodes')).status).toBe(401);
    expect(calls.sent).toBe(2);
    expect(access.renewals).toBe(1);
    await client.close();
  });

  it('returns a 401 at once when the credential cannot change', async () => {
    const { client, calls } = unauthorizedClient(fixedAccess('https://api.example', { tls: {}, headers: {} }));
    expect((await client.request('GET', '/api/v1/nodes')).status).toBe(401);
    expect(calls.sent).toBe(1);
    await client.close();
  });

  it('streams a watch with the credential and User-Agent', async () => {
    const { client, sent } = recordingClient('https://api.example', '{"type":"BOOKMARK"}\n');
    const response = await client.stream('/api/v1/nodes', { query: { watch: true }, accept: 'application/json', signal: new AbortController().signal });
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(Buffer.from(chunk));
    expect(Buffer.concat(chunks).toString()).toBe('{"type":"BOOKMARK"}\n');
    expect(sent[0]?.url).toBe('https://api.example/api/v1/nodes?watch=true');
    expect(sent[0]?.headers).toMatchObject({ Authorization: 'Bearer t', 'User-Agent': 'test/1' });
    await client.close();
  });
});
