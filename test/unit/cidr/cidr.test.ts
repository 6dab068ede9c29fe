// Parsing, canonical text and containment of CIDRs, with ip-address as the oracle for random input.
// Every rejection must be a CidrParseError quoting the input and naming the rule.

import { Address4, Address6 } from 'ip-address';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CidrParseError,
  canonicalCidr,
  contains,
  formatCidr,
  lastAddress,
  overlaps,
  parseCidr,
  tryParseCidr,
} from '../../../src/cidr/index.js';

describe('parseCidr', () => {
  it.each([
    ['10.233.64.0/18', 'IPv4', 18, '10.233.64.0/18'],
    ['0.0.0.0/0', 'IPv4', 0, '0.0.0.0/0'],
    ['255.255.255.255/32', 'IPv4', 32, '255.255.255.255/32'],
    ['fd00:10:244::/56', 'IPv6', 56, 'fd00:10:244::/56'],
    ['FD00:0010:0244:0000:0000:0000:0000:0000/48', 'IPv6', 48, 'fd00:10:244::/48'],
    ['::/0', 'IPv6', 0, '::/0'],
    ['2001:db8:0:0:1:0:0:0/128', 'IPv6', 128, '2001:db8:0:0:1::/128'],
    ['2001:db8:0:0:1:0:0:1/128', 'IPv6', 128, '2001:db8::1:0:0:1/128'],
    ['2001:db8::1:0:0:1/128', 'IPv6', 128, '2001:db8::1:0:0:1/128'],
    ['2001:0:db8:1:2:3:4:5/128', 'IPv6', 128, '2001:0:db8:1:2:3:4:5/128'],
    ['::ffff:10.0.0.0/120', 'IPv6', 120, '::ffff:a00:0/120'],
  ])('accepts %s as %s /%i with canonical text %s', (input, family, prefix, canonical) => {
    const cidr = parseCidr(input);
    expect(cidr.family).toBe(family);
    expect(cidr.prefix).toBe(prefix);
    expect(cidr.bits).toBe(family === 'IPv4' ? 32 : 128);
    expect(formatCidr(cidr)).toBe(canonical);
  });

  it.each([
    ['10.233.64.5/18', 'host bits set (did you mean 10.233.64.0/18?)'],
    ['fd00:10:244::1/64', 'host bits set (did you mean fd00:10:244::/64?)'],
    ['10.0.0.0/33', 'prefix length 33 is longer than the 32 bits of an IPv4 address'],
    ['fd00::/129', 'prefix length 129 is longer than the 128 bits of an IPv6 address'],
    ['10.0.0.0', 'missing prefix length'],
    ['fd00::', 'missing prefix length'],
    ['10.0.0.0/', 'prefix length must be a decimal number'],
    ['10.0.0.0/08', 'prefix length must be a decimal number without leading zeros'],
    ['10.0.0.0/-1', 'prefix length must be a decimal number'],
    ['10.0.0.0/2a', 'prefix length must be a decimal number'],
    ['010.0.0.0/8', 'is not an IPv4 address'],
    ['10.0.0/8', 'is not an IPv4 address'],
    ['10.0.0.256/32', 'is not an IPv4 address'],
    ['10.0.0.0.0/8', 'is not an IPv4 address'],
    [' 10.0.0.0/8', 'is not an IPv4 address'],
    ['garbage', 'missing prefix length'],
    ['garbage/8', 'is not an IPv4 address'],
    ['', 'missing prefix length'],
    ['fd00:::/64', 'is not an IPv6 address'],
    ['fd00::1::/64', 'is not an IPv6 address'],
    ['1:2:3:4:5:6:7:8:9/64', 'is not an IPv6 address'],
    ['1:2:3:4:5:6:7/64', 'is not an IPv6 address'],
    ['::1:2:3:4:5:6:7:8/64', 'is not an IPv6 address'],
    ['fd00:12345::/64', 'is not an IPv6 address'],
    ['fe80::1%eth0/64', 'is not an IPv6 address'],
    ['fd00:g::/64', 'is not an IPv6 address'],
    [':fd00::/64', 'is not an IPv6 address'],
    ['fd00:/64', 'is not an IPv6 address'],
  ])('rejects %j: %s', (input, rule) => {
    let thrown: unknown;
    try {
      parseCidr(input);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(CidrParseError);
    const error = thrown as CidrParseError;
    expect(error.input).toBe(input);
    expect(error.message).toContain(`invalid CIDR ${JSON.stringify(input)}: `);
    expect(error.message).toContain(rule);
    expect(tryParseCidr(input)).toBeUndefined();
  });

  it('agrees with ip-address on random IPv4 networks', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.integer({ min: 0, max: 32 }), (value, prefix) => {
        const network = new Address4(`${Address4.fromBigInt(BigInt(value)).correctForm()}/${prefix}`).startAddress();
        const text = `${network.correctForm()}/${prefix}`;
        const cidr = parseCidr(text);
        expect(cidr.base).toBe(network.bigInt());
        expect(formatCidr(cidr)).toBe(text);
      }),
    );
  });

  it('agrees with ip-address on random IPv6 networks, in compressed and full form', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.integer({ min: 0, max: 128 }), (value, prefix) => {
        const start = new Address6(`${Address6.fromBigInt(value).correctForm()}/${prefix}`).startAddress();
        const compressed = `${start.correctForm()}/${prefix}`;
        expect(formatCidr(parseCidr(compressed))).toBe(compressed);
        const full = parseCidr(`${start.canonicalForm()}/${prefix}`);
        expect(full.base).toBe(start.bigInt());
        expect(formatCidr(full)).toBe(compressed);
      }),
    );
  });

  it('formats runs of zero groups the way RFC 5952 asks', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(0, 0, 0, 1, 0xabcd), { minLength: 8, maxLength: 8 }), (groups) => {
        const text = `${groups.map((g) => g.toString(16)).join(':')}/128`;
        const expected = `${new Address6(text).correctForm()}/128`;
        expect(canonicalCidr(text)).toBe(expected);
      }),
    );
  });
});

describe('contains and overlaps', () => {
  it.each([
    ['10.0.0.0/8', '10.1.0.0/16', true, true],
    ['10.1.0.0/16', '10.0.0.0/8', false, true],
    ['10.0.0.0/16', '10.0.0.0/16', true, true],
    ['10.0.0.0/16', '10.1.0.0/16', false, false],
    ['0.0.0.0/0', '192.168.1.0/24', true, true],
    ['fd00::/48', 'fd00:0:0:ff::/64', true, true],
    ['fd00::/48', 'fd00:1::/64', false, false],
    ['::/0', 'fd00::/8', true, true],
    ['10.0.0.0/8', 'fd00::/8', false, false],
    ['::/0', '0.0.0.0/0', false, false],
  ])('%s contains %s: %s, overlaps: %s', (outer, inner, contained, overlapping) => {
    expect(contains(parseCidr(outer), parseCidr(inner))).toBe(contained);
    expect(overlaps(parseCidr(outer), parseCidr(inner))).toBe(overlapping);
    expect(overlaps(parseCidr(inner), parseCidr(outer))).toBe(overlapping);
  });

  it.each([
    ['10.233.64.0/18', 0x0ae97fffn],
    ['fd00::/64', 0xfd00_0000_0000_0000_ffff_ffff_ffff_ffffn],
  ])('gives the last address of %s', (text, last) => {
    expect(lastAddress(parseCidr(text))).toBe(last);
  });
});
