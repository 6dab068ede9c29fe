import { describe, expect, it } from 'vitest';
import { type NodeInfo, type NodeWatchHandlers, ResourceExpiredError } from '../../../src/controller/ports.js';
import { KubeNodeSource } from '../../../src/kube/node-source.js';
import { FakeRest, json, status } from './fake-rest.js';
import { FakeStream, settle } from './fake-stream.js';

/** KubeClient's request and stream, both faked. */
class FakeClient extends FakeRest {
  readonly watches = new FakeStream();
  stream: FakeStream['stream'] = (path, request) => this.watches.stream(path, request);
}

function recorder() {
  const seen: string[] = [];
  const closes: unknown[] = [];
  const nodes: NodeInfo[] = [];
  const handlers: NodeWatchHandlers = {
    onEvent: (type, node) => {
      seen.push(`${type} ${node.name}`);
      nodes.push(node);
    },
    onBookmark: (rv) => seen.push(`BOOKMARK ${rv}`),
    onClose: (err) => closes.push(err),
  };
  return { seen, closes, nodes, handlers };
}

const neverAborted = new AbortController().signal;

describe('KubeNodeSource.list', () => {
  it('asks for one page and converts it to NodeInfo', async () => {
    const client = new FakeClient();
    client.answer = () =>
      json(200, {
        items: [{ metadata: { name: 'a', uid: 'u', resourceVersion: '5' }, spec: { podCIDR: '10.0.0.0/24' }, status: { images: [] } }],
        metadata: { resourceVersion: '77', continue: 'next' },
      });
    const source = new KubeNodeSource({ client, labelSelector: 'pool=a' });
    const page = await source.list({ limit: 500, continueToken: 'tok', signal: neverAborted });
    expect(client.calls).toEqual([
      {
        method: 'GET',
        path: '/api/v1/nodes',
        request: { query: { limit: 500, continue: 'tok', labelSelector: 'pool=a' }, signal: neverAborted },
      },
    ]);
    expect(page).toEqual({
      nodes: [{ name: 'a', uid: 'u', resourceVersion: '5', podCIDRs: ['10.0.0.0/24'], labels: {} }],
      resourceVersion: '77',
      continueToken: 'next',
    });
  });

  it('reports the last page with no continue token', async () => {
    const client = new FakeClient();
    client.answer = () => json(200, { items: [], metadata: { resourceVersion: '1', continue: '' } });
    expect((await new KubeNodeSource({ client }).list({ limit: 1, signal: neverAborted })).continueToken).toBeUndefined();
  });

  it('turns 410 Gone into ResourceExpiredError and other failures into one-line errors', async () => {
    const failing = (code: number, reason: string) => {
      const client = new FakeClient();
      client.answer = () => status(code, reason, 'm');
      return new KubeNodeSource({ client });
    };
    await expect(failing(410, 'Expired').list({ limit: 1, signal: neverAborted })).rejects.toBeInstanceOf(
      ResourceExpiredError,
    );
    await expect(failing(403, 'Forbidden').list({ limit: 1, signal: neverAborted })).rejects.toThrow(
      'list nodes: HTTP 403 Forbidden: m',
    );
  });
});

describe('KubeNodeSource.watch', () => {
  it('watches /api/v1/nodes from the resourceVersion with bookmarks and the server timeout', async () => {
    const client = new FakeClient();
    await new KubeNodeSource({ client }).watch({ resourceVersion: '42', timeoutSeconds: 400, signal: neverAborted }, recorder().handlers);
    expect(client.watches.last.path).toBe('/api/v1/nodes');
    expect(client.watches.last.accept).toBe('application/json');
    expect(client.watches.last.query).toEqual({
      watch: true,
      resourceVersion: '42',
      allowWatchBookmarks: true,
      timeoutSeconds: 400,
      labelSelector: undefined,
    });
  });

  it('passes events converted from plain JSON, and bookmarks', async () => {
    const client = new FakeClient();
    const { seen, nodes, handlers } = recorder();
    await new KubeNodeSource({ client }).watch({ resourceVersion: '1', timeoutSeconds: 300, signal: neverAborted }, handlers);
    const node = { metadata: { name: 'a', uid: 'u', resourceVersion: '2', deletionTimestamp: '2024-01-01T00:00:00Z' } };
    const feed = client.watches.last.feed;
    feed.event('ADDED', node);
    feed.event('MODIFIED', node);
    feed.event('BOOKMARK', { kind: 'Node', metadata: { resourceVersion: '9' } });
    feed.event('DELETED', node);
    await settle();
    expect(seen).toEqual(['ADDED a', 'MODIFIED a', 'BOOKMARK 9', 'DELETED a']);
    expect(nodes[0]?.deletionTimestamp).toBe('2024-01-01T00:00:00Z');
  });

  it('ends with ResourceExpiredError on an in-stream 410 and reads no further', async () => {
    const client = new FakeClient();
    const { closes, handlers, seen } = recorder();
    await new KubeNodeSource({ client }).watch({ resourceVersion: '1', timeoutSeconds: 300, signal: neverAborted }, handlers);
    const feed = client.watches.last.feed;
    feed.event('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
    feed.event('ADDED', { metadata: { name: 'late' } });
    feed.end();
    await settle();
    expect(closes).toHaveLength(1);
    expect(closes[0]).toBeInstanceOf(ResourceExpiredError);
    expect(seen).toEqual([]);
  });

  it('ends with a plain error for other in-stream errors, throws HTTP failures, and ends cleanly on a server close', async () => {
    const client = new FakeClient();
    const source = new KubeNodeSource({ client });
    const first = recorder();
    await source.watch({ resourceVersion: '1', timeoutSeconds: 300, signal: neverAborted }, first.handlers);
    client.watches.last.feed.event('ERROR', { code: 500, reason: 'InternalError', message: 'etcd' });
    await settle();
    expect(first.closes[0]).not.toBeInstanceOf(ResourceExpiredError);
    expect((first.closes[0] as Error).message).toBe('watch nodes: HTTP 500 InternalError: etcd');

    client.watches.refuse = { status: 410, body: { kind: 'Status', code: 410, reason: 'Expired', message: 'm' } };
    await expect(source.watch({ resourceVersion: '1', timeoutSeconds: 300, signal: neverAborted }, recorder().handlers)).rejects.toBeInstanceOf(
      ResourceExpiredError,
    );

    client.watches.refuse = { status: 403, body: { kind: 'Status', code: 403, reason: 'Forbidden', message: 'no' } };
    await expect(source.watch({ resourceVersion: '1', timeoutSeconds: 300, signal: neverAborted }, recorder().handlers)).rejects.toThrow(
      'watch nodes: HTTP 403 Forbidden: no',
    );

    const fourth = recorder();
    client.watches.refuse = undefined;
    await source.watch({ resourceVersion: '1', timeoutSeconds: 300, signal: neverAborted }, fourth.handlers);
    client.watches.last.feed.end();
    await settle();
    expect(fourth.closes).toEqual([undefined]);
  });

  it('passes the caller’s signal to the stream, so aborting ends it', async () => {
    const client = new FakeClient();
    const controller = new AbortController();
    const { closes, handlers } = recorder();
    await new KubeNodeSource({ client }).watch({ resourceVersion: '1', timeoutSeconds: 300, signal: controller.signal }, handlers);
    expect(client.watches.last.signal.aborted).toBe(false);
    controller.abort();
    await settle();
    expect(client.watches.last.signal.aborted).toBe(true);
    expect(closes).toHaveLength(1);
  });
});
