import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { type NodeWatchHandlers, ResourceExpiredError } from '../../../src/controller/node-informer.js';
import type { NodeInfo } from '../../../src/controller/types.js';
import { KubeNodeSource, type WatchClient } from '../../../src/kube/node-source.js';

interface WatchCall {
  readonly path: string;
  readonly query: Record<string, string | number | boolean | undefined>;
  readonly emit: (phase: string, object: unknown) => void;
  readonly done: (err: unknown) => void;
  readonly controller: AbortController;
}

class FakeWatch implements WatchClient {
  readonly calls: WatchCall[] = [];
  failOnConnect: unknown;

  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    emit: (phase: string, object: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const controller = new AbortController();
    this.calls.push({ path, query, emit, done, controller });
    // Like k8s.Watch: a failed connect calls done() before watch() returns.
    if (this.failOnConnect !== undefined) done(this.failOnConnect);
    return controller;
  }

  get last(): WatchCall {
    const call = this.calls.at(-1);
    if (call === undefined) throw new Error('no watch');
    return call;
  }
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
    const requests: k8s.CoreV1ApiListNodeRequest[] = [];
    const source = new KubeNodeSource({
      core: {
        listNode: async (param?: k8s.CoreV1ApiListNodeRequest) => {
          if (param !== undefined) requests.push(param);
          return {
            items: [{ metadata: { name: 'a', uid: 'u', resourceVersion: '5' }, spec: { podCIDR: '10.0.0.0/24' } }],
            metadata: { resourceVersion: '77', _continue: 'next' },
          };
        },
      },
      watch: new FakeWatch(),
      labelSelector: 'pool=a',
    });
    const page = await source.list({ limit: 500, continueToken: 'tok', signal: neverAborted });
    expect(requests).toEqual([{ limit: 500, _continue: 'tok', labelSelector: 'pool=a' }]);
    expect(page).toEqual({
      nodes: [{ name: 'a', uid: 'u', resourceVersion: '5', podCIDRs: ['10.0.0.0/24'], labels: {} }],
      resourceVersion: '77',
      continueToken: 'next',
    });
  });

  it('reports the last page with no continue token', async () => {
    const source = new KubeNodeSource({
      core: { listNode: async () => ({ items: [], metadata: { resourceVersion: '1', _continue: '' } }) },
      watch: new FakeWatch(),
    });
    expect((await source.list({ limit: 1, signal: neverAborted })).continueToken).toBeUndefined();
  });

  it('turns 410 Gone into ResourceExpiredError and other failures into one-line errors', async () => {
    const failing = (code: number, reason: string) =>
      new KubeNodeSource({
        core: {
          listNode: async () => {
            throw new k8s.ApiException(code, 'x', JSON.stringify({ reason, message: 'm' }), {});
          },
        },
        watch: new FakeWatch(),
      });
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
    const watch = new FakeWatch();
    let throttled = 0;
    const source = new KubeNodeSource({ core: { listNode: async () => ({ items: [] }) }, watch, throttle: async () => {
      throttled++;
    } });
    await source.watch({ resourceVersion: '42', timeoutSeconds: 400, signal: neverAborted }, recorder().handlers);
    expect(throttled).toBe(1);
    expect(watch.last.path).toBe('/api/v1/nodes');
    expect(watch.last.query).toEqual({
      resourceVersion: '42',
      allowWatchBookmarks: true,
      timeoutSeconds: 400,
      labelSelector: undefined,
    });
  });

  it('passes events converted from plain JSON, and bookmarks', async () => {
    const watch = new FakeWatch();
    const source = new KubeNodeSource({ core: { listNode: async () => ({ items: [] }) }, watch });
    const { seen, nodes, handlers } = recorder();
    await source.watch({ resourceVersion: '1', timeoutSeconds: 300, signal: neverAborted }, handlers);
    const json = { metadata: { name: 'a', uid: 'u', resourceVersion: '2', deletionTimestamp: '2024-01-01T00:00:00Z' } };
    watch.last.emit('ADDED', json);
    watch.last.emit('MODIFIED', json);
    watch.last.emit('BOOKMARK', { kind: 'Node', metadata: { resourceVersion: '9' } });
    watch.last.emit('DELETED', json);
    expect(seen).toEqual(['ADDED a', 'MODIFIED a', 'BOOKMARK 9', 'DELETED a']);
    expect(nodes[0]?.deletionTimestamp).toBe('2024-01-01T00:00:00Z');
  });

  it('ends with ResourceExpiredError on an in-stream 410 and aborts the stream', async () => {
    const watch = new FakeWatch();
    const source = new KubeNodeSource({ core: { listNode: async () => ({ items: [] }) }, watch });
    const { closes, handlers, seen } = recorder();
    await source.watch({ resourceVersion: '1', timeoutSeconds: 300, signal: neverAborted }, handlers);
    watch.last.emit('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
    watch.last.emit('ADDED', { metadata: { name: 'late' } });
    watch.last.done(null);
    expect(closes).toHaveLength(1);
    expect(closes[0]).toBeInstanceOf(ResourceExpiredError);
    expect(watch.last.controller.signal.aborted).toBe(true);
    expect(seen).toEqual([]);
  });

  it('ends with a plain error for other in-stream errors and HTTP failures, and cleanly on a server close', async () => {
    const watch = new FakeWatch();
    const source = new KubeNodeSource({ core: { listNode: async () => ({ items: [] }) }, watch });
    const first = recorder();
    await source.watch({ resourceVersion: '1', timeoutSeconds: 300, signal: neverAborted }, first.handlers);
    watch.last.emit('ERROR', { code: 500, reason: 'InternalError', message: 'etcd' });
    expect(first.closes[0]).not.toBeInstanceOf(ResourceExpiredError);
    expect((first.closes[0] as Error).message).toBe('watch nodes: 500 InternalError: etcd');

    const second = recorder();
    watch.failOnConnect = Object.assign(new Error('Gone'), { statusCode: 410 });
    await source.watch({ resourceVersion: '1', timeoutSeconds: 300, signal: neverAborted }, second.handlers);
    expect(second.closes[0]).toBeInstanceOf(ResourceExpiredError);

    const third = recorder();
    watch.failOnConnect = Object.assign(new Error('Forbidden'), { statusCode: 403 });
    await source.watch({ resourceVersion: '1', timeoutSeconds: 300, signal: neverAborted }, third.handlers);
    expect((third.closes[0] as Error).message).toBe('watch nodes: HTTP 403 Forbidden');

    const fourth = recorder();
    watch.failOnConnect = undefined;
    await source.watch({ resourceVersion: '1', timeoutSeconds: 300, signal: neverAborted }, fourth.handlers);
    watch.last.done(null);
    expect(fourth.closes).toEqual([undefined]);
  });

  it('aborts the stream when the caller aborts', async () => {
    const watch = new FakeWatch();
    const source = new KubeNodeSource({ core: { listNode: async () => ({ items: [] }) }, watch });
    const controller = new AbortController();
    await source.watch({ resourceVersion: '1', timeoutSeconds: 300, signal: controller.signal }, recorder().handlers);
    expect(watch.last.controller.signal.aborted).toBe(false);
    controller.abort();
    expect(watch.last.controller.signal.aborted).toBe(true);
  });
});
