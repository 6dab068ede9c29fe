// Reads Nodes, NodeLists, watch events and Status replies in the API server's protobuf encoding.
// Only metadata and spec are decoded; status (conditions, images: most of a Node's bytes) is skipped unread.

import type { V1ManagedFieldsEntry, V1Node } from '@kubernetes/client-node';
import { toNodeInfo } from './node-info.js';
import type { NodeInfo } from '../controller/ports.js';
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
 * A NodeList decoded as its bytes arrive. A Node's metadata and spec are read once their bytes are
 * all there; its status (most of its bytes) is dropped as it streams in, never buffered or copied.
 * The envelope's raw field is entered rather than read, since it holds the whole list.
 */
export class NodeListDecoder {
  readonly #queue = new ByteQueue();
  #state: 'magic' | 'envelope' | 'list' | 'node' | 'skip' = 'magic';
  /** Bytes of the NodeList (the envelope's raw field) not yet consumed. */
  #listLeft = 0;
  /** Bytes of the Node being read not yet consumed, and of the field being dropped. */
  #nodeLeft = 0;
  #skipLeft = 0;
  #node: V1Node = {};
  #sawList = false;
  #kind = '';
  readonly #nodes: NodeInfo[] = [];
  #resourceVersion = '';
  #continueToken = '';

  push(chunk: Uint8Array): void {
    this.#queue.push(chunk);
    while (this.#step());
  }

  /** Bytes pushed and held, not yet decoded or dropped. */
  get buffered(): number {
    return this.#queue.length;
  }

  /** The list, once every byte has been pushed; throws when the body ended early. */
  finish(): DecodedNodeList {
    const inList = this.#state === 'envelope' || this.#state === 'list';
    if (!inList || this.#queue.length > 0 || this.#listLeft > 0 || !this.#sawList) {
      const short = this.#queue.length + this.#listLeft + this.#nodeLeft + this.#skipLeft;
      throw new ProtobufError(`NodeList ended early (${this.#state}, ${short} bytes short or left over)`);
    }
    const continueToken = this.#continueToken === '' ? undefined : this.#continueToken;
    return { nodes: this.#nodes, resourceVersion: this.#resourceVersion, continueToken };
  }

  /** Consumes one element if its bytes are all buffered; false when it must wait for more. */
  #step(): boolean {
    switch (this.#state) {
      case 'magic':
        if (this.#queue.length < MAGIC.length) return false;
        expectMagic(this.#queue.take(MAGIC.length));
        this.#state = 'envelope';
        return true;
      case 'skip':
        return this.#skip();
      case 'node':
        return this.#nodeStep();
      default:
        return this.#outerStep();
    }
  }

  /** A field of the envelope or of the NodeList. */
  #outerStep(): boolean {
    if (this.#state === 'list' && this.#listLeft === 0) this.#state = 'envelope';
    const tag = this.#queue.peekVarint();
    if (tag === undefined) return false;
    const field = Math.floor(tag.value / 8);
    if (field === 2 && tag.value % 8 === 2) {
      if (this.#state === 'envelope') return this.#enterList(tag.size);
      return this.#enterNode(tag.size);
    }
    const whole = wholeFieldSize(this.#queue, tag.size, tag.value % 8);
    if (whole === undefined) return false;
    const reader = new MessageReader(this.#queue.take(whole));
    if (this.#state === 'list') {
      this.#consumeList(whole);
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

  /** A NodeList item: its fields are read one by one by #nodeStep. */
  #enterNode(tagSize: number): boolean {
    const length = this.#queue.peekVarint(tagSize);
    if (length === undefined) return false;
    this.#queue.take(tagSize + length.size);
    this.#consumeList(tagSize + length.size + length.value);
    this.#nodeLeft = length.value;
    this.#node = {};
    this.#state = 'node';
    return true;
  }

  #nodeStep(): boolean {
    if (this.#nodeLeft === 0) {
      this.#nodes.push(toNodeInfo(this.#node));
      this.#state = 'list';
      return true;
    }
    const tag = this.#queue.peekVarint();
    if (tag === undefined) return false;
    const field = Math.floor(tag.value / 8);
    if (field !== 1 && field !== 2 && tag.value % 8 === 2) return this.#enterSkip(tag.size);
    const whole = wholeFieldSize(this.#queue, tag.size, tag.value % 8);
    if (whole === undefined) return false;
    this.#nodeLeft -= whole;
    if (this.#nodeLeft < 0) throw new ProtobufError('a Node field runs past the end of the Node');
    const reader = new MessageReader(this.#queue.take(whole));
    reader.next();
    readNodeField(this.#node, field, reader);
    return true;
  }

  /** A length-delimited Node field not read (status): its bytes are dropped as they come. */
  #enterSkip(tagSize: number): boolean {
    const length = this.#queue.peekVarint(tagSize);
    if (length === undefined) return false;
    this.#queue.take(tagSize + length.size);
    this.#nodeLeft -= tagSize + length.size + length.value;
    if (this.#nodeLeft < 0) throw new ProtobufError('a Node field runs past the end of the Node');
    this.#skipLeft = length.value;
    this.#state = 'skip';
    return true;
  }

  #skip(): boolean {
    if (this.#skipLeft > 0) {
      const dropped = this.#queue.drop(this.#skipLeft);
      if (dropped === 0) return false;
      this.#skipLeft -= dropped;
    }
    if (this.#skipLeft === 0) this.#state = 'node';
    return true;
  }

  #consumeList(n: number): void {
    this.#listLeft -= n;
    if (this.#listLeft < 0) throw new ProtobufError('a NodeList field runs past the end of the list');
  }

  #envelopeField(reader: MessageReader): void {
    const tag = reader.next();
    if (tag !== undefined) this.#kind = envelopeField(reader, tag.field) ?? this.#kind;
  }

  /** A NodeList field other than an item: its ListMeta. */
  #listField(reader: MessageReader): void {
    const tag = reader.next();
    if (tag?.field !== 1) {
      if (tag !== undefined) reader.skip();
      return;
    }
    const meta = reader.message();
    for (let m = meta.next(); m !== undefined; m = meta.next()) {
      if (m.field === 2) this.#resourceVersion = meta.string();
      else if (m.field === 3) this.#continueToken = meta.string();
      else meta.skip();
    }
  }
}

/** Size of the field at the front of queue (tag included) when it is all buffered. */
function wholeFieldSize(queue: ByteQueue, tagSize: number, wireType: number): number | undefined {
  let size: number | undefined;
  if (wireType === 0) size = mapDefined(queue.peekVarint(tagSize), (v) => tagSize + v.size);
  else if (wireType === 1) size = tagSize + 8;
  else if (wireType === 5) size = tagSize + 4;
  else if (wireType === 2) size = mapDefined(queue.peekVarint(tagSize), (v) => tagSize + v.size + v.value);
  else throw new ProtobufError(`unsupported wire type ${wireType}`);
  return size !== undefined && size <= queue.length ? size : undefined;
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

/** Depths of the messages a watch frame nests, outermost first. */
const FRAME = 1;
const OBJECT = 2;
const RAW = 3;
const NODE = 4;

/**
 * A protobuf watch stream decoded as its bytes arrive: frames of a 4-byte big-endian length and
 * a metav1.WatchEvent without the envelope, whose object is an enveloped Node (or Status for
 * ERROR; a Node with only a resourceVersion for BOOKMARK). As in a list, a Node's metadata and
 * spec are read once their bytes are there and its status is dropped as it streams in, so an
 * event of tens of KB is never held whole.
 */
export class WatchEventDecoder {
  readonly #queue = new ByteQueue();
  /** Bytes left in each message being read: frame, object (RawExtension), raw (k8s\0 + Unknown), Node. */
  readonly #left: number[] = [];
  #skipLeft = 0;
  #magicPending = false;
  #type = '';
  #kind = '';
  #sawObject = false;
  #node: V1Node = {};
  #status: DecodedStatus | undefined;
  readonly #events: DecodedWatchEvent[] = [];

  /** The events completed by this chunk, in order. */
  push(chunk: Uint8Array): DecodedWatchEvent[] {
    this.#queue.push(chunk);
    while (this.#step());
    return this.#events.splice(0);
  }

  /** Bytes pushed and held, not yet decoded or dropped. */
  get buffered(): number {
    return this.#queue.length;
  }

  #step(): boolean {
    if (this.#skipLeft > 0) return this.#skip();
    const depth = this.#left.length;
    if (depth > 0 && this.#left[depth - 1] === 0) {
      this.#close(depth);
      return true;
    }
    if (depth === 0) return this.#openFrame();
    if (depth === RAW && this.#magicPending) return this.#readMagic();
    const tag = this.#queue.peekVarint();
    if (tag === undefined) return false;
    const field = Math.floor(tag.value / 8);
    const wireType = tag.value % 8;
    if (wireType === 2 && this.#opens(depth, field)) return this.#enter(tag.size, depth);
    if (depth === NODE && wireType === 2 && field !== 1 && field !== 2) return this.#enterSkip(tag.size);
    const whole = wholeFieldSize(this.#queue, tag.size, wireType);
    if (whole === undefined) return false;
    const reader = new MessageReader(this.#take(whole));
    reader.next();
    this.#field(depth, field, reader);
    return true;
  }

  /** Whether this field is a message read field by field rather than whole. */
  #opens(depth: number, field: number): boolean {
    if (depth === FRAME || depth === OBJECT) return field === (depth === FRAME ? 2 : 1);
    return depth === RAW && field === 2 && this.#kind !== 'Status';
  }

  #openFrame(): boolean {
    const length = this.#queue.peekUInt32BE();
    if (length === undefined) return false;
    this.#queue.take(4);
    this.#left.push(length);
    this.#type = '';
    this.#kind = '';
    this.#sawObject = false;
    this.#node = {};
    this.#status = undefined;
    return true;
  }

  #readMagic(): boolean {
    if (this.#queue.length < MAGIC.length) return false;
    expectMagic(this.#take(MAGIC.length));
    this.#magicPending = false;
    return true;
  }

  #enter(tagSize: number, depth: number): boolean {
    const length = this.#queue.peekVarint(tagSize);
    if (length === undefined) return false;
    this.#take(tagSize + length.size);
    this.#within(length.value);
    this.#left.push(length.value);
    if (depth === OBJECT) this.#magicPending = true;
    if (depth === FRAME) this.#sawObject = true;
    return true;
  }

  #enterSkip(tagSize: number): boolean {
    const length = this.#queue.peekVarint(tagSize);
    if (length === undefined) return false;
    this.#take(tagSize + length.size);
    this.#within(length.value);
    this.#skipLeft = length.value;
    return true;
  }

  #skip(): boolean {
    const dropped = this.#queue.drop(this.#skipLeft);
    if (dropped === 0) return false;
    this.#skipLeft -= dropped;
    this.#consume(dropped);
    return true;
  }

  #field(depth: number, field: number, reader: MessageReader): void {
    if (depth === FRAME && field === 1) this.#type = reader.string();
    else if (depth === RAW && field === 2) this.#status = readStatus(reader.message());
    else if (depth === RAW) this.#kind = envelopeField(reader, field) ?? this.#kind;
    else if (depth === NODE) readNodeField(this.#node, field, reader);
    else reader.skip();
  }

  #close(depth: number): void {
    this.#left.pop();
    if (depth === RAW && this.#magicPending) throw new ProtobufError('watch event object ends before its k8s\\0 prefix');
    if (depth === FRAME) this.#events.push(this.#event());
  }

  #event(): DecodedWatchEvent {
    if (!this.#sawObject) throw new ProtobufError(`watch event ${this.#type} carries no object`);
    switch (this.#type) {
      case 'ADDED':
      case 'MODIFIED':
      case 'DELETED':
        expectKind(this.#kind, 'Node');
        return { type: this.#type, node: toNodeInfo(this.#node) };
      case 'BOOKMARK':
        expectKind(this.#kind, 'Node');
        return { type: this.#type, resourceVersion: this.#node.metadata?.resourceVersion ?? '' };
      case 'ERROR':
        expectKind(this.#kind, 'Status');
        return { type: this.#type, status: this.#status ?? { code: 0, reason: '', message: '' } };
      default:
        throw new ProtobufError(`unknown watch event type "${this.#type}"`);
    }
  }

  /** A field of n bytes after its header must fit in the message holding it. */
  #within(n: number): void {
    const left = this.#left[this.#left.length - 1] ?? Infinity;
    if (n > left) throw new ProtobufError('a watch event field runs past the end of its message');
  }

  #take(n: number): Buffer {
    const bytes = this.#queue.take(n);
    this.#consume(n);
    return bytes;
  }

  /** n bytes read or dropped count against every message they sit in. */
  #consume(n: number): void {
    for (let i = 0; i < this.#left.length; i++) {
      const left = (this.#left[i] ?? 0) - n;
      if (left < 0) throw new ProtobufError('a watch event field runs past the end of its message');
      this.#left[i] = left;
    }
  }
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
 * One Node field whose tag the reader has just read: metadata (1) and spec (2) are kept, in the shape
 * toNodeInfo reads, so both encodings go through the same conversion.
 */
function readNodeField(into: V1Node, field: number, node: MessageReader): void {
  if (field === 1) into.metadata = readObjectMeta(node.message());
  else if (field === 2) into.spec = readNodeSpec(node.message());
  else node.skip();
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
      case 11:
        readMapEntry(meta.message(), (out.labels ??= {}));
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

/** One entry of a map<string, string> (key = 1, value = 2); an absent value is "". */
function readMapEntry(entry: MessageReader, into: Record<string, string>): void {
  let key = '';
  let value = '';
  for (let tag = entry.next(); tag !== undefined; tag = entry.next()) {
    if (tag.field === 1) key = entry.string();
    else if (tag.field === 2) value = entry.string();
    else entry.skip();
  }
  into[key] = value;
}

/** podCIDRManager only looks inside entries naming f:podCIDR(s), so others keep an empty fieldsV1. */
const POD_CIDR_FIELD = Buffer.from('"f:podCIDR');

function readManagedFields(entry: MessageReader): V1ManagedFieldsEntry {
  const out: V1ManagedFieldsEntry = {};
  let fields: MessageReader | undefined;
  for (let tag = entry.next(); tag !== undefined; tag = entry.next()) {
    if (tag.field === 1) out.manager = entry.string();
    else if (tag.field === 8) out.subresource = entry.string();
    else if (tag.field === 7) fields = entry.message();
    else entry.skip();
  }
  // A subresource entry (the kubelet's status, the largest) never owns spec: its fields go unsearched.
  if (fields !== undefined) out.fieldsV1 = out.subresource ? {} : fieldsV1(fields);
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
