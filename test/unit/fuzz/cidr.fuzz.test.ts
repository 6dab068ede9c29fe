// Fuzzing the CIDR parser with arbitrary text and with mutations of valid CIDRs: it throws nothing but
// CidrParseError, whatever it accepts round-trips through its canonical text, and accepts only real addresses.

import { isIPv4, isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CidrParseError, formatCidr, parseCidr, type Cidr } from '../../../src/cidr/index.js';

const RUNS = 2_000;

/** Parses, or returns the CidrParseError; anything else thrown fails the property. */
function attempt(text: string): Cidr | CidrParseError {
  try {
    return parseCidr(text);
  } catch (err) {
    if (err instanceof CidrParseError) return err;
    throw new Error(`parseCidr(${JSON.stringify(text)}) threw ${String(err)}`, { cause: err });
  }
}

/** The properties every input must keep, accepted or not. */
function checkOne(text: string): void {
  const result = attempt(text);
  if (result instanceof CidrParseError) {
    expect(result.input).toBe(text);
    expect(result.message).not.toContain('\n');
    return;
  }
  const canonical = formatCidr(result);
  const again = parseCidr(canonical);
  expect(again).toEqual(result);
  expect(formatCidr(again)).toBe(canonical);
  // What was accepted is a real address of the family reported, with a prefix that fits it.
  const slash = text.indexOf('/');
  const address = text.slice(0, slash);
  expect(result.family === 'IPv4' ? isIPv4(address) : isIPv6(address)).toBe(true);
  expect(result.prefix).toBeLessThanOrEqual(result.bits);
  expect(text.slice(slash + 1)).toBe(String(result.prefix));
}

const cidrChars = fc.constantFrom(...'0123456789abcdefABCDEF.:/%[]-+ x\u0000\u00b2\u0661'.split(''));
const cidrLike = fc.string({ unit: cidrChars, maxLength: 48 });

const ipv4 = fc
  .tuple(fc.nat({ max: 0xffffffff }), fc.integer({ min: 0, max: 32 }))
  .map(([value, prefix]) => {
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    const base = (value & mask) >>> 0;
    return `${[24, 16, 8, 0].map((s) => (base >>> s) & 0xff).join('.')}/${prefix}`;
  });

const ipv6 = fc
  .tuple(fc.array(fc.constantFrom(0, 0, 0, 1, 0xfd00, 0xabcd, 0xffff), { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 128 }))
  .map(([groups, prefix]) => {
    let value = groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
    value &= prefix === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - prefix)) - 1n);
    const parts: string[] = [];
    for (let i = 7; i >= 0; i--) parts.push(((value >> BigInt(i * 16)) & 0xffffn).toString(16));
    return `${parts.join(':')}/${prefix}`;
  });

const valid = fc.oneof(ipv4, ipv6, ipv6.map((t) => formatCidr(parseCidr(t))));

type Mutation = { kind: 'insert' | 'replace'; at: number; char: string } | { kind: 'delete' | 'duplicate'; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), char: cidrChars }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), char: cidrChars }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat() }),
);

function mutate(text: string, m: Mutation): string {
  const at = text.length === 0 ? 0 : m.at % text.length;
  switch (m.kind) {
    case 'insert':
      return text.slice(0, at) + m.char + text.slice(at);
    case 'replace':
      return text.slice(0, at) + m.char + text.slice(at + 1);
    case 'delete':
      return text.slice(0, at) + text.slice(at + 1);
    case 'duplicate':
      return text.slice(0, at) + text.slice(at, at + 3) + text.slice(at);
  }
}

describe('parseCidr under fuzzing', () => {
  it('throws only CidrParseError on arbitrary strings and round-trips what it accepts', () => {
    fc.assert(fc.property(fc.string({ maxLength: 64 }), checkOne), { numRuns: RUNS / 2 });
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 64 }), checkOne), { numRuns: RUNS / 2 });
  });

  it('throws only CidrParseError on CIDR-like strings and round-trips what it accepts', () => {
    fc.assert(fc.property(cidrLike, checkOne), { numRuns: RUNS * 3 });
  });

  it('accepts every valid CIDR, in full or compressed IPv6 form', () => {
    fc.assert(
      fc.property(valid, (text) => {
        const result = attempt(text);
        expect(result).not.toBeInstanceOf(CidrParseError);
        checkOne(text);
      }),
      { numRuns: RUNS },
    );
  });

  it('throws only CidrParseError on mutated valid CIDRs and round-trips what it still accepts', () => {
    fc.assert(
      fc.property(valid, fc.array(mutation, { minLength: 1, maxLength: 4 }), (text, mutations) => {
        checkOne(mutations.reduce(mutate, text));
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('refuses an IPv4 CIDR with any host bit set', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.integer({ min: 0, max: 31 }), (value, prefix) => {
        const host = prefix === 0 ? value : value & ((1 << (32 - prefix)) - 1);
        fc.pre(host !== 0);
        const text = `${[24, 16, 8, 0].map((s) => (value >>> s) & 0xff).join('.')}/${prefix}`;
        const result = attempt(text);
        expect(result).toBeInstanceOf(CidrParseError);
        if (result instanceof CidrParseError) expect(result.reason).toMatch(/host bits set/);
      }),
      { numRuns: RUNS },
    );
  });
});
