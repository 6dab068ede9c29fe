// A minimal protocol-buffers reader: walks the fields of one message and skips what the caller ignores.
// Skipping a length-delimited field costs O(1), which is why a Node's status (tens of KB) is never read.

/** The bytes are not a well-formed message of the expected shape. */
export class ProtobufError extends Error {
  constructor(message: string) {
    super(`protobuf: ${message}`);
    this.name = 'ProtobufError';
  }
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

/** One field as read by MessageReader.next(): its number and wire type; the value is read next. */
export interface FieldTag {
  readonly field: number;
  readonly wireType: number;
}

/**
 * Reads the fields of the message in buf[start, end) in order. After next() returns a tag the
 * caller reads its value with one of the typed readers or skip(); every tag must be consumed.
 */
export class MessageReader {
  readonly #buf: Buffer;
  #pos: number;
  readonly #end: number;
  #wireType = -1;

  constructor(buf: Buffer, start = 0, end = buf.length) {
    if (start < 0 || end > buf.length || start > end) throw new ProtobufError(`bad range [${start}, ${end})`);
    this.#buf = buf;
    this.#pos = start;
    this.#end = end;
  }

  /** The next field's tag, or undefined at the end of the message. */
  next(): FieldTag | undefined {
    if (this.#pos >= this.#end) return undefined;
    const key = this.#varint();
    const field = Math.floor(key / 8);
    this.#wireType = key % 8;
    if (field === 0) throw new ProtobufError('field number 0');
    return { field, wireType: this.#wireType };
  }

  /** A varint field as a number; exact up to 2^53, which covers every int32/int64 read here. */
  uint(): number {
    this.#expect(WIRE_VARINT);
    return this.#varint();
  }

  /** An int32/int64 varint; negative values are ten-byte two's complement, so bigint reads them exactly. */
  int(): number {
    this.#expect(WIRE_VARINT);
    let value = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.#pos >= this.#end) throw new ProtobufError('truncated varint');
      const byte = this.#buf[this.#pos++] ?? 0;
      value |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return Number(BigInt.asIntN(64, value));
      shift += 7n;
    }
    throw new ProtobufError('varint longer than 10 bytes');
  }

  string(): string {
    const [start, end] = this.#bytesRange();
    return this.#buf.toString('utf8', start, end);
  }

  /** A length-delimited field as a view into the buffer (no copy). */
  bytes(): Buffer {
    const [start, end] = this.#bytesRange();
    return this.#buf.subarray(start, end);
  }

  /** A reader over an embedded message. */
  message(): MessageReader {
    const [start, end] = this.#bytesRange();
    return new MessageReader(this.#buf, start, end);
  }

  skip(): void {
    switch (this.#wireType) {
      case WIRE_VARINT:
        this.#varint();
        break;
      case WIRE_FIXED64:
        this.#advance(8);
        break;
      case WIRE_BYTES:
        this.#bytesRange();
        break;
      case WIRE_FIXED32:
        this.#advance(4);
        break;
      default:
        throw new ProtobufError(`unsupported wire type ${this.#wireType}`);
    }
  }

  #bytesRange(): [number, number] {
    this.#expect(WIRE_BYTES);
    const length = this.#varint();
    const start = this.#pos;
    this.#advance(length);
    return [start, start + length];
  }

  #advance(n: number): void {
    if (this.#pos + n > this.#end) throw new ProtobufError('field runs past the end of its message');
    this.#pos += n;
  }

  #expect(wireType: number): void {
    if (this.#wireType !== wireType) throw new ProtobufError(`wire type ${this.#wireType}, expected ${wireType}`);
    this.#wireType = -1;
  }

  #varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.#pos >= this.#end) throw new ProtobufError('truncated varint');
      const byte = this.#buf[this.#pos++] ?? 0;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw new ProtobufError('varint longer than 10 bytes');
  }
}

/**
 * Bytes arriving in chunks, read from the front. Chunks are joined only when a read spans them, so
 * a long message streams through with about one chunk buffered beside the field being read.
 */
export class ByteQueue {
  #chunks: Buffer[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.#chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.#length += chunk.byteLength;
  }

  /** The varint starting `offset` bytes in, with its size; undefined while it is incomplete. */
  peekVarint(offset = 0): { value: number; size: number } | undefined {
    const head = this.#chunks[0];
    if (head !== undefined && offset + 10 <= head.length) return varintAt(head, offset);
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const byte = this.#byteAt(offset + i);
      if (byte === undefined) return undefined;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return { value, size: i + 1 };
      scale *= 128;
    }
    throw new ProtobufError('varint longer than 10 bytes');
  }

  /** The big-endian uint32 at the front; undefined while fewer than 4 bytes are buffered. */
  peekUInt32BE(): number | undefined {
    if (this.#length < 4) return undefined;
    let value = 0;
    for (let i = 0; i < 4; i++) value = value * 256 + (this.#byteAt(i) ?? 0);
    return value;
  }

  /** Removes and returns the first n bytes (n <= length), joining only the chunks they span. */
  take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.#chunks[0];
    if (first === undefined || n > this.#length) throw new ProtobufError(`take ${n} of ${this.#length} bytes`);
    if (first.length < n) this.#join(n);
    const head = this.#chunks[0] ?? first;
    const taken = head.subarray(0, n);
    if (head.length === n) this.#chunks.shift();
    else this.#chunks[0] = head.subarray(n);
    this.#length -= n;
    return taken;
  }

  /** Removes up to n bytes from the front without copying them; returns how many. */
  drop(n: number): number {
    let dropped = 0;
    while (dropped < n) {
      const head = this.#chunks[0];
      if (head === undefined) break;
      const k = Math.min(head.length, n - dropped);
      if (k === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(k);
      dropped += k;
    }
    this.#length -= dropped;
    return dropped;
  }

  /** Makes the first chunk at least n bytes long by joining it with the chunks after it. */
  #join(n: number): void {
    let count = 0;
    for (let size = 0; size < n; count++) size += this.#chunks[count]?.length ?? n;
    const joined = Buffer.concat(this.#chunks.slice(0, count));
    this.#chunks.splice(0, count, joined);
  }

  #byteAt(index: number): number | undefined {
    if (index >= this.#length) return undefined;
    for (const chunk of this.#chunks) {
      if (index < chunk.length) return chunk[index];
      index -= chunk.length;
    }
    return undefined;
  }
}

/** The varint at buf[at], which has at least 10 bytes from there. */
function varintAt(buf: Buffer, at: number): { value: number; size: number } {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    const byte = buf[at + i] ?? 0;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return { value, size: i + 1 };
    scale *= 128;
  }
  throw new ProtobufError('varint longer than 10 bytes');
}
