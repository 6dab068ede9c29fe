import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { NodeInfo } from '../../../src/controller/ports.js';
import type { KubeRequest, RawResponse } from '../../../src/kube/client.js';
import {
  type EventBody,
  type EventOutcome,
  KubeEventSink,
  type KubeEventSinkOptions,
} from '../../../src/kube/event-sink.js';
import type { HttpMethod } from '../../../src/kube/transport.js';
import { ManualClock } from '../../support/manual-clock.js';
import { json, status } from './fake-rest.js';

interface Created {
  readonly namespace: string | undefined;
  readonly body: EventBody;
}

const nodeA: NodeInfo = { name: 'node-a', uid: 'uid-a', resourceVersion: '1', podCIDRs: [] };
const nodeB: NodeInfo = { ...nodeA, name: 'node-b', uid: 'uid-b' };

function setup(options: Partial<KubeEventSinkOptions> = {}) {
  const clock = new ManualClock();
  const created: Created[] = [];
  const outcomes: EventOutcome[] = [];
  const logs: Record<string, unknown>[] = [];
  let failWith: unknown;
  let hold: Promise<void> | undefined;
  const api = {
    request: async (method: HttpMethod, path: string, request: KubeRequest = {}): Promise<RawResponse> => {
      if (hold !== undefined) await hold;
      if (failWith !== undefined) {
        if (typeof failWith === 'object' && failWith !== null && 'contentType' in failWith) return failWith as RawResponse;
        throw failWith;
      }
      const namespace = /^\/apis\/events\.k8s\.io\/v1\/namespaces\/([^/]+)\/events$/.exec(path)?.[1];
      expect(method).toBe('POST');
      const body = JSON.parse(JSON.stringify(request.body)) as EventBody;
      created.push({ namespace, body });
      return json(201, body);
    },
  };
  const sink = new KubeEventSink({
    api,
    log: pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) }),
    identity: 'allocator-0_abc',
    clock,
    onEvent: (o) => outcomes.push(o),
    ...options,
  });
  return {
    sink,
    clock,
    created,
    outcomes,
    logs,
    failWith: (err: unknown) => {
      failWith = err;
    },
    holdCreates: () => {
      let release = (): void => {};
      hold = new Promise<void>((resolve) => {
        release = resolve;
      });
      return () => {
        hold = undefined;
        release();
      };
    },
  };
}

describe('KubeEventSink', () => {
  it('creates an events.k8s.io/v1 Event about the Node in namespace default', async () => {
    const { sink, created } = setup();
    sink.emit(nodeA, 'Warning', 'CIDRNotAvailable', 'Node node-a status is now: CIDRNotAvailable');
    await sink.flush();
    expect(created).toHaveLength(1);
    const { namespace, body } = created[0] ?? {};
    expect(namespace).toBe('default');
    expect(body).toMatchObject({
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { namespace: 'default' },
      reportingController: 'podcidr-allocator',
      reportingInstance: 'allocator-0_abc',
      action: 'AllocatePodCIDR',
      reason: 'CIDRNotAvailable',
      type: 'Warning',
      note: 'Node node-a status is now: CIDRNotAvailable',
      regarding: { kind: 'Node', apiVersion: 'v1', name: 'node-a', uid: 'uid-a' },
    });
    expect(body?.metadata?.name).toMatch(/^node-a\.[0-9a-f]+$/);
    expect(body?.series).toBeUndefined();
  });

  it('writes eventTime as a MicroTime with six fractional digits', async () => {
    const { sink, created } = setup();
    sink.emit(nodeA, 'Normal', 'R', 'n');
    await sink.flush();
    expect(created[0]?.body.eventTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it('does not create the same event twice within the window and reports the repeats after it', async () => {
    const { sink, clock, created, outcomes } = setup({ windowMs: 600_000 });
    for (let i = 0; i < 5; i++) {
      sink.emit(nodeA, 'Warning', 'CIDRNotAvailable', 'full');
      await clock.advance(60_000);
    }
    await sink.flush();
    expect(created).toHaveLength(1);
    expect(outcomes).toEqual(['created', 'deduplicated', 'deduplicated', 'deduplicated', 'deduplicated']);
    await clock.advance(600_000);
    sink.emit(nodeA, 'Warning', 'CIDRNotAvailable', 'full');
    await sink.flush();
    expect(created).toHaveLength(2);
    expect(created[1]?.body.series?.count).toBe(5);
    expect(created[1]?.body.series?.lastObservedTime).toMatch(/\.\d{6}Z$/);
  });

  it('treats a different node, reason or note as a different event', async () => {
    const { sink, created } = setup();
    sink.emit(nodeA, 'Warning', 'CIDRNotAvailable', 'full');
    sink.emit(nodeB, 'Warning', 'CIDRNotAvailable', 'full');
    sink.emit(nodeA, 'Warning', 'CIDRAssignmentFailed', 'full');
    sink.emit(nodeA, 'Warning', 'CIDRNotAvailable', 'other note');
    sink.emit(nodeA, 'Warning', 'CIDRNotAvailable', 'full');
    await sink.flush();
    expect(created).toHaveLength(4);
  });

  it('writes one event per node when a full range hits 5,000 nodes, however often they retry', async () => {
    const { sink, clock, created } = setup({ maxInFlight: 10_000 });
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 5000; i++) {
        sink.emit({ ...nodeA, name: `node-${i}`, uid: `uid-${i}` }, 'Warning', 'CIDRNotAvailable', 'full');
      }
      await clock.advance(30_000);
    }
    await sink.flush();
    expect(created).toHaveLength(5000);
  });

  it('remembers a bounded number of keys, forgetting the oldest', async () => {
    const { sink, created } = setup({ maxKeys: 100, maxInFlight: 10_000 });
    for (let i = 0; i < 1000; i++) sink.emit({ ...nodeA, name: `n-${i}` }, 'Normal', 'R', 'x');
    await sink.flush();
    expect(sink.rememberedKeys()).toBe(100);
    sink.emit({ ...nodeA, name: 'n-999' }, 'Normal', 'R', 'x');
    sink.emit({ ...nodeA, name: 'n-0' }, 'Normal', 'R', 'x');
    await sink.flush();
    expect(created.map((c) => c.body.regarding?.name).slice(1000)).toEqual(['n-0']);
  });

  it('forgets keys whose window has passed with nothing suppressed', async () => {
    const { sink, clock } = setup({ windowMs: 1000 });
    sink.emit(nodeA, 'Normal', 'R', 'x');
    await clock.advance(2000);
    sink.emit(nodeB, 'Normal', 'R', 'x');
    expect(sink.rememberedKeys()).toBe(1);
    await sink.flush();
  });

  it('drops events beyond the in-flight bound and tries them again later', async () => {
    const { sink, created, outcomes, holdCreates } = setup({ maxInFlight: 2 });
    const release = holdCreates();
    sink.emit(nodeA, 'Normal', 'R1', 'x');
    sink.emit(nodeA, 'Normal', 'R2', 'x');
    sink.emit(nodeA, 'Normal', 'R3', 'x');
    expect(outcomes).toEqual(['dropped']);
    release();
    await sink.flush();
    sink.emit(nodeA, 'Normal', 'R3', 'x');
    await sink.flush();
    expect(created.map((c) => c.body.reason)).toEqual(['R1', 'R2', 'R3']);
  });

  it('never throws and counts failures, warning at most once a minute', async () => {
    const { sink, clock, outcomes, logs, failWith } = setup();
    failWith(status(403, 'Forbidden', 'no'));
    expect(() => sink.emit(nodeA, 'Warning', 'R1', 'x')).not.toThrow();
    sink.emit(nodeA, 'Warning', 'R2', 'x');
    await sink.flush();
    await clock.advance(61_000);
    sink.emit(nodeA, 'Warning', 'R3', 'x');
    await sink.flush();
    expect(outcomes).toEqual(['failed', 'failed', 'failed']);
    const warnings = logs.filter((l) => l.level === 40);
    expect(warnings.map((w) => w.error)).toEqual(['HTTP 403 Forbidden: no', 'HTTP 403 Forbidden: no']);
  });

  it('survives an API client that throws synchronously', async () => {
    const outcomes: EventOutcome[] = [];
    const sink = new KubeEventSink({
      api: {
        request: () => {
          throw new Error('sync failure');
        },
      },
      log: pino({ level: 'silent' }),
      identity: 'x',
      onEvent: (o) => outcomes.push(o),
    });
    expect(() => sink.emit(nodeA, 'Normal', 'R', 'x')).not.toThrow();
    await sink.flush();
    expect(outcomes).toEqual(['failed']);
  });

  it('cuts notes to the 1 kB the API allows and keeps event names within 253 characters', async () => {
    const { sink, created } = setup();
    sink.emit({ ...nodeA, name: 'n'.repeat(253) }, 'Normal', 'R', 'é'.repeat(2000));
    await sink.flush();
    const body = created[0]?.body;
    expect(Buffer.byteLength(body?.note ?? '')).toBeLessThanOrEqual(1024);
    expect(body?.note?.endsWith('...')).toBe(true);
    expect(body?.metadata?.name?.length).toBeLessThanOrEqual(253);
  });

  it('refuses an empty identity', () => {
    expect(() => setup({ identity: '' })).toThrow(/identity/);
  });
});
