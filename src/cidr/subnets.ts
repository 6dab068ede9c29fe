// Subnet index <-> CIDR for one cluster CIDR cut into node subnets of one mask.
// Hot paths (format an index, read a node's CIDR text back to its index) use 32-bit words only.

import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './address.js';
import { bigintToWords, contains, formatCidr, lastAddress, makeCidr, type Cidr } from './cidr.js';

/** Largest index width the word arithmetic supports; the allocator sets its own, lower limit. */
export const MAX_INDEX_BITS = 32;

/** Inclusive range of subnet indices. */
export interface IndexSpan {
  readonly begin: number;
  readonly end: number;
}

export class SubnetCodec {
  readonly cluster: Cidr;
  readonly nodeMask: number;
  /** Number of node subnets: 2^(nodeMask - cluster prefix). */
  readonly count: number;
  /** CIDR text of the cluster, canonical. */
  readonly clusterText: string;

  readonly #width: number;
  readonly #shift: number;
  readonly #indexBits: number;
  readonly #indexMask: number;
  readonly #base: Uint32Array;
  /** Per word: bits fixed by the cluster prefix (must equal #base). */
  readonly #clusterBits: Uint32Array;
  /** Per word: bits below the node mask (must be zero in a node subnet). */
  readonly #hostBits: Uint32Array;
  readonly #scratch: Uint32Array;
  /**
   * IPv4 copies of word 0 of #base, #clusterBits and #hostBits as plain numbers, read by the two hot
   * paths without a bounds fallback (docs/decisions/0003-memory-tricks-behind-names.md).
   */
  readonly #base0: number;
  readonly #clusterMask0: number;
  readonly #hostMask0: number;
  /** "/" + nodeMask, built once. */
  readonly #suffix: string;

  constructor(cluster: Cidr, nodeMask: number) {
    const indexBits = nodeMask - cluster.prefix;
    if (!Number.isInteger(nodeMask) || nodeMask > cluster.bits || indexBits < 0 || indexBits > MAX_INDEX_BITS) {
      throw new RangeError(`node mask /${nodeMask} does not fit cluster CIDR ${formatCidr(cluster)}`);
    }
    this.cluster = cluster;
    this.nodeMask = nodeMask;
    this.count = 2 ** indexBits;
    this.clusterText = formatCidr(cluster);
    this.#width = cluster.bits / 32;
    this.#shift = cluster.bits - nodeMask;
    this.#indexBits = indexBits;
    this.#indexMask = indexBits === 0 ? 0 : 0xffffffff >>> (32 - indexBits);
    this.#base = new Uint32Array(this.#width);
    bigintToWords(cluster.base, this.#base, this.#width);
    this.#clusterBits = maskWords(cluster.bits, 0, cluster.prefix);
    this.#hostBits = maskWords(cluster.bits, nodeMask, cluster.bits);
    this.#scratch = new Uint32Array(this.#width);
    this.#base0 = this.#base[0] ?? 0;
    this.#clusterMask0 = this.#clusterBits[0] ?? 0;
    this.#hostMask0 = this.#hostBits[0] ?? 0;
    this.#suffix = `/${nodeMask}`;
  }

  /** Canonical text of subnet `index` (0 <= index < count). */
  format(index: number): string {
    if (this.#width === 1) {
      // IPv4: one word, no typed-array round trip. Index bits are zero in the base, so OR adds.
      return formatIPv4((this.#base0 | (index << this.#shift)) >>> 0, this.nodeMask);
    }
    const words = this.#scratch;
    words.set(this.#base);
    this.#deposit(words, index);
    return formatIPv6(words, this.nodeMask);
  }

  /**
   * The index of `text` when it is exactly one node subnet of this cluster, else -1. Never throws:
   * text that is invalid, of another size or outside the cluster gets -1, and callers that need the
   * reason fall back to parseCidr + span.
   */
  indexOf(text: string): number {
    // A node subnet ends in exactly "/<nodeMask>": check that instead of searching for the slash.
    const suffix = this.#suffix;
    const slash = text.length - suffix.length;
    if (slash <= 0) return -1;
    for (let k = 0; k < suffix.length; k++) {
      if (text.charCodeAt(slash + k) !== suffix.charCodeAt(k)) return -1;
    }
    if (this.#width === 1) {
      const value = parseIPv4(text, 0, slash);
      if (value < 0 || ((value ^ this.#base0) & this.#clusterMask0) !== 0 || (value & this.#hostMask0) !== 0) return -1;
      return this.#indexBits === 0 ? 0 : ((value >>> this.#shift) & this.#indexMask) >>> 0;
    }
    const words = this.#scratch;
    if (!parseIPv6(text, 0, slash, words)) return -1;
    for (let k = 0; k < this.#width; k++) {
      const word = words[k] ?? 0;
      if (((word ^ (this.#base[k] ?? 0)) & (this.#clusterBits[k] ?? 0)) !== 0) return -1;
      if ((word & (this.#hostBits[k] ?? 0)) !== 0) return -1;
    }
    return this.#extract(words);
  }

  /** The subnet at `index` as a Cidr value (slow path: bigint). */
  cidrAt(index: number): Cidr {
    const base = this.cluster.base | (BigInt(index) << BigInt(this.#shift));
    return makeCidr(this.cluster, base, this.nodeMask);
  }

  /**
   * The node subnets `cidr` touches, or undefined when it shares no address with the cluster.
   * Larger than a node subnet: every subnet it covers; smaller: the one subnet holding it; a CIDR
   * containing the whole cluster covers every subnet.
   */
  span(cidr: Cidr): IndexSpan | undefined {
    if (contains(cidr, this.cluster)) return { begin: 0, end: this.count - 1 };
    if (!contains(this.cluster, cidr)) return undefined;
    const shift = BigInt(this.#shift);
    const begin = Number((cidr.base - this.cluster.base) >> shift);
    const end = Number((lastAddress(cidr) - this.cluster.base) >> shift);
    return { begin, end };
  }

  /** ORs index << shift into the words; the cluster base has zeros there. */
  #deposit(words: Uint32Array, index: number): void {
    if (this.#indexBits === 0) return;
    const low = this.#width - 1 - (this.#shift >>> 5);
    const offset = this.#shift & 31;
    words[low] = ((words[low] ?? 0) | (index << offset)) >>> 0;
    if (offset + this.#indexBits > 32 && low > 0) {
      words[low - 1] = ((words[low - 1] ?? 0) | (index >>> (32 - offset))) >>> 0;
    }
  }

  #extract(words: Uint32Array): number {
    if (this.#indexBits === 0) return 0;
    const low = this.#width - 1 - (this.#shift >>> 5);
    const offset = this.#shift & 31;
    let value = (words[low] ?? 0) >>> offset;
    if (offset + this.#indexBits > 32 && low > 0) value |= (words[low - 1] ?? 0) << (32 - offset);
    return (value & this.#indexMask) >>> 0;
  }
}

/** Per-word masks with ones at address bits [from, to), counted from the most significant bit. */
function maskWords(bits: number, from: number, to: number): Uint32Array {
  const width = bits / 32;
  const out = new Uint32Array(width);
  for (let k = 0; k < width; k++) {
    const lo = Math.max(from, k * 32);
    const hi = Math.min(to, k * 32 + 32);
    if (hi <= lo) continue;
    const length = hi - lo;
    const ones = length === 32 ? 0xffffffff : ((1 << length) - 1) >>> 0;
    out[k] = (ones << (32 - (lo - k * 32) - length)) >>> 0;
  }
  return out;
}
