// Subnet index <-> CIDR text for one cluster CIDR, checked against plain bigint arithmetic.
// indexOf is the hot path for node CIDRs: it must accept exactly the node subnets and nothing else.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatCidr, parseCidr, SubnetCodec, type Cidr } from '../../../src/cidr/index.js';

function codec(cluster: string, nodeMask: number): SubnetCodec {
  return new SubnetCodec(parseCidr(cluster), nodeMask);
}

/** A random cluster CIDR and node mask with at most 2^24 subnets. */
const clusterAndMask = fc
  .tuple(fc.boolean(), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.nat(), fc.nat({ max: 24 }))
  .map(([v6, value, prefixSeed, indexBits]) => {
    const bits = v6 ? 128 : 32;
    const prefix = prefixSeed % (bits - indexBits + 1);
    const base = (value % (1n << BigInt(bits))) & ~((1n << BigInt(bits - prefix)) - 1n);
    const cluster: Cidr = { family: v6 ? 'IPv6' : 'IPv4', base, prefix, bits };
    return { cluster, nodeMask: prefix + indexBits };
  });

describe('SubnetCodec', () => {
  it.each([
    ['10.233.64.0/18', 24, 0, '10.233.64.0/24'],
    ['10.233.64.0/18', 24, 1, '10.233.65.0/24'],
    ['10.233.64.0/18', 24, 63, '10.233.127.0/24'],
    ['10.0.0.0/8', 24, 65535, '10.255.255.0/24'],
    ['10.0.0.0/8', 26, 5, '10.0.1.64/26'],
    ['192.168.0.0/16', 16, 0, '192.168.0.0/16'],
    ['fd00::/48', 64, 0, 'fd00::/64'],
    ['fd00::/48', 64, 1, 'fd00:0:0:1::/64'],
    ['fd00::/48', 64, 65535, 'fd00:0:0:ffff::/64'],
    ['fd00::/40', 64, 0xffffff, 'fd00:0:ff:ffff::/64'],
    ['fd00:10:244::/56', 64, 0xff, 'fd00:10:244:ff::/64'],
    ['fd00::/56', 80, 0x10001, 'fd00:0:0:1:1::/80'],
    ['2001:db8::/96', 120, 3, '2001:db8::300/120'],
    ['fd00::/104', 128, 0xabcdef, 'fd00::ab:cdef/128'],
  ])('in %s with /%i nodes, subnet %i is %s', (cluster, mask, index, text) => {
    const c = codec(cluster, mask);
    expect(c.format(index)).toBe(text);
    expect(c.indexOf(text)).toBe(index);
    expect(formatCidr(c.cidrAt(index))).toBe(text);
  });

  it('formats every index exactly like bigint arithmetic and reads it back', () => {
    fc.assert(
      fc.property(clusterAndMask, fc.nat(), ({ cluster, nodeMask }, seed) => {
        const c = new SubnetCodec(cluster, nodeMask);
        const index = seed % c.count;
        const expected: Cidr = {
          ...cluster,
          base: cluster.base + (BigInt(index) << BigInt(cluster.bits - nodeMask)),
          prefix: nodeMask,
        };
        const text = c.format(index);
        expect(text).toBe(formatCidr(expected));
        expect(c.indexOf(text)).toBe(index);
      }),
    );
  });

  it.each([
    ['10.233.64.0/18', 24, '10.233.64.0/25', 'another size'],
    ['10.233.64.0/18', 24, '10.233.128.0/24', 'outside the cluster'],
    ['10.233.64.0/18', 24, '10.233.63.0/24', 'just below the cluster'],
    ['10.233.64.0/18', 24, '10.233.64.1/24', 'host bits set'],
    ['10.233.64.0/18', 24, '10.233.64.0/024', 'a padded prefix'],
    ['10.233.64.0/18', 24, '10.233.64.0', 'no prefix'],
    ['10.233.64.0/18', 24, 'fd00::/24', 'another family'],
    ['fd00::/48', 64, '10.0.0.0/64', 'another family'],
    ['fd00::/48', 64, 'fd00:0:1::/64', 'outside the cluster'],
    ['fd00::/48', 64, 'fd00::1/64', 'host bits set'],
    ['fd00::/48', 64, 'fd00::/65', 'another size'],
    ['fd00::/48', 64, 'fd00:::/64', 'garbage'],
  ])('in %s with /%i nodes, %s is not a node subnet (%s)', (cluster, mask, text) => {
    expect(codec(cluster, mask).indexOf(text)).toBe(-1);
  });

  it('reads node subnets written in any valid IPv6 form', () => {
    const c = codec('fd00::/48', 64);
    expect(c.indexOf('FD00:0000:0000:0001:0000:0000:0000:0000/64')).toBe(1);
    expect(c.indexOf('fd00:0:0:2:0:0:0:0/64')).toBe(2);
  });

  it.each([
    ['10.233.64.0/18', 24, '10.233.64.0/24', 0, 0],
    ['10.233.64.0/18', 24, '10.233.65.128/25', 1, 1],
    ['10.233.64.0/18', 24, '10.233.64.0/22', 0, 3],
    ['10.233.64.0/18', 24, '10.233.64.0/18', 0, 63],
    ['10.233.64.0/18', 24, '10.0.0.0/8', 0, 63],
    ['10.233.64.0/18', 24, '10.233.127.255/32', 63, 63],
    ['fd00::/48', 64, 'fd00:0:0:10::/60', 16, 31],
    ['fd00::/48', 64, 'fd00::/16', 0, 65535],
  ])('in %s with /%i nodes, %s spans subnets %i..%i', (cluster, mask, text, begin, end) => {
    expect(codec(cluster, mask).span(parseCidr(text))).toEqual({ begin, end });
  });

  it.each([
    ['10.233.64.0/18', 24, '10.233.128.0/24'],
    ['10.233.64.0/18', 24, 'fd00::/8'],
    ['fd00::/48', 64, 'fd01::/48'],
  ])('in %s with /%i nodes, %s spans nothing', (cluster, mask, text) => {
    expect(codec(cluster, mask).span(parseCidr(text))).toBeUndefined();
  });

  it('refuses a node mask outside the cluster CIDR', () => {
    expect(() => codec('10.0.0.0/16', 8)).toThrow(RangeError);
    expect(() => codec('10.0.0.0/16', 33)).toThrow(RangeError);
  });
});
