// CIDR values: strict parsing into {family, base, prefix, bits}, canonical text, containment.
// A parsed Cidr always has its host bits clear; anything else is a CidrParseError quoting the input.

import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './address.js';

export type IpFamily = 'IPv4' | 'IPv6';

export interface Cidr {
  readonly family: IpFamily;
  /** The network address as an unsigned integer (host bits are zero). */
  readonly base: bigint;
  readonly prefix: number;
  /** Address width: 32 or 128. */
  readonly bits: 32 | 128;
}

/**
 * The Cidr the parser and the arithmetic here make: a value whose text, in a template, a join, a log
 * line or JSON, is its canonical form, so a range printed anywhere reads as the operator wrote it.
 */
class CidrValue implements Cidr {
  constructor(
    readonly family: IpFamily,
    readonly base: bigint,
    readonly prefix: number,
    readonly bits: 32 | 128,
  ) {}

  toString(): string {
    return formatCidr(this);
  }

  toJSON(): string {
    return formatCidr(this);
  }
}

/** A Cidr of that family and width; host bits of base must be clear. */
export function cidrOf(family: IpFamily, base: bigint, prefix: number): Cidr {
  return new CidrValue(family, base, prefix, family === 'IPv4' ? 32 : 128);
}

/** Thrown for text that is not a valid, canonical-network CIDR; `reason` states the rule broken. */
export class CidrParseError extends Error {
  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super(`invalid CIDR ${JSON.stringify(input)}: ${reason}`);
    this.name = 'CidrParseError';
  }
}

const words = new Uint32Array(4);

/** Parses "address/prefix"; throws CidrParseError. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  if (slash < 0) {
    throw new CidrParseError(text, 'missing prefix length (expected address/prefix, e.g. 10.244.0.0/16)');
  }
  const family: IpFamily = text.lastIndexOf(':', slash) >= 0 ? 'IPv6' : 'IPv4';
  const bits = family === 'IPv4' ? 32 : 128;
  const prefix = parsePrefix(text, slash + 1);
  if (prefix < 0) {
    throw new CidrParseError(text, 'prefix length must be a decimal number without leading zeros');
  }
  const width = family === 'IPv4' ? 1 : 4;
  if (family === 'IPv4') {
    const value = parseIPv4(text, 0, slash);
    if (value < 0) throw new CidrParseError(text, `${JSON.stringify(text.slice(0, slash))} is not an IPv4 address`);
    words[0] = value;
  } else if (!parseIPv6(text, 0, slash, words)) {
    throw new CidrParseError(text, `${JSON.stringify(text.slice(0, slash))} is not an IPv6 address`);
  }
  if (prefix > bits) {
    throw new CidrParseError(text, `prefix length ${prefix} is longer than the ${bits} bits of an ${family} address`);
  }
  const base = wordsToBigint(words, width);
  const network = base & prefixMask(bits, prefix);
  const cidr = new CidrValue(family, network, prefix, bits);
  if (network !== base) {
    throw new CidrParseError(text, `host bits set (did you mean ${formatCidr(cidr)}?)`);
  }
  return cidr;
}

/** Like parseCidr, but returns undefined instead of throwing. */
export function tryParseCidr(text: string): Cidr | undefined {
  try {
    return parseCidr(text);
  } catch (error) {
    if (error instanceof CidrParseError) return undefined;
    throw error;
  }
}

/** Parses the decimal prefix after the slash; -1 when empty, non-decimal, or with a leading zero. */
function parsePrefix(text: string, start: number): number {
  const end = text.length;
  if (start === end) return -1;
  if (text.charCodeAt(start) === 48 && end - start > 1) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    value = value * 10 + (c - 48);
  }
  return value;
}

/** True when a and b are the same network: family, base and prefix. */
export function sameCidr(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.base === b.base && a.prefix === b.prefix;
}

/** Canonical text: dotted quad, or RFC 5952 for IPv6. */
export function formatCidr(cidr: Cidr): string {
  return `${formatAddress(cidr.family, cidr.base)}/${cidr.prefix}`;
}

export function formatAddress(family: IpFamily, address: bigint): string {
  if (family === 'IPv4') return formatIPv4(Number(address));
  const out = new Uint32Array(4);
  bigintToWords(address, out, 4);
  return formatIPv6(out);
}

/** Parses and re-formats; throws CidrParseError. */
export function canonicalCidr(text: string): string {
  return formatCidr(parseCidr(text));
}

export function prefixMask(bits: number, prefix: number): bigint {
  const all = (1n << BigInt(bits)) - 1n;
  return all ^ ((1n << BigInt(bits - prefix)) - 1n);
}

/** The CIDR of `prefix` bits holding `base` (host bits cleared), e.g. the node subnet around a /25. */
export function makeCidr(like: Cidr, base: bigint, prefix: number): Cidr {
  return new CidrValue(like.family, base & prefixMask(like.bits, prefix), prefix, like.bits);
}

/** The CIDRs of `prefix` bits (at least cidr.prefix) that make up `cidr`, lowest first. */
export function* subnetsOf(cidr: Cidr, prefix: number): Generator<Cidr> {
  const step = 1n << BigInt(cidr.bits - prefix);
  const count = 1n << BigInt(prefix - cidr.prefix);
  for (let i = 0n; i < count; i++) yield makeCidr(cidr, cidr.base + i * step, prefix);
}

/** The highest address inside the CIDR. */
export function lastAddress(cidr: Cidr): bigint {
  return cidr.base | ((1n << BigInt(cidr.bits - cidr.prefix)) - 1n);
}

/** True when `inner` lies entirely inside `outer` (a CIDR contains itself). */
export function contains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  const shift = BigInt(outer.bits - outer.prefix);
  return outer.base >> shift === inner.base >> shift;
}

/** True when the two CIDRs share at least one address (for CIDRs: one contains the other). */
export function overlaps(a: Cidr, b: Cidr): boolean {
  return contains(a, b) || contains(b, a);
}

export function wordsToBigint(source: Uint32Array, width: number): bigint {
  let value = 0n;
  for (let k = 0; k < width; k++) value = (value << 32n) | BigInt(source[k] ?? 0);
  return value;
}

export function bigintToWords(value: bigint, out: Uint32Array, width: number): void {
  for (let k = width - 1; k >= 0; k--) {
    out[k] = Number(value & 0xffffffffn);
    value >>= 32n;
  }
}
