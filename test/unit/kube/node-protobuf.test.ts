import type { V1Node } from '@kubernetes/client-node';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toNodeInfo } from '../../../src/kube/node-info.js';
import { NodeListDecoder, WatchEventDecoder, decodeNodeList, decodeStatus } from '../../../src/kube/node-protobuf.js';
import { ResourceExpiredError } from '../../../src/controller/ports.js';
import { ProtobufNodeSource } from '../../../src/kube/protobuf-node-source.js';
import { MessageReader, ProtobufError } from '../../../src/kube/protobuf.js';

// A small protobuf writer for fixtures, following the field numbers of k8s.io/api generated.proto.
function varint(n: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? byte | 0x80 : byte);
  } while (v > 0n);
  return Buffer.from(out);
}
const tag = (field: number, wire: number): Buffer => varint(field * 8 + wire);
const num = (field: number, n: number | bigint): Buffer => Buffer.concat([tag(field, 0), varint(n)]);
const bytes = (field: number, b: Buffer): Buffer => Buffer.concat([tag(field, 2), varint(b.length), b]);
const str = (field: number, s: string): Buffer => bytes(field, Buffer.from(s, 'utf8'));
const msg = (field: number, ...parts: Buffer[]): Buffer => bytes(field, Buffer.concat(parts));
const fixed32 = (field: number): Buffer => Buffer.concat([tag(field, 5), Buffer.alloc(4, 7)]);
const fixed64 = (field: number): Buffer => Buffer.concat([tag(field, 1), Buffer.alloc(8, 9)]);

/** k8s\0 + runtime.Unknown{typeMeta{apiVersion, kind}, raw}. */
function envelope(kind: string, raw: Buffer): Buffer {
  const unknown = Buffer.concat([msg(1, str(1, 'v1'), str(2, kind)), bytes(2, raw), str(3, ''), str(4, '')]);
  return Buffer.concat([Buffer.from('k8s\0', 'latin1'), unknown]);
}

/** The protobuf form of a V1Node with the fields the decoder reads, plus fields it must skip. */
function encodeNode(node: V1Node): Buffer {
  const m = node.metadata ?? {};
  const meta: Buffer[] = [str(1, m.name ?? ''), str(2, 'gen-'), str(5, m.uid ?? ''), str(6, m.resourceVersion ?? ''), num(7, 3)];
  meta.push(msg(8, num(1, 1_700_000_000), num(2, 0)));
  if (m.deletionTimestamp) meta.push(msg(9, num(1, Math.floor(m.deletionTimestamp.getTime() / 1000)), num(2, 0)));
  for (const [k, v] of Object.entries(m.labels ?? {})) meta.push(msg(11, str(1, k), str(2, v)));
  meta.push(msg(12, str(1, 'note'), str(2, '{"f:spec":{"f:podCIDRs":{}}}')));
  meta.push(str(14, 'example.com/keep'));
  for (const e of m.managedFields ?? []) {
    const entry = [str(1, e.manager ?? ''), str(2, 'Update'), str(3, 'v1'), msg(4, num(1, 1_700_000_001)), str(6, 'FieldsV1')];
    if (e.fieldsV1 !== undefined) entry.push(msg(7, str(1, JSON.stringify(e.fieldsV1))));
    if (e.subresource !== undefined) entry.push(str(8, e.subresource));
    meta.push(msg(17, ...entry));
  }
  const spec: Buffer[] = [str(3, 'aws:///zone/i-1'), num(4, 1)];
  if (node.spec?.podCIDR !== undefined) spec.push(str(1, node.spec.podCIDR));
  for (const cidr of node.spec?.podCIDRs ?? []) spec.push(str(7, cidr));
  const status = msg(3, msg(6, str(1, 'registry.example/image:v1'), num(2, 123456)), fixed32(99), fixed64(98));
  return Buffer.concat([msg(1, ...meta), msg(2, ...spec), status]);
}

function nodeList(nodes: V1Node[], resourceVersion: string, continueToken = ''): Buffer {
  const listMeta = msg(1, str(2, resourceVersion), str(3, continueToken), num(4, 7));
  return envelope('NodeList', Buffer.concat([listMeta, ...nodes.map((n) => bytes(2, encodeNode(n)))]));
}

function watchFrame(type: string, object: Buffer): Buffer {
  return Buffer.concat([str(1, type), msg(2, bytes(1, object))]);
}

/** A watch frame as the stream carries it: a 4-byte big-endian length, then the frame. */
function framed(frame: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(frame.length);
  return Buffer.concat([head, frame]);
}

/** The one event a single frame holds; nothing may be left over. */
function decodeWatchEvent(frame: Buffer): unknown {
  const decoder = new WatchEventDecoder();
  const events = decoder.push(framed(frame));
  expect(events).toHaveLength(1);
  expect(decoder.buffered).toBe(0);
  return events[0];
}

const statusObject = (code: number, reason: string, message: string): Buffer =>
  envelope('Status', Buffer.concat([str(2, 'Failure'), str(3, message), str(4, reason), num(6, code)]));

const nodes: V1Node[] = [
  {
    metadata: {
      name: 'worker-1',
      uid: 'u-1',
      resourceVersion: '101',
      labels: { 'kubernetes.io/hostname': 'worker-1', 'topology.kubernetes.io/zone': 'z1', 'node-role.kubernetes.io/worker': '' },
      managedFields: [
        { manager: 'kubelet', fieldsV1: { 'f:status': { 'f:conditions': {} } }, subresource: 'status' },
        { manager: 'podcidr-allocator', fieldsV1: { 'f:spec': { 'f:podCIDR': {}, 'f:podCIDRs': { '.': {}, 'v:"10.0.1.0/24"': {} } } } },
      ],
    },
    spec: { podCIDR: '10.0.1.0/24', podCIDRs: ['10.0.1.0/24', 'fd00:0:0:1::/64'] },
  },
  {
    metadata: {
      name: 'worker-2',
      uid: 'u-2',
      resourceVersion: '102',
      deletionTimestamp: new Date('2026-11-30T10:00:00Z'),
      managedFields: [{ manager: 'old-tool', fieldsV1: { 'f:spec': { 'f:podCIDR': {} } } }],
    },
    spec: { podCIDR: '10.0.2.0/24' },
  },
  {
    metadata: { name: 'worker-3', uid: 'u-3', resourceVersion: '103', labels: { 'kubernetes.io/hostname': 'worker-3', pool: 'gpu', 'node-role.kubernetes.io/worker': '' } },
    spec: {},
  },
];

describe('decodeNodeList', () => {
  it('reads every Node as toNodeInfo reads its JSON form', () => {
    const list = decodeNodeList(nodeList(nodes, '200', 'next-page'));
    expect(list.resourceVersion).toBe('200');
    expect(list.continueToken).toBe('next-page');
    expect(list.nodes).toEqual(nodes.map(toNodeInfo));
    expect(list.nodes[0]?.podCIDRManager).toBe('podcidr-allocator');
    // Labels only choose a pool for a node that has no podCIDRs yet.
    expect(list.nodes[2]?.labels).toEqual({ 'kubernetes.io/hostname': 'worker-3', pool: 'gpu', 'node-role.kubernetes.io/worker': '' });
    expect(list.nodes[0]?.labels).toEqual({});
    expect(list.nodes[1]).toMatchObject({ deletionTimestamp: '2026-11-30T10:00:00Z', podCIDRs: ['10.0.2.0/24'], podCIDRManager: 'old-tool' });
  });

  it('decodes the same list however its bytes are cut into chunks', () => {
    const body = nodeList(nodes, '200', 'next-page');
    const whole = decodeNodeList(body);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 30 }), (cuts) => {
        const decoder = new NodeListDecoder();
        for (let at = 0, i = 0; at < body.length; i++) {
          const size = cuts[i % cuts.length] ?? 1;
          decoder.push(body.subarray(at, at + size));
          at += size;
        }
        expect(decoder.finish()).toEqual(whole);
      }),
    );
  });

  it('drops a Node status as it streams in instead of holding it', () => {
    const node = nodes[0] as V1Node;
    const bigStatus = msg(3, ...Array.from({ length: 2000 }, (_, i) => msg(6, str(1, `registry.example/image-${i}:v1`), num(2, i))));
    const item = Buffer.concat([encodeNode(node), bigStatus]);
    const body = envelope('NodeList', Buffer.concat([msg(1, str(2, '9')), bytes(2, item), bytes(2, encodeNode(nodes[2] as V1Node))]));
    const decoder = new NodeListDecoder();
    let held = 0;
    for (let at = 0; at < body.length; at += 1000) {
      decoder.push(body.subarray(at, at + 1000));
      held = Math.max(held, decoder.buffered);
    }
    expect(bigStatus.length).toBeGreaterThan(50_000);
    expect(held).toBeLessThan(3000);
    expect(decoder.finish().nodes).toEqual([toNodeInfo(node), toNodeInfo(nodes[2] as V1Node)]);
  });

  it('refuses a Node whose field runs past the end of the Node', () => {
    // The item says 10 bytes; its status field says 500.
    const item = Buffer.concat([tag(2, 2), varint(10), msg(3, Buffer.alloc(500))]);
    const body = envelope('NodeList', Buffer.concat([msg(1, str(2, '9')), item]));
    expect(() => decodeNodeList(body)).toThrow(/runs past the end of the Node/);
  });

  it('refuses a list whose body stops in the middle of a Node', () => {
    const decoder = new NodeListDecoder();
    decoder.push(nodeList(nodes, '1').subarray(0, 200));
    expect(() => decoder.finish()).toThrow(/ended early/);
  });

  it('reports the last page with no continue token', () => {
    expect(decodeNodeList(nodeList([], '5')).continueToken).toBeUndefined();
  });

  it.each([
    ['no k8s prefix', Buffer.from('{"kind":"NodeList"}')],
    ['another kind', envelope('PodList', Buffer.alloc(0))],
    ['a truncated body', nodeList(nodes, '1').subarray(0, 60)],
  ])('refuses %s with a ProtobufError', (_what, body) => {
    expect(() => decodeNodeList(body)).toThrow(ProtobufError);
  });
});

describe('WatchEventDecoder, one frame at a time', () => {
  it.each(['ADDED', 'MODIFIED', 'DELETED'] as const)('reads a %s event', (type) => {
    const node = nodes[0] as V1Node;
    expect(decodeWatchEvent(watchFrame(type, envelope('Node', encodeNode(node))))).toEqual({ type, node: toNodeInfo(node) });
  });

  it('reads a bookmark resourceVersion', () => {
    const bookmark = envelope('Node', msg(1, str(6, '4242')));
    expect(decodeWatchEvent(watchFrame('BOOKMARK', bookmark))).toEqual({ type: 'BOOKMARK', resourceVersion: '4242' });
  });

  it('reads an ERROR event as its Status', () => {
    const frame = watchFrame('ERROR', statusObject(410, 'Expired', 'too old resource version: 1 (5)'));
    expect(decodeWatchEvent(frame)).toEqual({
      type: 'ERROR',
      status: { code: 410, reason: 'Expired', message: 'too old resource version: 1 (5)' },
    });
  });

  it('refuses an event type it does not know', () => {
    expect(() => decodeWatchEvent(watchFrame('SOMETHING', envelope('Node', Buffer.alloc(0))))).toThrow(/unknown watch event/);
  });
});

describe('decodeStatus', () => {
  it('reads code, reason and message', () => {
    expect(decodeStatus(statusObject(403, 'Forbidden', 'nodes is forbidden'))).toEqual({
      code: 403,
      reason: 'Forbidden',
      message: 'nodes is forbidden',
    });
  });
});

describe('MessageReader', () => {
  it('reads int64 varints beyond 32 bits and negative ones', () => {
    const r = new MessageReader(Buffer.concat([num(1, 2 ** 40 + 3), num(2, -5)]));
    r.next();
    expect(r.int()).toBe(2 ** 40 + 3);
    r.next();
    expect(r.int()).toBe(-5);
    expect(r.next()).toBeUndefined();
  });

  it('refuses a length that runs past the end of the message', () => {
    const r = new MessageReader(Buffer.concat([tag(1, 2), varint(10), Buffer.from('abc')]));
    r.next();
    expect(() => r.string()).toThrow(/past the end/);
  });

  it('refuses a value read with the wrong wire type', () => {
    const r = new MessageReader(num(1, 5));
    r.next();
    expect(() => r.string()).toThrow(/wire type 0, expected 2/);
  });
});

describe('WatchEventDecoder', () => {
  const bigStatus = msg(3, ...Array.from({ length: 2000 }, (_, i) => msg(6, str(1, `registry.example/image-${i}:v1`), num(2, i))));
  const frames = [
    watchFrame('ADDED', envelope('Node', Buffer.concat([encodeNode(nodes[0] as V1Node), bigStatus]))),
    watchFrame('MODIFIED', envelope('Node', encodeNode(nodes[1] as V1Node))),
    watchFrame('BOOKMARK', envelope('Node', msg(1, str(6, '4242')))),
    watchFrame('DELETED', envelope('Node', encodeNode(nodes[2] as V1Node))),
    watchFrame('ERROR', statusObject(410, 'Expired', 'too old resource version: 1 (5)')),
  ];
  const want = [
    { type: 'ADDED', node: toNodeInfo(nodes[0] as V1Node) },
    { type: 'MODIFIED', node: toNodeInfo(nodes[1] as V1Node) },
    { type: 'BOOKMARK', resourceVersion: '4242' },
    { type: 'DELETED', node: toNodeInfo(nodes[2] as V1Node) },
    { type: 'ERROR', status: { code: 410, reason: 'Expired', message: 'too old resource version: 1 (5)' } },
  ];

  it('returns the events of a stream however it is cut into chunks', () => {
    const stream = Buffer.concat(frames.map(framed));
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 20 }), (cuts) => {
        const decoder = new WatchEventDecoder();
        const out: unknown[] = [];
        for (let at = 0, i = 0; at < stream.length; i++) {
          const size = cuts[i % cuts.length] ?? 1;
          out.push(...decoder.push(stream.subarray(at, at + size)));
          at += size;
        }
        expect(out).toEqual(want);
        expect(decoder.buffered).toBe(0);
      }),
      { numRuns: 50 },
    );
  });

  it('drops a Node status as it streams in instead of holding it', () => {
    const stream = framed(frames[0] as Buffer);
    const decoder = new WatchEventDecoder();
    let held = 0;
    const out: unknown[] = [];
    for (let at = 0; at < stream.length; at += 1000) {
      out.push(...decoder.push(stream.subarray(at, at + 1000)));
      held = Math.max(held, decoder.buffered);
    }
    expect(stream.length).toBeGreaterThan(50_000);
    expect(held).toBeLessThan(3000);
    expect(out).toEqual([want[0]]);
  });

  it.each([
    ['an object without the k8s prefix', watchFrame('ADDED', Buffer.from('{"kind":"Node"}'))],
    ['a Node field running past its frame', Buffer.concat([str(1, 'ADDED'), tag(2, 2), varint(500), Buffer.alloc(10)])],
  ])('refuses %s with a ProtobufError', (_what, frame) => {
    expect(() => new WatchEventDecoder().push(framed(frame))).toThrow(ProtobufError);
  });
});

describe('ProtobufNodeSource', () => {

  function source(reply: { status: number; contentType: string; body: Buffer }, stream?: Buffer[]): ProtobufNodeSource {
    return new ProtobufNodeSource({
      client: {
        getStreamed: (_path, _request, consume) => {
          if (reply.status !== 200) return Promise.resolve(reply);
          consume(reply.body);
          return Promise.resolve({ ...reply, body: Buffer.alloc(0) });
        },
        stream: () =>
          Promise.resolve({
            status: reply.status,
            contentType: reply.contentType,
            body: new ReadableStream<Uint8Array>({
              start(controller) {
                for (const chunk of stream ?? [reply.body]) controller.enqueue(chunk);
                controller.close();
              },
            }),
          }),
      },
    });
  }

  const signal = new AbortController().signal;
  const protobufType = 'application/vnd.kubernetes.protobuf';

  it('turns a 410 Status reply to a list into ResourceExpiredError', async () => {
    const list = source({ status: 410, contentType: protobufType, body: statusObject(410, 'Expired', 'continue token too old') });
    await expect(list.list({ limit: 10, continueToken: 'x', signal })).rejects.toThrow(ResourceExpiredError);
  });

  it('names the status and reason of any other failed list, from a JSON error body too', async () => {
    const body = Buffer.from(JSON.stringify({ kind: 'Status', code: 403, reason: 'Forbidden', message: 'nodes is forbidden' }));
    const list = source({ status: 403, contentType: 'application/json', body });
    await expect(list.list({ limit: 10, signal })).rejects.toThrow('list nodes: HTTP 403 Forbidden: nodes is forbidden');
  });

  it('delivers events and bookmarks in order, then reports an ERROR frame as the close reason', async () => {
    const node = nodes[0] as V1Node;
    const frames = [
      watchFrame('ADDED', envelope('Node', encodeNode(node))),
      watchFrame('BOOKMARK', envelope('Node', msg(1, str(6, '300')))),
      watchFrame('ERROR', statusObject(410, 'Expired', 'too old resource version')),
    ];
    const stream = Buffer.concat(frames.map(framed));
    // Cut mid-frame, to exercise the reassembly on a real stream.
    const chunks = [stream.subarray(0, 7), stream.subarray(7, 100), stream.subarray(100)];
    const seen: string[] = [];
    const closed = new Promise<unknown>((resolve) => {
      void source({ status: 200, contentType: protobufType, body: Buffer.alloc(0) }, chunks).watch(
        { resourceVersion: '1', timeoutSeconds: 60, signal },
        {
          onEvent: (type, info) => seen.push(`${type} ${info.name}`),
          onBookmark: (rv) => seen.push(`BOOKMARK ${rv}`),
          onClose: resolve,
        },
      );
    });
    expect(await closed).toBeInstanceOf(ResourceExpiredError);
    expect(seen).toEqual(['ADDED worker-1', 'BOOKMARK 300']);
  });

  it('reports a clean end of the stream as a close without error', async () => {
    const closed = new Promise<unknown>((resolve) => {
      void source({ status: 200, contentType: protobufType, body: Buffer.alloc(0) }, []).watch(
        { resourceVersion: '1', timeoutSeconds: 60, signal },
        { onEvent: () => undefined, onBookmark: () => undefined, onClose: (err) => resolve(err ?? 'clean') },
      );
    });
    expect(await closed).toBe('clean');
  });
});
