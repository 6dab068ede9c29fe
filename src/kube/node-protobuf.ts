// Reads Nodes, NodeLists, watch events and Status replies in the API server's protobuf encoding.
// Only metadata and spec are decoded; status (conditions, images: most of a Node's bytes) is skipped unread.

import type { V1ManagedFieldsEntry, V1Node } from '@kubernetes/client-node';
import { toNodeInfo } from '../controller/node-info.js';
import type { NodeInfo } from '../controller/types.js';
import { ByteQueue, MessageReader, ProtobufError } from './protobuf.js';

export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';

/** Every object outside a watch stream starts with these four bytes, then a runtime.Unknown. */
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

export interface DecodedNodeList {
  readonly nodes: NodeInfo[];
  readonly resourceVersion: string;
  readonly continueToken: string | undefined;
}

/** A metav1.Status, as sent for errors and in ERROR watch events. */
export interface DecodedStatus {
  readonly code: number;
  readonly reason: string;
  readonly message: string;
}

export type DecodedWatchEvent =
  | { readonly type: 'ADDED' | 'MODIFIED' | 'DELETED'; readonly node: NodeInfo }
  | { readonly type: 'BOOKMARK'; readonly resourceVersion: string }
  | { readonly type: 'ERROR'; readonly status: DecodedStatus };

/** The object inside the envelope: its kind (from runtime.Unknown's TypeMeta) and raw bytes. */
export function unwrap(data: Buffer): { kind: string; raw: Buffer } {
  expectMagic(data.subarray(0, MAGIC.length));
  const unknown = new MessageReader(data, MAGIC.length);
  let kind = '';
  let raw: Buffer = Buffer.alloc(0);
  for (let tag = unknown.next(); tag !== undefined; tag = unknown.next()) {
    if (tag.field === 2) raw = unknown.bytes();
    else kind = envelopeField(unknown, tag.field) ?? kind;
  }
  return { kind, raw };
}

function expectMagic(prefix: Buffer): void {
  if (!prefix.equals(MAGIC)) throw new ProtobufError('missing the k8s\\0 prefix; not a Kubernetes protobuf object');
}

/** Reads a runtime.Unknown field other than raw: the kind from TypeMeta (1), and refuses an encoding (3). */
function envelopeField(unknown: MessageReader, field: number): string | undefined {
  if (field === 1) return typeMetaKind(unknown.message());
  if (field === 3) {
    const encoding = unknown.string();
    if (encoding !== '') throw new ProtobufError(`content encoding ${encoding} is not supported`);
  } else unknown.skip();
  return undefined;
}

function typeMetaKind(typeMeta: MessageReader): string {
  let kind = '';
  for (let tag = typeMeta.next(); tag !== undefined; tag = typeMeta.next()) {
    if (tag.field === 2) kind = typeMeta.string();
    else typeMeta.skip();
  }
  return kind;
}

/** A NodeList reply (whole HTTP body). */
export function decodeNodeList(body: Buffer): DecodedNodeList {
  const decoder = new NodeListDecoder();
  decoder.push(body);
  return decoder.finish();
}

/**
 * A NodeList decoded as its bytes arrive: each Node is read once its bytes are all there and then
 * dropped, so a page of thousands of Nodes never sits in memory whole. The envelope's raw field is
 * entered rather than read, since it holds the whole list.
 */
export class NodeListDecoder {
  readonly #queue = new ByteQueue();
  #state: 'magic' | 'envelope' | 'list' = 'magic';
  /** Bytes of the NodeList (the envelope's raw field) not yet consumed. */
  #listLeft = 0;
  #sawList = false;
  #kind = '';
  readonly #nodes: NodeInfo[] = [];
  #resourceVersion = '';
  #continueToken = '';

  push(chunk: Uint8Array): void {
    this.#queue.push(chunk);
    while (this.#step());
  }

  /** The list, once every byte has been pushed; throws when the body ended early. */
  finish(): DecodedNodeList {
    if (this.#state === 'magic' || this.#queue.length > 0 || this.#listLeft > 0 || !this.#sawList) {
      throw new ProtobufError(`NodeList ended early (${this.#state}, ${this.#queue.length + this.#listLeft} bytes short or left over)`);
    }
    const continueToken = this.#continueToken === '' ? undefined : this.#continueToken;
    return { nodes: this.#nodes, resourceVersion: this.#resourceVersion, continueToken };
  }

  /** Consumes one element if its bytes are all buffered; false when it must wait for more. */
  #step(): boolean {
    if (this.#state === 'magic') {
      if (this.#queue.length < MAGIC.length) return false;
      expectMagic(this.#queue.take(MAGIC.length));
      this.#state = 'envelope';
      return true;
    }
    if (this.#state === 'list' && this.#listLeft === 0) this.#state = 'envelope';
    const tag = this.#queue.peekVarint();
    if (tag === undefined) return false;
    const field = Math.floor(tag.value / 8);
    if (this.#state === 'envelope' && field === 2) return this.#enterList(tag.size);
    const whole = this.#wholeField(tag.size, tag.value % 8);
    if (whole === undefined) return false;
    const reader = new MessageReader(this.#queue.take(whole));
    if (this.#state === 'list') {
      this.#listLeft -= whole;
      if (this.#listLeft < 0) throw new ProtobufError('a NodeList field runs past the end of the list');
      this.#listField(reader);
    } else this.#envelopeField(reader);
    return true;
  }

  #enterList(tagSize: number): boolean {
    const length = this.#queue.peekVarint(tagSize);
    if (length === undefined) return false;
    expectKind(this.#kind, 'NodeList');
    this.#queue.take(tagSize + length.size);
    this.#listLeft = length.value;
    this.#sawList = true;
    this.#state = 'list';
    return true;
  }

  /** Size of the field at the front (tag included) when it is all buffered. */
  #wholeField(tagSize: number, wireType: number): number | undefined {
    let size: number | undefined;
    if (wireType === 0) size = mapDefined(this.#queue.peekVarint(tagSize), (v) => tagSize + v.size);
    else if (wireType === 1) size = tagSize + 8;
    else if (wireType === 5) size = tagSize + 4;
    else if (wireType === 2) size = mapDefined(this.#queue.peekVarint(tagSize), (v) => tagSize + v.size + v.value);
    else throw new ProtobufError(`unsupported wire type ${wireType}`);
    return size !== undefined && size <= this.#queue.length ? size : undefined;
  }

  #envelopeField(reader: MessageReader): void {
    const tag = reader.next();
    if (tag !== undefined) this.#kind = envelopeField(reader, tag.field) ?? this.#kind;
  }

  #listField(reader: MessageReader): void {
    const tag = reader.next();
    if (tag?.field === 1) {
      const meta = reader.message();
      for (let m = meta.next(); m !== undefined; m = meta.next()) {
        if (m.field === 2) this.#resourceVersion = meta.string();
        else if (m.field === 3) this.#continueToken = meta.string();
        else meta.skip();
      }
    } else if (tag?.field === 2) this.#nodes.push(readNode(reader.message()));
    else if (tag !== undefined) reader.skip();
  }
}

function mapDefined<T, U>(value: T | undefined, f: (v: T) => U): U | undefined {
  return value === undefined ? undefined : f(value);
}

/** A Status reply (whole HTTP body), e.g. the 410 Gone of an expired continue token. */
export function decodeStatus(body: Buffer): DecodedStatus {
  const { kind, raw } = unwrap(body);
  expectKind(kind, 'Status');
  return readStatus(new MessageReader(raw));
}

/**
 * One frame of a protobuf watch stream: a metav1.WatchEvent without the envelope, whose object
 * is an enveloped Node (or Status for ERROR; a Node with only a resourceVersion for BOOKMARK).
 */
export function decodeWatchEvent(frame: Buffer): DecodedWatchEvent {
  const event = new MessageReader(frame);
  let type = '';
  let object: Buffer | undefined;
  for (let tag = event.next(); tag !== undefined; tag = event.next()) {
    if (tag.field === 1) type = event.string();
    else if (tag.field === 2) object = rawExtension(event.message());
    else event.skip();
  }
  if (object === undefined) throw new ProtobufError(`watch event ${type} carries no object`);
  const { kind, raw } = unwrap(object);
  switch (type) {
    case 'ADDED':
    case 'MODIFIED':
    case 'DELETED':
      expectKind(kind, 'Node');
      return { type, node: readNode(new MessageReader(raw)) };
    case 'BOOKMARK':
      expectKind(kind, 'Node');
      return { type, resourceVersion: readNode(new MessageReader(raw)).resourceVersion };
    case 'ERROR':
      expectKind(kind, 'Status');
      return { type, status: readStatus(new MessageReader(raw)) };
    default:
      throw new ProtobufError(`unknown watch event type "${type}"`);
  }
}

function rawExtension(ext: MessageReader): Buffer | undefined {
  let raw: Buffer | undefined;
  for (let tag = ext.next(); tag !== undefined; tag = ext.next()) {
    if (tag.field === 1) raw = ext.bytes();
    else ext.skip();
  }
  return raw;
}

function expectKind(kind: string, want: string): void {
  if (kind !== want) throw new ProtobufError(`expected a ${want}, got "${kind}"`);
}

function readStatus(status: MessageReader): DecodedStatus {
  let code = 0;
  let reason = '';
  let message = '';
  for (let tag = status.next(); tag !== undefined; tag = status.next()) {
    if (tag.field === 3) message = status.string();
    else if (tag.field === 4) reason = status.string();
    else if (tag.field === 6) code = status.int();
    else status.skip();
  }
  return { code, reason, message };
}

/**
 * A Node's metadata and spec, in the shape toNodeInfo reads, so both encodings go through the
 * same conversion. Field 3 (status) is skipped by length.
 */
function readNode(node: MessageReader): NodeInfo {
  const partial: V1Node = {};
  for (let tag = node.next(); tag !== undefined; tag = node.next()) {
    if (tag.field === 1) partial.metadata = readObjectMeta(node.message());
    else if (tag.field === 2) partial.spec = readNodeSpec(node.message());
    else node.skip();
  }
  return toNodeInfo(partial);
}

type Meta = NonNullable<V1Node['metadata']>;

function readObjectMeta(meta: MessageReader): Meta {
  const out: Meta = {};
  const managedFields: V1ManagedFieldsEntry[] = [];
  for (let tag = meta.next(); tag !== undefined; tag = meta.next()) {
    switch (tag.field) {
      case 1:
        out.name = meta.string();
        break;
      case 5:
        out.uid = meta.string();
        break;
      case 6:
        out.resourceVersion = meta.string();
        break;
      case 9:
        out.deletionTimestamp = readTime(meta.message());
        break;
      case 17:
        managedFields.push(readManagedFields(meta.message()));
        break;
      default:
        meta.skip();
    }
  }
  if (managedFields.length > 0) out.managedFields = managedFields;
  return out;
}

/** podCIDRManager only looks inside entries naming f:podCIDR(s), so others keep an empty fieldsV1. */
const POD_CIDR_FIELD = Buffer.from('"f:podCIDR');

function readManagedFields(entry: MessageReader): V1ManagedFieldsEntry {
  const out: V1ManagedFieldsEntry = {};
  for (let tag = entry.next(); tag !== undefined; tag = entry.next()) {
    if (tag.field === 1) out.manager = entry.string();
    else if (tag.field === 8) out.subresource = entry.string();
    else if (tag.field === 7) out.fieldsV1 = fieldsV1(entry.message());
    else entry.skip();
  }
  return out;
}

function fieldsV1(fields: MessageReader): object {
  for (let tag = fields.next(); tag !== undefined; tag = fields.next()) {
    if (tag.field !== 1) {
      fields.skip();
      continue;
    }
    const raw = fields.bytes();
    if (raw.includes(POD_CIDR_FIELD)) return JSON.parse(raw.toString('utf8')) as object;
  }
  return {};
}

function readNodeSpec(spec: MessageReader): NonNullable<V1Node['spec']> {
  const out: NonNullable<V1Node['spec']> = {};
  for (let tag = spec.next(); tag !== undefined; tag = spec.next()) {
    if (tag.field === 1) out.podCIDR = spec.string();
    else if (tag.field === 7) (out.podCIDRs ??= []).push(spec.string());
    else spec.skip();
  }
  return out;
}

/** metav1.Time: whole seconds, like its JSON form (nanos are always 0 for object metadata). */
function readTime(time: MessageReader): Date {
  let seconds = 0;
  for (let tag = time.next(); tag !== undefined; tag = time.next()) {
    if (tag.field === 1) seconds = time.int();
    else time.skip();
  }
  return new Date(seconds * 1000);
}
